// Network devices of the node's namespace, from rtnetlink: an initial
// dump, then change events, so pods created later are found at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/ip.h"

struct mnl_socket;
struct nlmsghdr;

namespace ferry {

struct Link {
  int ifindex = 0;
  std::string name;
  std::string kind;          // "veth", "bridge", ... ("" for physical)
  bool peerElsewhere = false;  // veth whose peer lives in another netns
  bool loopback = false;
  std::vector<IpAddr> addrs;   // global-scope addresses
};

class LinkWatcher {
 public:
  static Expected<std::unique_ptr<LinkWatcher>> open();
  ~LinkWatcher();
  int pollFd() const;
  // Reads pending events; true if the set of links or addresses changed.
  bool drain();
  const std::map<int, Link>& links() const { return links_; }
  // One-shot listing (for --cleanup).
  static Expected<std::map<int, Link>> list();

 private:
  LinkWatcher() = default;
  Status dump();
  void handle(const ::nlmsghdr* nlh);
  mnl_socket* events_ = nullptr;
  std::map<int, Link> links_;
};

// A pod's device, in the routed-veth model: a veth whose peer is in
// another namespace and that carries no address of the node's own.
bool isPodDevice(const Link& l, const std::vector<std::string>& externalDevices);

}  // namespace ferry
