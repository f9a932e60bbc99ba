#include "dns/records.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace ferry {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string absolute(std::string s) {
  s = lower(std::move(s));
  if (s.empty() || s.back() != '.') s += '.';
  return s;
}

// A label we can put in a name without escaping (what validation allows).
bool plainLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

const char* protoLabel(Protocol p) {
  switch (p) {
    case Protocol::TCP: return "_tcp";
    case Protocol::UDP: return "_udp";
    case Protocol::SCTP: return "_sctp";
  }
  return "_tcp";
}

bool publishNotReady(const Service& s) {
  const nlohmann::json& o = s.object.get();
  if (!o.is_object()) return false;
  auto spec = o.find("spec");
  if (spec == o.end() || !spec->is_object()) return false;
  auto p = spec->find("publishNotReadyAddresses");
  return p != spec->end() && p->is_boolean() && p->get<bool>();
}

// PTR candidates: lower rank wins (ClusterIP, then headless endpoint, then
// any endpoint), then the first service in key order: one PTR per address,
// as CoreDNS answers.
using PtrCandidate = DnsRecords::PtrOffer;

class Builder {
 public:
  Builder(std::string zone) : zone_(std::move(zone)) {}

  void addService(const Service& s) {
    if (!plainLabel(s.name) || !plainLabel(s.ns)) return;
    std::string base = lower(s.name + "." + s.ns + ".svc." + zone_);
    if (s.type == ServiceType::ExternalName) {
      if (!s.externalName.empty()) names_[base].cname = absolute(s.externalName);
      return;
    }
    bool pnr = publishNotReady(s);
    SharedString shared(base);  // the PTR offers' name, one copy
    if (!s.headless) {
      for (const IpAddr& ip : s.clusterIPs) {
        names_[base].addrs.push_back(ip);
        offerPtr(ip, 0, shared, {});
      }
      for (const ServicePort& p : s.ports) {
        DnsSrv srv{0, 100, p.port, base};
        names_[base].srv.push_back(srv);
        if (plainLabel(p.name))
          names_[lower("_" + p.name + "." + protoLabel(p.protocol) + "." + base)].srv.push_back(srv);
        for (const Endpoint& e : p.endpoints) offerPtr(e.ip, 2, shared, e.hostname);
      }
      return;
    }
    names_[base];  // a headless service with no endpoints still exists (NODATA)
    for (const ServicePort& p : s.ports) {
      std::vector<const Endpoint*> eps;
      for (const Endpoint& e : p.endpoints)
        if (e.ready || pnr) eps.push_back(&e);
      std::string srvName =
          plainLabel(p.name) ? lower("_" + p.name + "." + protoLabel(p.protocol) + "." + base) : "";
      uint16_t weight = eps.empty() ? 0 : static_cast<uint16_t>(std::max<size_t>(1, 100 / eps.size()));
      for (const Endpoint* e : eps) {
        std::string en = endpointName(*e, base);
        names_[base].addrs.push_back(e->ip);
        names_[en].addrs.push_back(e->ip);
        offerPtr(e->ip, 1, shared, e->hostname);
        DnsSrv srv{0, weight, e->port, en};
        names_[base].srv.push_back(srv);
        if (!srvName.empty()) names_[srvName].srv.push_back(srv);
      }
    }
  }

  void addNameserver(const ClusterSnapshot& snap) {
    auto it = snap.services.find("kube-system/kube-dns");
    if (it == snap.services.end() || it->second.type == ServiceType::ExternalName) return;
    for (const IpAddr& ip : it->second.clusterIPs) names_["ns.dns." + zone_].addrs.push_back(ip);
  }

  std::map<std::string, DnsName> names() {
    for (auto& [n, d] : names_) {
      std::sort(d.addrs.begin(), d.addrs.end());
      d.addrs.erase(std::unique(d.addrs.begin(), d.addrs.end()), d.addrs.end());
      auto bySrv = [](const DnsSrv& a, const DnsSrv& b) {
        return std::tie(a.target, a.port) < std::tie(b.target, b.port);
      };
      std::sort(d.srv.begin(), d.srv.end(), bySrv);
      d.srv.erase(std::unique(d.srv.begin(), d.srv.end()), d.srv.end());
    }
    return std::move(names_);
  }

  std::map<IpAddr, PtrCandidate> ptrCandidates() { return std::move(ptr_); }

 private:
  std::string endpointName(const Endpoint& e, const std::string& base) const {
    std::string h = lower(e.hostname);
    return (plainLabel(h) ? h : dashedName(e.ip)) + "." + base;
  }

  // `hostname`: the endpoint's (its label when plain, else the dashed
  // address is spelled, as endpointName does); none for a ClusterIP.
  void offerPtr(const IpAddr& ip, int rank, const SharedString& base, const std::string& hostname) {
    auto it = ptr_.find(ip);
    if (it != ptr_.end() && rank >= it->second.rank) return;
    std::string h = lower(hostname);
    ptr_[ip] = {rank, nullptr, base, plainLabel(h) ? SharedString(h) : SharedString()};
  }

