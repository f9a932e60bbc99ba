// The cluster's DNS records, built from a ClusterSnapshot (pure; no I/O),
// following the Kubernetes DNS specification as CoreDNS's kubernetes plugin
// serves it:
//   <svc>.<ns>.svc.<zone>                A/AAAA ClusterIPs; headless: endpoint IPs;
//                                        ExternalName: CNAME
//   <host>.<svc>.<ns>.svc.<zone>         headless endpoint (hostname, else dashed IP)
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV of a named port
//   ns.dns.<zone>                        the kube-system/kube-dns ClusterIPs (apex NS target)
//   reverse names                        PTR of ClusterIPs and endpoint IPs
// Names are lower-case, absolute ("web.default.svc.cluster.local.").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/shared_string.h"
#include "model/snapshot.h"

namespace ferry {

struct DnsSrv {
  uint16_t priority = 0, weight = 0, port = 0;
  std::string target;  // absolute name
  bool operator==(const DnsSrv&) const = default;
};

struct DnsName {
  std::vector<IpAddr> addrs;  // A and AAAA, sorted, unique
  std::vector<DnsSrv> srv;
  std::string cname;          // ExternalName target (absolute), exclusive with the others
  bool operator==(const DnsName&) const = default;
};

class DnsRecords {
 public:
  // domain: "cluster.local" (a trailing dot is optional). serial: the SOA serial.
  static std::shared_ptr<const DnsRecords> build(const ClusterSnapshot& snap,
                                                 const std::string& domain, uint32_t ttl,
                                                 uint32_t serial);
  // The same records kept up to date per service (the agent's path): start
  // from buildIncremental, then setService for every service that changed.
  // Equal in content to build() of the same snapshot (ferryctl debug verify).
  static std::shared_ptr<DnsRecords> buildIncremental(const ClusterSnapshot& snap,
                                                      const std::string& domain, uint32_t ttl,
                                                      uint32_t serial);
  // Replaces one service's names and PTR offers (svc null: removed).
  void setService(const std::string& key, const Service* svc);
  void setSerial(uint32_t serial) { serial_ = serial; }

  const std::string& zone() const { return zone_; }  // "cluster.local."
  uint32_t ttl() const { return ttl_; }
  uint32_t serial() const { return serial_; }
  // A name with records, or nullptr.
  const DnsName* find(const std::string& name) const;
  // True for a name with records and for an empty non-terminal (a proper
  // suffix of one, e.g. "svc.cluster.local."): those get NODATA, not NXDOMAIN.
  bool exists(const std::string& name) const;
  // PTR target for a reverse name ("10.0.19.198.in-addr.arpa."), or nullopt.
  std::optional<std::string> ptr(const std::string& reverseName) const;
  // "<a-b-c-d>.<ns>.pod.<zone>" -> that address (pods insecure, CoreDNS's
  // default Corefile); nullopt otherwise.
  std::optional<IpAddr> podAddress(const std::string& name) const;
  size_t size() const { return names_.size(); }
  // Same names, records, PTRs and empty non-terminals (serial and TTL
  // aside): for the from-scratch check (ferryctl debug verify).
  bool sameContent(const DnsRecords& o) const;
  // Addresses with a PTR record.
  size_t ptrCount() const { return ptr_.size(); }

  // (Internal; public for the builder in records.cpp.) A service's offer
  // of a PTR target for an address: lower rank wins (ClusterIP, then
  // headless endpoint, then any endpoint), then the first service in key
  // order.
  // The target is not stored but spelled when asked (ptrTarget in
  // records.cpp): the service's name ("web.default.svc.cluster.local.",
  // shared by its offers) for a ClusterIP, else "<label>.<that name>" with
  // the endpoint's hostname as label, or its dashed address when `label`
  // is empty.
  struct PtrOffer {
    int rank = 0;
    const std::string* key = nullptr;  // contrib_'s key (null in build())
    SharedString base;   // the service's name
    SharedString label;  // rank > 0: the endpoint's hostname label, "" = dashed address
  };

 private:
  std::string zone_;
  uint32_t ttl_ = 5, serial_ = 1;
  std::map<std::string, DnsName> names_;
  std::set<std::string> nonTerminals_;
  // Address -> its offers, the served one first (build(): only that one).
  // Keyed by address, not by reverse name, and no target string per offer:
  // about a million endpoints at 100,000 services made the three
  // string-keyed maps of before, then the targets, the largest part of the
  // agent's DNS memory.
  std::map<IpAddr, std::vector<PtrOffer>> ptr_;

  // Incremental bookkeeping (buildIncremental / setService only).
  struct Contribution {
    std::vector<std::string> names;
    std::vector<std::pair<IpAddr, int>> ptr;  // addresses offered, with the rank
  };
  void addContribution(const std::string& key, std::map<std::string, DnsName> names,
                       std::map<IpAddr, PtrOffer> ptr);
  static std::string ptrTarget(const IpAddr& ip, const PtrOffer& o);
  void dropContribution(const std::string& key);
  void setNameserver(const Service* kubeDns);
  std::map<std::string, Contribution> contrib_;  // by service key; "" = ns.dns
  std::map<std::string, int> suffixRefs_;        // non-terminal -> names below it
};

// "10.0.19.198.in-addr.arpa." -> 198.19.0.10 (the inverse of reverseName,
// exact: nullopt for any other spelling, a partial name included).
std::optional<IpAddr> addressOfReverseName(const std::string& name);

// "198.19.0.10" -> "10.0.19.198.in-addr.arpa.", IPv6 -> nibbles under ip6.arpa.
std::string reverseName(const IpAddr& ip);
// "198.18.129.2" -> "198-18-129-2"; IPv6 "2001:db8::1" -> "2001-db8--1" (CoreDNS's form).
std::string dashedName(const IpAddr& ip);

}  // namespace ferry
