// Internal to the model: the node port half of allocateClusterIPs. The
// policy is documented in allocation.h; the driver (cluster_ip_allocator.cpp)
// runs the steps in this order:
//   claimRecorded, releaseUnneeded (every request), requested (every
//   request whose ClusterIP request succeeded), dynamic (every request
//   still without error).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "model/allocation.h"
#include "model/offset_bitmap.h"

namespace ferry {

uint64_t fnv1a64(const std::string& s);

class NodePortAllocator {
 public:
  NodePortAllocator(AllocationRecord& rec, const NodePortRange& range, const std::string& now)
      : rec_(rec), range_(range), now_(now), owner_(rec.index.p->portOwner),
        bits_(rec.index.p->portBits) {}

  // Takes ownership of the recorded ports, dropping invalid ones. The
  // entries of dead services must already be gone.
  void claimRecorded();
  // Releases the recorded ports `req` no longer needs.
  void releaseUnneeded(const AllocationRequest& req);
  // Grants the requested ports (and keeps recorded ones for the others),
  // all or nothing; false with res->field / res->error set otherwise.
  bool requested(const AllocationRequest& req, AllocationResult* res);
  // Allocates what is still missing and copies the service's node ports
  // into *res; false with res->field / res->error set when the range is full.
  bool dynamic(const AllocationRequest& req, AllocationResult* res);

 private:
  std::string checkRequest(const std::string& key, uint16_t port) const;
  uint16_t probe(uint32_t first, uint32_t count, uint64_t hash) const;
  uint16_t pick(const std::string& hashKey) const;
  uint16_t sibling(const ServiceAllocation& a, const AllocationRequest& req,
                   const NodePortRequest& np) const;
  void setPorts(const std::string& key, ServiceAllocation& a,
                std::map<std::string, uint16_t> ports, uint16_t healthCheck);

  AllocationRecord& rec_;
  NodePortRange range_;
  const std::string& now_;
  void own(uint16_t port, const std::string& key);
  void disown(std::map<uint16_t, std::string>::iterator it);

  std::map<uint16_t, std::string>& owner_;  // node port -> ns/name (the record's index)
  // Taken ports (bit = port number), built at the first dynamic pick.
  std::shared_ptr<OffsetBitmap>& bits_;
};

}  // namespace ferry