  std::string zone_;
  std::map<std::string, DnsName> names_;
  std::map<IpAddr, PtrCandidate> ptr_;
};

}  // namespace

std::string reverseName(const IpAddr& ip) {
  std::string out;
  char buf[8];
  if (ip.isV4()) {
    for (int i = 15; i >= 12; --i) {
      std::snprintf(buf, sizeof buf, "%u.", ip.bytes[i]);
      out += buf;
    }
    return out + "in-addr.arpa.";
  }
  for (int i = 15; i >= 0; --i) {
    std::snprintf(buf, sizeof buf, "%x.%x.", ip.bytes[i] & 0xf, ip.bytes[i] >> 4);
    out += buf;
  }
  return out + "ip6.arpa.";
}

std::string dashedName(const IpAddr& ip) {
  std::string s = ip.str();
  std::replace(s.begin(), s.end(), '.', '-');
  std::replace(s.begin(), s.end(), ':', '-');
  return s;
}

std::shared_ptr<const DnsRecords> DnsRecords::build(const ClusterSnapshot& snap,
                                                    const std::string& domain, uint32_t ttl,
                                                    uint32_t serial) {
  auto r = std::make_shared<DnsRecords>();
  r->zone_ = absolute(domain);
  r->ttl_ = ttl;
  r->serial_ = serial;
  Builder b(r->zone_);
  for (const auto& [key, svc] : snap.services) b.addService(svc);
  b.addNameserver(snap);
  r->names_ = b.names();
  for (auto& [ip, c] : b.ptrCandidates()) r->ptr_[ip].push_back(std::move(c));
  r->nonTerminals_.insert(r->zone_);
  r->nonTerminals_.insert("svc." + r->zone_);
  r->nonTerminals_.insert("pod." + r->zone_);
  for (const auto& [name, d] : r->names_) {
    // every proper suffix down to the zone apex
    for (size_t dot = name.find('.'); dot != std::string::npos && dot + 1 < name.size();
         dot = name.find('.', dot + 1)) {
      std::string parent = name.substr(dot + 1);
      if (parent.size() < r->zone_.size()) break;
      if (!r->nonTerminals_.insert(parent).second) break;  // its suffixes are in already
    }
  }
  return r;
}

std::shared_ptr<DnsRecords> DnsRecords::buildIncremental(const ClusterSnapshot& snap,
                                                         const std::string& domain, uint32_t ttl,
                                                         uint32_t serial) {
  auto r = std::make_shared<DnsRecords>();
  r->zone_ = absolute(domain);
  r->ttl_ = ttl;
  r->serial_ = serial;
  for (const std::string& apex : {r->zone_, "svc." + r->zone_, "pod." + r->zone_}) {
    r->suffixRefs_[apex]++;  // always there
    r->nonTerminals_.insert(apex);
  }
  for (const auto& [key, svc] : snap.services) r->setService(key, &svc);
  return r;
}

void DnsRecords::dropContribution(const std::string& key) {
  auto it = contrib_.find(key);
  if (it == contrib_.end()) return;
  for (const std::string& name : it->second.names) {
    names_.erase(name);
    for (size_t dot = name.find('.'); dot != std::string::npos && dot + 1 < name.size();
         dot = name.find('.', dot + 1)) {
      std::string parent = name.substr(dot + 1);
      if (parent.size() < zone_.size()) break;
      auto ref = suffixRefs_.find(parent);
      if (ref != suffixRefs_.end() && --ref->second == 0) {
        suffixRefs_.erase(ref);
        nonTerminals_.erase(parent);
      }
    }
  }
  for (const auto& [ip, rank] : it->second.ptr) {
    auto p = ptr_.find(ip);
    if (p == ptr_.end()) continue;
    std::erase_if(p->second, [&](const PtrOffer& o) { return o.key == &it->first; });
    if (p->second.empty()) ptr_.erase(p);
  }
  contrib_.erase(it);
}

std::string DnsRecords::ptrTarget(const IpAddr& ip, const PtrOffer& o) {
  if (o.rank == 0) return o.base;
  return (o.label.empty() ? dashedName(ip) : o.label.str()) + "." + o.base.str();
}

void DnsRecords::addContribution(const std::string& key, std::map<std::string, DnsName> names,
                                 std::map<IpAddr, PtrOffer> ptr) {
  auto cit = contrib_.try_emplace(key).first;
  Contribution& c = cit->second;
  const std::string* k = &cit->first;  // stable while the contribution lives
  for (auto& [name, d] : names) {
    for (size_t dot = name.find('.'); dot != std::string::npos && dot + 1 < name.size();
         dot = name.find('.', dot + 1)) {
      std::string parent = name.substr(dot + 1);
      if (parent.size() < zone_.size()) break;
      if (suffixRefs_[parent]++ == 0) nonTerminals_.insert(parent);
    }
    c.names.push_back(name);
    names_[name] = std::move(d);
  }
  c.ptr.reserve(ptr.size());
  for (auto& [ip, cand] : ptr) {
    std::vector<PtrOffer>& offers = ptr_[ip];
    PtrOffer o = std::move(cand);
    o.key = k;
    c.ptr.emplace_back(ip, o.rank);
    auto before = [](const PtrOffer& a, const PtrOffer& b) {
      return a.rank != b.rank ? a.rank < b.rank : *a.key < *b.key;
    };
    offers.insert(std::upper_bound(offers.begin(), offers.end(), o, before), std::move(o));
  }
}

