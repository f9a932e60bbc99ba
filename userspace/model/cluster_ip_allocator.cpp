// The allocation policy documented in allocation.h.
#include <algorithm>

#include "model/allocation.h"
#include "model/node_port_allocator.h"
#include "model/offset_bitmap.h"

namespace ferry {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

std::string clusterIPField(size_t i) {
  return i == 0 ? "spec.clusterIP" : "spec.clusterIPs[" + std::to_string(i) + "]";
}

class Allocator {
 public:
  Allocator(AllocationRecord& rec, const std::vector<IpPrefix>& cidrs, const std::string& now)
      : rec_(rec), cidrs_(cidrs), now_(now), owner_(rec.index.p->ipOwner), bits_(rec.index.p->ipBits) {}

  void release(const std::set<std::string>& live);
  // An entry leaves: its addresses, node ports and LoadBalancer addresses
  // go back to the index.
  void releaseKey(const std::string& key);
  void claimRecorded();
  AllocationResult requested(const AllocationRequest& req);
  AllocationResult dynamic(const AllocationRequest& req);
  AllocationResult noAddress(const AllocationRequest& req);

 private:
  const IpPrefix* cidrFor(const IpAddr& ip) const;
  std::string cidrList() const;
  std::optional<IpAddr> probe(const IpPrefix& cidr, uint64_t first, uint64_t count,
                              uint64_t hash) const;
  std::optional<IpAddr> pick(const IpPrefix& cidr, const std::string& key) const;
  ServiceAllocation& entry(const std::string& key);
  void assign(const std::string& key, const std::vector<IpAddr>& ips);
  AllocationResult result(const std::string& key);

  AllocationRecord& rec_;
  const std::vector<IpPrefix>& cidrs_;
  const std::string& now_;
  void own(const IpAddr& ip, const std::string& key);
  void disown(const IpAddr& ip);
  const OffsetBitmap* bitmap(const IpPrefix& cidr) const;
  const IpPrefix* cidrOf(bool v4) const;

