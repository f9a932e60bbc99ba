// libFuzzer target: a DNS message (any bytes) through the responder, over
// UDP and TCP, and as an upstream's reply to a forwarded query. Answers
// must parse back (ldns) and never exceed the UDP limit.
#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/responder.h"

namespace {

ferry::ClusterSnapshot cluster() {
  using namespace ferry;
  ClusterSnapshot snap;
  Service web;
  web.ns = "default";
  web.name = "web";
  web.clusterIPs = {*IpAddr::parse("198.19.0.20")};
  ServicePort p;
  p.name = "http";
  p.port = 80;
  Endpoint e;
  e.ip = *IpAddr::parse("198.18.129.2");
  e.port = 8080;
  e.ready = true;
  p.endpoints = {e};
  web.ports = {p};
  snap.services[web.key()] = web;
  Service ext;
  ext.ns = "default";
  ext.name = "httpbin";
  ext.type = ServiceType::ExternalName;
  ext.externalName = "httpbin.example.test";
  snap.services[ext.key()] = ext;
  return snap;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  static DnsResponder responder(DnsRecords::build(cluster(), "cluster.local", 5, 1));
  std::span<const uint8_t> msg(data, size);
  for (DnsTransport t : {DnsTransport::Udp, DnsTransport::Tcp}) {
    DnsAction a = responder.handle(msg, t);
    if (t == DnsTransport::Udp && a.wire.size() > 65535) __builtin_trap();
    if (a.kind == DnsAction::Kind::Reply && t == DnsTransport::Udp && a.wire.size() > kDnsMaxUdpAnswer)
      __builtin_trap();
  }
  // The same bytes as an upstream's reply to a fixed query.
  std::vector<uint8_t> q = dnsQuery("www.example.test.", 1, 0x1234);
  (void)responder.forwarded(q, msg, DnsTransport::Udp);
  (void)responder.resolved(q, msg, DnsTransport::Udp);
  return 0;
}