bool DnsRecords::sameContent(const DnsRecords& o) const {
  if (zone_ != o.zone_ || names_ != o.names_ || nonTerminals_ != o.nonTerminals_ ||
      ptr_.size() != o.ptr_.size())
    return false;
  return std::equal(ptr_.begin(), ptr_.end(), o.ptr_.begin(), [](const auto& a, const auto& b) {
    return a.first == b.first &&
           ptrTarget(a.first, a.second.front()) == ptrTarget(b.first, b.second.front());
  });
}

void DnsRecords::setNameserver(const Service* kubeDns) {
  dropContribution("");
  if (!kubeDns || kubeDns->type == ServiceType::ExternalName) return;
  std::map<std::string, DnsName> names;
  DnsName& ns = names["ns.dns." + zone_];
  ns.addrs = kubeDns->clusterIPs;
  std::sort(ns.addrs.begin(), ns.addrs.end());
  ns.addrs.erase(std::unique(ns.addrs.begin(), ns.addrs.end()), ns.addrs.end());
  if (ns.addrs.empty()) return;  // the full build makes no name without addresses
  addContribution("", std::move(names), {});
}

void DnsRecords::setService(const std::string& key, const Service* svc) {
  dropContribution(key);
  if (svc) {
    Builder b(zone_);
    b.addService(*svc);
    addContribution(key, b.names(), b.ptrCandidates());
  }
  if (key == "kube-system/kube-dns") setNameserver(svc);
}

const DnsName* DnsRecords::find(const std::string& name) const {
  auto it = names_.find(name);
  return it == names_.end() ? nullptr : &it->second;
}

bool DnsRecords::exists(const std::string& name) const {
  return names_.count(name) || nonTerminals_.count(name);
}

std::optional<std::string> DnsRecords::ptr(const std::string& reverseName) const {
  std::optional<IpAddr> ip = addressOfReverseName(reverseName);
  if (!ip) return std::nullopt;
  auto it = ptr_.find(*ip);
  if (it == ptr_.end()) return std::nullopt;
  return ptrTarget(it->first, it->second.front());
}

std::optional<IpAddr> addressOfReverseName(const std::string& name) {
  IpAddr ip;
  static const std::string v4Suffix = "in-addr.arpa.", v6Suffix = "ip6.arpa.";
  auto endsWith = [&](const std::string& suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (endsWith(v4Suffix)) {
    // "d.c.b.a.in-addr.arpa.": four decimal labels, least significant first
    unsigned v[4];
    int used = 0;
    if (std::sscanf(name.c_str(), "%3u.%3u.%3u.%3u.%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 ||
        size_t(used) != name.size() - v4Suffix.size())
      return std::nullopt;
    if (v[0] > 255 || v[1] > 255 || v[2] > 255 || v[3] > 255) return std::nullopt;
    ip = IpAddr::fromV4(v[3] << 24 | v[2] << 16 | v[1] << 8 | v[0]);
  } else if (endsWith(v6Suffix)) {
    // 32 nibble labels, least significant first
    if (name.size() != 64 + v6Suffix.size()) return std::nullopt;
    for (int n = 0; n < 32; ++n) {
      char c = name[2 * n];
      if (name[2 * n + 1] != '.') return std::nullopt;
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      ip.bytes[15 - n / 2] |= uint8_t(n % 2 ? d << 4 : d);
    }
  } else {
    return std::nullopt;
  }
  // Only our own spelling ("010." or "1.2.3.4.5.in-addr.arpa." are not).
  if (reverseName(ip) != name) return std::nullopt;
  return ip;
}

std::optional<IpAddr> DnsRecords::podAddress(const std::string& name) const {
  std::string suffix = ".pod." + zone_;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix))
    return std::nullopt;
  std::string rest = name.substr(0, name.size() - suffix.size());  // "<dashed>.<ns>"
  size_t dot = rest.find('.');
  if (dot == std::string::npos || rest.find('.', dot + 1) != std::string::npos) return std::nullopt;
  if (!plainLabel(rest.substr(dot + 1))) return std::nullopt;
  std::string label = rest.substr(0, dot);
  if (label.size() > 63) return std::nullopt;
  std::string v4 = label;
  std::replace(v4.begin(), v4.end(), '-', '.');
  if (v4.find(':') == std::string::npos)
    if (auto ip = IpAddr::parse(v4); ip && ip->isV4() && std::count(v4.begin(), v4.end(), '.') == 3)
      return ip;
  std::string v6 = label;
  std::replace(v6.begin(), v6.end(), '-', ':');
  if (auto ip = IpAddr::parse(v6); ip && !ip->isV4()) return ip;
  return std::nullopt;
}

}  // namespace ferry