  std::map<IpAddr, std::string>& owner_;  // the record's index
  // Taken offsets of each CIDR (one per family), built at its first dynamic
  // pick (CIDRs of at most 2^24 addresses; larger ones are probed); the
  // record's index.
  std::map<IpPrefix, std::shared_ptr<OffsetBitmap>>& bits_;
};

void Allocator::own(const IpAddr& ip, const std::string& key) {
  owner_[ip] = key;
  for (auto& [cidr, bits] : bits_)
    if (cidr.contains(ip)) bits->set(cidr.offsetOf(ip));
}

void Allocator::disown(const IpAddr& ip) {
  owner_.erase(ip);
  for (auto& [cidr, bits] : bits_)
    if (cidr.contains(ip)) bits->clear(cidr.offsetOf(ip));
}

const OffsetBitmap* Allocator::bitmap(const IpPrefix& cidr) const {
  if (cidr.size() > (uint64_t(1) << 24)) return nullptr;
  auto it = bits_.find(cidr);
  if (it == bits_.end()) {
    it = bits_.emplace(cidr, std::make_shared<OffsetBitmap>(cidr.size())).first;
    for (const auto& [ip, key] : owner_)
      if (cidr.contains(ip)) it->second->set(cidr.offsetOf(ip));
  }
  return it->second.get();
}

const IpPrefix* Allocator::cidrOf(bool v4) const {
  for (const auto& c : cidrs_)
    if (c.addr.isV4() == v4) return &c;
  return nullptr;
}

void Allocator::releaseKey(const std::string& key) {
  auto it = rec_.services.find(key);
  if (it == rec_.services.end()) return;
  AllocationIndex& ix = *rec_.index.p;
  for (const IpAddr& ip : it->second.clusterIPs) {
    auto o = owner_.find(ip);
    if (o != owner_.end() && o->second == key) disown(ip);
  }
  std::vector<uint16_t> ports;
  for (const auto& [k, port] : it->second.nodePorts) ports.push_back(port);
  if (it->second.healthCheckNodePort) ports.push_back(it->second.healthCheckNodePort);
  for (uint16_t port : ports) {
    auto o = ix.portOwner.find(port);
    if (o == ix.portOwner.end() || o->second != key) continue;
    if (ix.portBits) ix.portBits->clear(port);
    ix.portOwner.erase(o);
  }
  ix.lbHolders.erase(key);
  rec_.services.erase(it);
  rec_.edits++;
}

void Allocator::release(const std::set<std::string>& live) {
  if (std::erase_if(rec_.services, [&](const auto& kv) { return !live.count(kv.first); }))
    rec_.edits++;
}

// Recorded addresses are claimed in key order; ones that are out of range
// or already claimed are dropped so that they get re-allocated.
void Allocator::claimRecorded() {
  for (auto& [key, alloc] : rec_.services) {
    if (std::erase_if(alloc.clusterIPs, [&, k = key](const IpAddr& ip) {
          return !cidrFor(ip) || !owner_.emplace(ip, k).second;
        }))
      rec_.edits++;
  }
}

const IpPrefix* Allocator::cidrFor(const IpAddr& ip) const {
  for (const auto& c : cidrs_)
    if (c.contains(ip)) return &c;
  return nullptr;
}

std::string Allocator::cidrList() const {
  std::string out;
  for (const auto& c : cidrs_) out += (out.empty() ? "" : " or ") + c.str();
  return out;
}

ServiceAllocation& Allocator::entry(const std::string& key) {
  ServiceAllocation& a = rec_.services[key];
  if (a.created.empty()) a.created = now_, rec_.edits++;
  return a;
}

void Allocator::assign(const std::string& key, const std::vector<IpAddr>& ips) {
  ServiceAllocation& a = entry(key);
  for (const auto& old : a.clusterIPs) disown(old);
  if (a.clusterIPs != ips) rec_.edits++;
  a.clusterIPs = ips;
  for (const auto& ip : ips) own(ip, key);
}

AllocationResult Allocator::result(const std::string& key) {
  const ServiceAllocation& a = entry(key);
  return {a.clusterIPs, a.created, "", ""};
}

AllocationResult Allocator::requested(const AllocationRequest& req) {
  for (size_t i = 0; i < req.requested.size(); ++i) {
    const IpAddr& ip = req.requested[i];
    AllocationResult bad;
    bad.field = clusterIPField(i);
    if (cidrs_.empty()) {
      bad.error = "no service CIDR is configured";
      return bad;
    }
    if (!cidrFor(ip)) {
      bad.error = ip.str() + " is not in the service CIDR " + cidrList();
      return bad;
    }
    auto it = owner_.find(ip);
    if (it != owner_.end() && it->second != req.key) {
      bad.error = ip.str() + " is already allocated to " + it->second;
      return bad;
    }
  }
  // Recorded addresses of the other wanted family stay (dynamic() keeps them).
  std::vector<IpAddr> ips = req.requested;
  FamilyChoice fam = resolveIpFamilies(req, cidrs_);
  for (const IpAddr& old : entry(req.key).clusterIPs)
    for (size_t i = req.requested.size(); i < fam.families.size(); ++i)
      if (old.isV4() == fam.families[i]) ips.push_back(old);
  assign(req.key, ips);
  return result(req.key);
}

// Linear probe over [first, first+count) starting at hash % count.
std::optional<IpAddr> Allocator::probe(const IpPrefix& cidr, uint64_t first, uint64_t count,
                                       uint64_t hash) const {
  if (count == 0) return std::nullopt;
  uint64_t start = hash % count;
  if (const OffsetBitmap* bits = bitmap(cidr)) {
    auto off = bits->firstFree(first, first + count, first + start);
    if (!off) return std::nullopt;
    return cidr.nth(*off);
  }
  for (uint64_t i = 0; i < count; ++i) {
    IpAddr ip = cidr.nth(first + (start + i) % count);
    if (!owner_.count(ip)) return ip;
  }
  return std::nullopt;
}

std::optional<IpAddr> Allocator::pick(const IpPrefix& cidr, const std::string& key) const {
  uint64_t size = cidr.size();
  uint64_t reserved = cidr.addr.isV4() ? 2 : 1;  // network (+ IPv4 broadcast) address
  if (size <= reserved) return std::nullopt;
  uint64_t first = 1;
  uint64_t last = size - reserved;
  uint64_t usable = last - first + 1;
  uint64_t band = std::min<uint64_t>(std::max<uint64_t>(16, size / 16), 256);
  band = std::min(band, usable);
  uint64_t hash = fnv1a64(key);
  if (auto ip = probe(cidr, first + band, usable - band, hash)) return ip;
  return probe(cidr, first, band, hash);
}

// One address per wanted family, primary first: requested ones (already
// granted by requested()), else the recorded one of that family, else a
// dynamic pick from that family's CIDR.
AllocationResult Allocator::dynamic(const AllocationRequest& req) {
  AllocationResult bad;
  FamilyChoice fam = resolveIpFamilies(req, cidrs_);
  if (!fam.error.empty()) {
    bad.field = fam.field;
    bad.error = fam.error;
    return bad;
  }
  auto it = rec_.services.find(req.key);
  std::vector<IpAddr> had = it == rec_.services.end() ? std::vector<IpAddr>{} : it->second.clusterIPs;
  std::vector<IpAddr> ips;
  for (size_t i = 0; i < fam.families.size(); ++i) {
    bool v4 = fam.families[i];
    auto rec = std::find_if(had.begin(), had.end(), [&](const IpAddr& a) { return a.isV4() == v4; });
    if (i < req.requested.size()) {
      ips.push_back(req.requested[i]);
    } else if (rec != had.end()) {
      ips.push_back(*rec);
    } else {
      const IpPrefix* cidr = cidrOf(v4);
      auto ip = cidr ? pick(*cidr, req.key) : std::nullopt;
      if (!ip) {
        bad.field = i == 0 ? "spec.clusterIP" : "spec.clusterIPs[1]";
        bad.error = "no free address left in the service CIDR " + (cidr ? cidr->str() : cidrList());
        return bad;
      }
      ips.push_back(*ip);
    }
  }
  if (ips != had) assign(req.key, ips);
  return result(req.key);
}

AllocationResult Allocator::noAddress(const AllocationRequest& req) {
  assign(req.key, {});
  return result(req.key);
}

}  // namespace

