// The node port policy documented in allocation.h.
#include "model/node_port_allocator.h"

#include <algorithm>
#include <set>

namespace ferry {

namespace {

// "TCP" from "http/TCP".
std::string protocolOfKey(const std::string& key) {
  auto slash = key.rfind('/');
  return slash == std::string::npos ? "" : key.substr(slash + 1);
}

bool fail(AllocationResult* res, const std::string& field, const std::string& error) {
  res->field = field;
  res->error = error;
  return false;
}

// Whether `ports` already uses number n for protocol `proto`.
bool usedFor(const std::map<std::string, uint16_t>& ports, uint16_t n, const std::string& proto) {
  for (const auto& [key, port] : ports)
    if (port == n && protocolOfKey(key) == proto) return true;
  return false;
}

bool usedAtAll(const std::map<std::string, uint16_t>& ports, uint16_t n) {
  for (const auto& [key, port] : ports)
    if (port == n) return true;
  return false;
}

std::set<uint16_t> numbers(const ServiceAllocation& a) {
  std::set<uint16_t> out;
  for (const auto& [key, port] : a.nodePorts) out.insert(port);
  if (a.healthCheckNodePort) out.insert(a.healthCheckNodePort);
  return out;
}

}  // namespace

std::string nodePortKey(const std::string& portName, size_t index, Protocol protocol) {
  return (portName.empty() ? std::to_string(index) : portName) + "/" + protocolName(protocol);
}

// Per service in key order: its node ports, then its health check port.
void NodePortAllocator::claimRecorded() {
  for (auto& [key, a] : rec_.services) {
    std::set<std::pair<uint16_t, std::string>> used;
    if (std::erase_if(a.nodePorts, [&, k = key](const auto& kv) {
          if (!range_.contains(kv.second) || !used.emplace(kv.second, protocolOfKey(kv.first)).second)
            return true;
          auto [it, fresh] = owner_.emplace(kv.second, k);
          return !fresh && it->second != k;
        }))
      rec_.edits++;
    uint16_t hc = a.healthCheckNodePort;
    if (hc && (!range_.contains(hc) || !owner_.emplace(hc, key).second))
      a.healthCheckNodePort = 0, rec_.edits++;
  }
}

void NodePortAllocator::setPorts(const std::string& key, ServiceAllocation& a,
                                 std::map<std::string, uint16_t> ports, uint16_t healthCheck) {
  for (uint16_t n : numbers(a)) {
    auto it = owner_.find(n);
    if (it != owner_.end() && it->second == key) disown(it);
  }
  if (a.nodePorts != ports || a.healthCheckNodePort != healthCheck) rec_.edits++;
  a.nodePorts = std::move(ports);
  a.healthCheckNodePort = healthCheck;
  for (uint16_t n : numbers(a)) own(n, key);
}

void NodePortAllocator::releaseUnneeded(const AllocationRequest& req) {
  auto it = rec_.services.find(req.key);
  if (it == rec_.services.end()) return;
  ServiceAllocation& a = it->second;
  std::map<std::string, uint16_t> kept;
  for (const auto& np : req.nodePorts)
    if (auto p = a.nodePorts.find(np.key); p != a.nodePorts.end()) kept.insert(*p);
  setPorts(req.key, a, std::move(kept), req.needsHealthCheckNodePort ? a.healthCheckNodePort : 0);
}

std::string NodePortAllocator::checkRequest(const std::string& key, uint16_t port) const {
  if (!range_.contains(port))
    return std::to_string(port) + " is not in the node port range " + range_.str();
  auto it = owner_.find(port);
  if (it != owner_.end() && it->second != key)
    return std::to_string(port) + " is already allocated to " + it->second;
  return "";
}

bool NodePortAllocator::requested(const AllocationRequest& req, AllocationResult* res) {
  auto it = rec_.services.find(req.key);
  const ServiceAllocation* old = it == rec_.services.end() ? nullptr : &it->second;
  std::map<std::string, uint16_t> plan;
  for (const auto& np : req.nodePorts) {
    if (!np.requested) continue;
    if (auto why = checkRequest(req.key, np.requested); !why.empty())
      return fail(res, np.field, why);
    plan[np.key] = np.requested;
  }
  // Unrequested ports keep their number unless a request now uses it.
  for (const auto& np : req.nodePorts) {
    if (np.requested || !old) continue;
    auto rec = old->nodePorts.find(np.key);
    if (rec != old->nodePorts.end() && !usedFor(plan, rec->second, protocolName(np.protocol)))
      plan[np.key] = rec->second;
  }
  uint16_t hc = 0;
  if (req.needsHealthCheckNodePort && req.requestedHealthCheckNodePort) {
    hc = req.requestedHealthCheckNodePort;
    const std::string field = "spec.healthCheckNodePort";
    if (auto why = checkRequest(req.key, hc); !why.empty()) return fail(res, field, why);
    for (const auto& np : req.nodePorts)
      if (plan.count(np.key) && plan[np.key] == hc)
        return fail(res, field, std::to_string(hc) + " is already used by " + np.field);
  } else if (req.needsHealthCheckNodePort && old && !usedAtAll(plan, old->healthCheckNodePort)) {
    hc = old->healthCheckNodePort;
  }
  if (!old && plan.empty() && !hc) return true;
  ServiceAllocation& a = rec_.services[req.key];
  if (a.created.empty()) a.created = now_, rec_.edits++;
  setPorts(req.key, a, std::move(plan), hc);
  return true;
}

void NodePortAllocator::own(uint16_t port, const std::string& key) {
  owner_[port] = key;
  if (bits_) bits_->set(port);
}

void NodePortAllocator::disown(std::map<uint16_t, std::string>::iterator it) {
  if (bits_) bits_->clear(it->first);
  owner_.erase(it);
}

// Linear probe over [first, first+count) starting at hash % count; 0 = full.
// The bitmap gives the port the probe would find without visiting taken ones.
uint16_t NodePortAllocator::probe(uint32_t first, uint32_t count, uint64_t hash) const {
  if (count == 0) return 0;
  uint64_t start = hash % count;
  if (!bits_) {
    bits_ = std::make_shared<OffsetBitmap>(65536);
    for (const auto& [port, key] : owner_) bits_->set(port);
  }
  auto port = bits_->firstFree(first, uint64_t(first) + count, first + start);
  return port ? uint16_t(*port) : 0;
}

// kube-apiserver's calculateRangeOffset: min(max(16, size/32), 128), 0
// for ranges of at most 16 ports.
uint16_t NodePortAllocator::pick(const std::string& hashKey) const {
  if (range_.min == 0 || range_.min > range_.max) return 0;
  uint32_t size = uint32_t(range_.max) - range_.min + 1;
  uint32_t band = size <= 16 ? 0 : std::clamp<uint32_t>(size / 32, 16, 128);
  uint64_t hash = fnv1a64(hashKey);
  if (uint16_t port = probe(range_.min + band, size - band, hash)) return port;
  return probe(range_.min, band, hash);
}

// The number of another port with the same port number and the other
// protocol, when np's protocol does not use it yet.
uint16_t NodePortAllocator::sibling(const ServiceAllocation& a, const AllocationRequest& req,
                                    const NodePortRequest& np) const {
  for (const auto& other : req.nodePorts) {
    if (other.key == np.key || other.port != np.port || other.protocol == np.protocol) continue;
    auto it = a.nodePorts.find(other.key);
    if (it != a.nodePorts.end() && !usedFor(a.nodePorts, it->second, protocolName(np.protocol)))
      return it->second;
  }
  return 0;
}

bool NodePortAllocator::dynamic(const AllocationRequest& req, AllocationResult* res) {
  if (req.nodePorts.empty() && !req.needsHealthCheckNodePort) {
    res->nodePorts.clear();
    res->healthCheckNodePort = 0;
    return true;
  }
  ServiceAllocation& a = rec_.services[req.key];
  if (a.created.empty()) a.created = now_, rec_.edits++;
  const std::string full = "no free node port left in the range " + range_.str();
  for (const auto& np : req.nodePorts) {
    if (a.nodePorts.count(np.key)) continue;
    uint16_t port = sibling(a, req, np);
    if (!port) port = pick(req.key + "/" + np.key);
    if (!port) return fail(res, np.field, full);
    a.nodePorts[np.key] = port;
    rec_.edits++;
    own(port, req.key);
  }
  if (req.needsHealthCheckNodePort && !a.healthCheckNodePort) {
    uint16_t port = pick(req.key + "/healthCheckNodePort");
    if (!port) return fail(res, "spec.healthCheckNodePort", full);
    a.healthCheckNodePort = port;
    rec_.edits++;
    own(port, req.key);
  }
  res->nodePorts = a.nodePorts;
  res->healthCheckNodePort = a.healthCheckNodePort;
  return true;
}

}  // namespace ferry
