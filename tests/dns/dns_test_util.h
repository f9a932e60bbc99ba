// Helpers for the DNS tests: snapshots built in code, queries built and
// answers read back with ldns (the test never parses wire format itself).
#pragma once

#include "dns/ldns_include.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dns/responder.h"
#include "model/snapshot.h"

namespace ferry::dnstest {

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }

inline Endpoint ep(const char* addr, uint16_t port, bool ready = true, const char* hostname = "") {
  Endpoint e;
  e.ip = ip(addr);
  e.port = port;
  e.ready = ready;
  e.serving = ready;
  e.hostname = hostname;
  return e;
}

inline ServicePort port(const char* name, uint16_t p, Protocol proto = Protocol::TCP,
                        std::vector<Endpoint> eps = {}) {
  ServicePort sp;
  sp.name = name;
  sp.port = p;
  sp.protocol = proto;
  sp.targetPortNumber = p;
  sp.endpoints = std::move(eps);
  return sp;
}

inline Service service(const char* ns, const char* name, std::vector<const char*> ips,
                       std::vector<ServicePort> ports = {}) {
  Service s;
  s.ns = ns;
  s.name = name;
  for (const char* a : ips) s.clusterIPs.push_back(ip(a));
  s.ports = std::move(ports);
  return s;
}

inline Service headless(const char* ns, const char* name, std::vector<ServicePort> ports,
                        bool publishNotReady = false) {
  Service s = service(ns, name, {}, std::move(ports));
  s.headless = true;
  if (publishNotReady) s.object.mut()["spec"]["publishNotReadyAddresses"] = true;
  return s;
}

inline Service externalName(const char* ns, const char* name, const char* target) {
  Service s;
  s.ns = ns;
  s.name = name;
  s.type = ServiceType::ExternalName;
  s.externalName = target;
  return s;
}

inline ClusterSnapshot snapshot(std::vector<Service> services) {
  ClusterSnapshot snap;
  for (Service& s : services) snap.services[s.key()] = std::move(s);
  return snap;
}

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// A query for name/type; ednsSize 0 = no OPT record.
inline std::vector<uint8_t> query(const std::string& name, ldns_rr_type type,
                                  uint16_t ednsSize = 1232, uint16_t id = 0x1234,
                                  ldns_rr_class cls = LDNS_RR_CLASS_IN) {
  Pkt p(ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), type, cls, LDNS_RD));
  ldns_pkt_set_id(p.get(), id);
  if (ednsSize) ldns_pkt_set_edns_udp_size(p.get(), ednsSize);
  uint8_t* buf = nullptr;
  size_t n = 0;
  ldns_pkt2wire(&buf, p.get(), &n);
  std::vector<uint8_t> out(buf, buf + n);
  free(buf);
  return out;
}

// An answer read back: "owner TTL IN TYPE rdata" lines per section.
struct Reply {
  bool ok = false;  // parsed
  uint16_t id = 0;
  int rcode = -1;   // with the EDNS extended bits
  bool qr = false, aa = false, tc = false, ra = false, rd = false;
  bool edns = false;
  uint16_t ednsSize = 0;
  size_t size = 0;
  std::vector<std::string> question, answer, authority, additional;
};

inline std::vector<std::string> lines(const ldns_rr_list* l) {
  std::vector<std::string> out;
  for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i) {
    char* s = ldns_rr2str(ldns_rr_list_rr(l, i));
    std::string t = s ? s : "";
    free(s);
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    for (char& c : t)
      if (c == '\t') c = ' ';
    out.push_back(t);
  }
  return out;
}

inline Reply read(const std::vector<uint8_t>& wire) {
  Reply r;
  r.size = wire.size();
  ldns_pkt* raw = nullptr;
  if (wire.empty() || ldns_wire2pkt(&raw, wire.data(), wire.size()) != LDNS_STATUS_OK) return r;
  Pkt p(raw);
  r.ok = true;
  r.id = ldns_pkt_id(p.get());
  r.rcode = ldns_pkt_get_rcode(p.get()) | (ldns_pkt_edns_extended_rcode(p.get()) << 4);
  r.qr = ldns_pkt_qr(p.get());
  r.aa = ldns_pkt_aa(p.get());
  r.tc = ldns_pkt_tc(p.get());
  r.ra = ldns_pkt_ra(p.get());
  r.rd = ldns_pkt_rd(p.get());
  r.edns = ldns_pkt_edns(p.get());
  r.ednsSize = ldns_pkt_edns_udp_size(p.get());
  r.question = lines(ldns_pkt_question(p.get()));
  r.answer = lines(ldns_pkt_answer(p.get()));
  r.authority = lines(ldns_pkt_authority(p.get()));
  r.additional = lines(ldns_pkt_additional(p.get()));
  return r;
}

}  // namespace ferry::dnstest