std::map<std::string, AllocationResult> allocateClusterIPs(
    AllocationRecord& record, const std::vector<AllocationRequest>& requests,
    const std::set<std::string>& live, const std::vector<IpPrefix>& cidrs,
    const std::string& now, const NodePortRange& nodePortRange,
    const std::set<std::string>* mayHaveLeft) {
  std::string config = nodePortRange.str();
  for (const auto& c : cidrs) config += " " + c.str();
  bool fresh = !mayHaveLeft || !record.index.p || record.index.p->config != config;
  if (fresh) {
    record.index.p = std::make_unique<AllocationIndex>();
    record.index.p->config = config;
    record.index.p->tracked = mayHaveLeft != nullptr;
  }
  Allocator a(record, cidrs, now);
  NodePortAllocator ports(record, nodePortRange, now);
  if (fresh) {
    a.release(live);
    a.claimRecorded();
    ports.claimRecorded();
  } else {
    for (const std::string& key : *mayHaveLeft)
      if (!live.count(key)) a.releaseKey(key);
  }
  for (const auto& r : requests) ports.releaseUnneeded(r);
  std::map<std::string, AllocationResult> out;
  auto ok = [&](const std::string& key) {
    auto it = out.find(key);
    return it == out.end() || it->second.error.empty();
  };
  for (const auto& r : requests)
    if (r.needsIP && !r.requested.empty()) out[r.key] = a.requested(r);
  for (const auto& r : requests)
    if (!r.needsIP) out[r.key] = a.noAddress(r);
  // All requests, node ports included, before any dynamic pick.
  for (const auto& r : requests)
    if (ok(r.key)) ports.requested(r, &out[r.key]);
  // Dynamic picks, and the second family of a service that requested one.
  for (const auto& r : requests)
    if (r.needsIP && ok(r.key)) out[r.key] = a.dynamic(r);
  for (const auto& r : requests)
    if (ok(r.key)) ports.dynamic(r, &out[r.key]);
  return out;
}

}  // namespace ferry
