// Record building and query answering: a name in, the wire answer out
// (read back with ldns), for every record kind of the Kubernetes DNS spec.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dns/config.h"
#include "dns/responder.h"
#include "dns_test_util.h"

namespace ferry {
namespace {

using namespace dnstest;
using ::testing::ElementsAre;
using Kind = DnsAction::Kind;

const char* kSoa =
    "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";

ClusterSnapshot cluster() {
  std::vector<Service> s;
  s.push_back(service("default", "web", {"198.19.0.20"},
                      {port("http", 80, Protocol::TCP, {ep("198.18.129.2", 8080)}),
                       port("", 81)}));
  s.push_back(service("default", "dual", {"198.19.0.21", "2001:db8:ffff::21"},
                      {port("dns", 53, Protocol::UDP)}));
  s.push_back(headless("default", "db",
                       {port("pg", 5432, Protocol::TCP,
                             {ep("198.18.129.5", 5432, true, "db-0"), ep("198.18.130.6", 5432),
                              ep("198.18.129.7", 5432, false)})}));
  s.push_back(headless("default", "dbp", {port("pg", 5432, Protocol::TCP,
                                               {ep("198.18.129.8", 5432, false)})},
                       /*publishNotReady=*/true));
  s.push_back(headless("default", "empty", {}));
  s.push_back(externalName("default", "httpbin", "httpbin.example.test"));
  s.push_back(externalName("default", "alias", "web.default.svc.cluster.local"));
  s.push_back(externalName("default", "loop1", "loop2.default.svc.cluster.local"));
  s.push_back(externalName("default", "loop2", "loop1.default.svc.cluster.local"));
  s.push_back(service("kube-system", "kube-dns", {"198.19.0.10"},
                      {port("dns", 53, Protocol::UDP), port("dns-tcp", 53, Protocol::TCP)}));
  std::vector<Endpoint> many;
  for (int i = 0; i < 100; ++i)
    many.push_back(ep(("198.18.131." + std::to_string(i + 1)).c_str(), 80));
  s.push_back(headless("default", "big", {port("http", 80, Protocol::TCP, many)}));
  return snapshot(std::move(s));
}

class Responder : public ::testing::Test {
 protected:
  DnsResponder r{DnsRecords::build(cluster(), "cluster.local", 5, 42)};

  Reply ask(const std::string& name, ldns_rr_type type, uint16_t edns = 1232,
            DnsTransport t = DnsTransport::Udp) {
    DnsAction a = r.handle(query(name, type, edns), t);
    EXPECT_EQ(a.kind, Kind::Reply) << name;
    return read(a.wire);
  }
};

TEST_F(Responder, ClusterIPServiceA) {
  Reply a = ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(a.qr && a.aa && a.ra && a.rd);
  EXPECT_EQ(a.id, 0x1234);
  EXPECT_THAT(a.question, ElementsAre("web.default.svc.cluster.local. IN A"));
  EXPECT_THAT(a.answer, ElementsAre("web.default.svc.cluster.local. 5 IN A 198.19.0.20"));
  EXPECT_TRUE(a.authority.empty());
  EXPECT_TRUE(a.edns);
  EXPECT_EQ(a.ednsSize, kDnsMaxUdp);
}

TEST_F(Responder, DualStackAAndAAAA) {
  EXPECT_THAT(ask("dual.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("dual.default.svc.cluster.local. 5 IN A 198.19.0.21"));
  EXPECT_THAT(ask("dual.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("dual.default.svc.cluster.local. 5 IN AAAA 2001:db8:ffff::21"));
}

TEST_F(Responder, NoDataWhenTheNameExistsButNotTheType) {
  Reply a = ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(a.answer.empty());
  EXPECT_THAT(a.authority, ElementsAre(kSoa));
  Reply t = ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_TXT);
  EXPECT_EQ(t.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(t.authority, ElementsAre(kSoa));
}

TEST_F(Responder, EmptyNonTerminalsAreNoDataNotNxdomain) {
  for (const char* n : {"svc.cluster.local.", "default.svc.cluster.local.",
                        "kube-system.svc.cluster.local.", "_tcp.web.default.svc.cluster.local."}) {
    Reply a = ask(n, LDNS_RR_TYPE_A);
    EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR) << n;
    EXPECT_TRUE(a.answer.empty()) << n;
    EXPECT_THAT(a.authority, ElementsAre(kSoa)) << n;
  }
}

TEST_F(Responder, NxdomainWithSoaForUnknownNames) {
  for (const char* n : {"nope.default.svc.cluster.local.", "web.other.svc.cluster.local.",
                        "x.web.default.svc.cluster.local.", "nope.cluster.local.",
                        "_http._udp.web.default.svc.cluster.local."}) {
    Reply a = ask(n, LDNS_RR_TYPE_A);
    EXPECT_EQ(a.rcode, LDNS_RCODE_NXDOMAIN) << n;
    EXPECT_TRUE(a.aa);
    EXPECT_TRUE(a.answer.empty());
    EXPECT_THAT(a.authority, ElementsAre(kSoa)) << n;
  }
}

// The names a pod's resolver tries with search "default.svc.cluster.local
// svc.cluster.local cluster.local" and ndots:5.
TEST_F(Responder, SearchPathExpansions) {
  // "web" -> first candidate answers
  EXPECT_THAT(ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("web.default.svc.cluster.local. 5 IN A 198.19.0.20"));
  // "web.default" -> web.default.default.svc... (NXDOMAIN), then web.default.svc... (answer)
  EXPECT_EQ(ask("web.default.default.svc.cluster.local.", LDNS_RR_TYPE_A).rcode,
            LDNS_RCODE_NXDOMAIN);
  // "web.default.svc" -> web.default.svc.default.svc..., web.default.svc.svc..., then
  // web.default.svc.cluster.local
  EXPECT_EQ(ask("web.default.svc.default.svc.cluster.local.", LDNS_RR_TYPE_A).rcode,
            LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(ask("web.default.svc.svc.cluster.local.", LDNS_RR_TYPE_A).rcode, LDNS_RCODE_NXDOMAIN);
  // an outside name with fewer than 5 dots is tried with every suffix first: answered
  // here (NXDOMAIN), never forwarded
  for (const char* n : {"www.example.test.default.svc.cluster.local.",
                        "www.example.test.svc.cluster.local.", "www.example.test.cluster.local."})
    EXPECT_EQ(ask(n, LDNS_RR_TYPE_A).rcode, LDNS_RCODE_NXDOMAIN) << n;
}

TEST_F(Responder, NamesAreCaseInsensitiveAndEchoTheQuestion) {
  Reply a = ask("WEB.Default.svc.CLUSTER.local.", LDNS_RR_TYPE_A);
  EXPECT_THAT(a.answer, ElementsAre("WEB.Default.svc.CLUSTER.local. 5 IN A 198.19.0.20"));
}

TEST_F(Responder, HeadlessServiceReadyEndpoints) {
  Reply a = ask("db.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_THAT(a.answer, ElementsAre("db.default.svc.cluster.local. 5 IN A 198.18.129.5",
                                    "db.default.svc.cluster.local. 5 IN A 198.18.130.6"));
  EXPECT_THAT(ask("db-0.db.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("db-0.db.default.svc.cluster.local. 5 IN A 198.18.129.5"));
  // an endpoint without hostname: the dashed-IP name (CoreDNS)
  EXPECT_THAT(ask("198-18-130-6.db.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("198-18-130-6.db.default.svc.cluster.local. 5 IN A 198.18.130.6"));
  // not ready: not published
  EXPECT_EQ(ask("198-18-129-7.db.default.svc.cluster.local.", LDNS_RR_TYPE_A).rcode,
            LDNS_RCODE_NXDOMAIN);
}

TEST_F(Responder, HeadlessPublishNotReadyAddresses) {
  EXPECT_THAT(ask("dbp.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("dbp.default.svc.cluster.local. 5 IN A 198.18.129.8"));
}

TEST_F(Responder, HeadlessWithoutEndpointsIsNoData) {
  Reply a = ask("empty.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(a.answer.empty());
}

TEST_F(Responder, SrvForNamedPortOfClusterIPService) {
  Reply a = ask("_http._tcp.web.default.svc.cluster.local.", LDNS_RR_TYPE_SRV);
  EXPECT_THAT(a.answer, ElementsAre("_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 "
                                    "web.default.svc.cluster.local."));
  EXPECT_THAT(a.additional, ElementsAre("web.default.svc.cluster.local. 5 IN A 198.19.0.20"));
  EXPECT_THAT(ask("_dns._udp.kube-dns.kube-system.svc.cluster.local.", LDNS_RR_TYPE_SRV).answer,
              ElementsAre("_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 "
                          "kube-dns.kube-system.svc.cluster.local."));
  // SRV on the service name: every port, named or not (CoreDNS)
  EXPECT_EQ(ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_SRV).answer.size(), 2u);
}

TEST_F(Responder, SrvForHeadlessService) {
  Reply a = ask("_pg._tcp.db.default.svc.cluster.local.", LDNS_RR_TYPE_SRV);
  EXPECT_THAT(a.answer,
              ElementsAre("_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 "
                          "198-18-130-6.db.default.svc.cluster.local.",
                          "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 "
                          "db-0.db.default.svc.cluster.local."));
  EXPECT_THAT(a.additional,
              ElementsAre("198-18-130-6.db.default.svc.cluster.local. 5 IN A 198.18.130.6",
                          "db-0.db.default.svc.cluster.local. 5 IN A 198.18.129.5"));
}

TEST_F(Responder, ExternalNameCnameQuery) {
  Reply a = ask("httpbin.default.svc.cluster.local.", LDNS_RR_TYPE_CNAME);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.answer,
              ElementsAre("httpbin.default.svc.cluster.local. 5 IN CNAME httpbin.example.test."));
}

TEST_F(Responder, ExternalNameAddressQueryResolvesTheTargetUpstream) {
  std::vector<uint8_t> q = query("httpbin.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  DnsAction a = r.handle(q, DnsTransport::Udp);
  ASSERT_EQ(a.kind, Kind::Resolve);
  EXPECT_EQ(a.name, "httpbin.example.test.");
  EXPECT_EQ(a.qtype, LDNS_RR_TYPE_A);
  // the upstream's answer to the lookup
  std::vector<uint8_t> up = dnsQuery(a.name, a.qtype, 777);
  Reply upq = read(up);
  EXPECT_THAT(upq.question, ElementsAre("httpbin.example.test. IN A"));
  EXPECT_TRUE(upq.rd);
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&raw, up.data(), up.size()), LDNS_STATUS_OK);
  Pkt p(raw);
  ldns_pkt_set_qr(p.get(), true);
  ldns_rr* rr = nullptr;
  ASSERT_EQ(ldns_rr_new_frm_str(&rr, "httpbin.example.test. 60 IN A 198.18.64.2", 0, nullptr, nullptr),
            LDNS_STATUS_OK);
  ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr);
  uint8_t* buf = nullptr;
  size_t n = 0;
  ldns_pkt2wire(&buf, p.get(), &n);
  std::vector<uint8_t> upReply(buf, buf + n);
  free(buf);
  ASSERT_TRUE(dnsReplyMatches(up, upReply));

  Reply done = read(r.resolved(q, upReply, DnsTransport::Udp));
  EXPECT_EQ(done.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(done.id, 0x1234);
  EXPECT_THAT(done.answer,
              ElementsAre("httpbin.default.svc.cluster.local. 5 IN CNAME httpbin.example.test.",
                          "httpbin.example.test. 60 IN A 198.18.64.2"));
  // upstream failed: the CNAME alone (CoreDNS)
  Reply failed = read(r.resolved(q, {}, DnsTransport::Udp));
  EXPECT_EQ(failed.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(failed.answer,
              ElementsAre("httpbin.default.svc.cluster.local. 5 IN CNAME httpbin.example.test."));
}

TEST_F(Responder, ExternalNameIntoTheClusterIsFollowedHere) {
  Reply a = ask("alias.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_THAT(a.answer,
              ElementsAre("alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                          "web.default.svc.cluster.local. 5 IN A 198.19.0.20"));
  Reply loop = ask("loop1.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(loop.rcode, LDNS_RCODE_SERVFAIL);
}

TEST_F(Responder, PtrForClusterIPsAndEndpoints) {
  EXPECT_THAT(ask("20.0.19.198.in-addr.arpa.", LDNS_RR_TYPE_PTR).answer,
              ElementsAre("20.0.19.198.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."));
  EXPECT_THAT(ask("5.129.18.198.in-addr.arpa.", LDNS_RR_TYPE_PTR).answer,
              ElementsAre("5.129.18.198.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."));
  EXPECT_THAT(ask("2.129.18.198.in-addr.arpa.", LDNS_RR_TYPE_PTR).answer,
              ElementsAre("2.129.18.198.in-addr.arpa. 5 IN PTR "
                          "198-18-129-2.web.default.svc.cluster.local."));
  std::string v6 = reverseName(ip("2001:db8:ffff::21"));
  EXPECT_EQ(v6, "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa.");
  EXPECT_THAT(ask(v6, LDNS_RR_TYPE_PTR).answer,
              ElementsAre(v6 + " 5 IN PTR dual.default.svc.cluster.local."));
  // unknown addresses fall through to the upstream (CoreDNS's default Corefile)
  EXPECT_EQ(r.handle(query("99.0.19.198.in-addr.arpa.", LDNS_RR_TYPE_PTR), DnsTransport::Udp).kind,
            Kind::Forward);
}

TEST_F(Responder, PodRecords) {
  EXPECT_THAT(ask("198-18-129-9.default.pod.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("198-18-129-9.default.pod.cluster.local. 5 IN A 198.18.129.9"));
  EXPECT_THAT(ask("2001-db8-1-1--9.default.pod.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("2001-db8-1-1--9.default.pod.cluster.local. 5 IN AAAA 2001:db8:1:1::9"));
  EXPECT_EQ(ask("1-2-3.default.pod.cluster.local.", LDNS_RR_TYPE_A).rcode, LDNS_RCODE_NXDOMAIN);
}

TEST_F(Responder, ZoneApex) {
  EXPECT_THAT(ask("cluster.local.", LDNS_RR_TYPE_SOA).answer, ElementsAre(kSoa));
  Reply ns = ask("cluster.local.", LDNS_RR_TYPE_NS);
  EXPECT_THAT(ns.answer, ElementsAre("cluster.local. 5 IN NS ns.dns.cluster.local."));
  EXPECT_THAT(ns.additional, ElementsAre("ns.dns.cluster.local. 5 IN A 198.19.0.10"));
  Reply a = ask("cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.authority, ElementsAre(kSoa));
}

TEST_F(Responder, OutsideNamesAreForwardedUnchanged) {
  std::vector<uint8_t> q = query("www.example.test.", LDNS_RR_TYPE_A);
  DnsAction a = r.handle(q, DnsTransport::Udp);
  ASSERT_EQ(a.kind, Kind::Forward);
  EXPECT_EQ(a.wire, q);
  // no answer from upstream: SERVFAIL
  Reply f = read(r.forwarded(q, {}, DnsTransport::Udp));
  EXPECT_EQ(f.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(f.id, 0x1234);
  EXPECT_THAT(f.question, ElementsAre("www.example.test. IN A"));
  // a reply to another question is not accepted
  std::vector<uint8_t> other = query("other.example.test.", LDNS_RR_TYPE_A, 0, 0x1234);
  other[2] |= 0x80;
  EXPECT_EQ(read(r.forwarded(q, other, DnsTransport::Udp)).rcode, LDNS_RCODE_SERVFAIL);
  // the upstream's reply goes back with the client's id, byte for byte
  std::vector<uint8_t> up = dnsWithId(q, 999);
  up[2] |= 0x80;
  std::vector<uint8_t> back = r.forwarded(q, up, DnsTransport::Udp);
  EXPECT_EQ(back, dnsWithId(up, 0x1234));
}

TEST_F(Responder, OtherClassesAndTransfersInTheZoneAreRefused) {
  Reply ch = read(r.handle(query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 1,
                                 LDNS_RR_CLASS_CH),
                           DnsTransport::Udp)
                      .wire);
  EXPECT_EQ(ch.rcode, LDNS_RCODE_REFUSED);
  EXPECT_EQ(ask("cluster.local.", LDNS_RR_TYPE_AXFR).rcode, LDNS_RCODE_REFUSED);
}

TEST_F(Responder, Edns) {
  Reply without = ask("web.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0);
  EXPECT_FALSE(without.edns);
  EXPECT_EQ(without.rcode, LDNS_RCODE_NOERROR);
  // EDNS version 1: BADVERS (extended rcode 16)
  std::vector<uint8_t> q = query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&raw, q.data(), q.size()), LDNS_STATUS_OK);
  Pkt p(raw);
  ldns_pkt_set_edns_version(p.get(), 1);
  uint8_t* buf = nullptr;
  size_t n = 0;
  ldns_pkt2wire(&buf, p.get(), &n);
  std::vector<uint8_t> v1(buf, buf + n);
  free(buf);
  Reply bad = read(r.handle(v1, DnsTransport::Udp).wire);
  EXPECT_EQ(bad.rcode, 16);
  EXPECT_TRUE(bad.answer.empty());
}

TEST_F(Responder, TruncationOverUdpFullAnswerOverTcp) {
  // 100 A records: 512 bytes without EDNS, the advertised size with it, all over TCP
  Reply plain = ask("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0);
  EXPECT_TRUE(plain.tc);
  EXPECT_LE(plain.size, 512u);
  EXPECT_THAT(plain.question, ElementsAre("big.default.svc.cluster.local. IN A"));
  Reply small = ask("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 600);
  EXPECT_TRUE(small.tc);
  EXPECT_LE(small.size, 600u);
  Reply large = ask("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 1232);
  EXPECT_TRUE(large.tc);
  EXPECT_LE(large.size, 1232u);
  // a client advertising 4096 gets all of it over UDP, as from CoreDNS
  // (above 1232 bytes it arrives fragmented; the dataplane tracks them)
  Reply whole = ask("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 4096);
  EXPECT_FALSE(whole.tc);
  EXPECT_EQ(whole.answer.size(), 100u);
  EXPECT_GT(whole.size, 1232u);
  EXPECT_LE(whole.size, 4096u);
  Reply tcp = ask("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, DnsTransport::Tcp);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.answer.size(), 100u);
  // SRV: the additional section goes first, without TC, when the answer fits alone
  Reply srv = ask("_http._tcp.big.default.svc.cluster.local.", LDNS_RR_TYPE_SRV, 1232);
  EXPECT_LE(srv.size, 1232u);
  EXPECT_TRUE(srv.tc);
  Reply srvTcp = ask("_http._tcp.big.default.svc.cluster.local.", LDNS_RR_TYPE_SRV, 0,
                     DnsTransport::Tcp);
  EXPECT_EQ(srvTcp.answer.size(), 100u);
  EXPECT_EQ(srvTcp.additional.size(), 100u);
}

TEST_F(Responder, MalformedQueries) {
  // shorter than a header: dropped
  EXPECT_EQ(r.handle(std::vector<uint8_t>{1, 2, 3}, DnsTransport::Udp).kind, Kind::Drop);
  // a response (QR set): dropped, never answered
  std::vector<uint8_t> resp = query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  resp[2] |= 0x80;
  EXPECT_EQ(r.handle(resp, DnsTransport::Udp).kind, Kind::Drop);
  // a header and garbage: FORMERR with the id
  std::vector<uint8_t> junk = {0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  DnsAction a = r.handle(junk, DnsTransport::Udp);
  ASSERT_EQ(a.kind, Kind::Reply);
  Reply f = read(a.wire);
  EXPECT_EQ(f.rcode, LDNS_RCODE_FORMERR);
  EXPECT_EQ(f.id, 0xabcd);
  EXPECT_TRUE(f.qr);
  // no question: FORMERR
  std::vector<uint8_t> none = {0, 7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(read(r.handle(none, DnsTransport::Udp).wire).rcode, LDNS_RCODE_FORMERR);
  // NOTIFY: not implemented
  std::vector<uint8_t> notify = query("cluster.local.", LDNS_RR_TYPE_SOA);
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));
  EXPECT_EQ(read(r.handle(notify, DnsTransport::Udp).wire).rcode, LDNS_RCODE_NOTIMPL);
}

TEST(DnsRecords, ExternalNameHasNoAddressesAndChangesKind) {
  auto ext = DnsRecords::build(snapshot({externalName("default", "x", "a.example.test")}),
                               "cluster.local", 5, 1);
  const DnsName* n = ext->find("x.default.svc.cluster.local.");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->cname, "a.example.test.");
  EXPECT_TRUE(n->addrs.empty());
  auto cip = DnsRecords::build(snapshot({service("default", "x", {"198.19.0.30"})}),
                               "cluster.local", 5, 2);
  n = cip->find("x.default.svc.cluster.local.");
  ASSERT_NE(n, nullptr);
  EXPECT_TRUE(n->cname.empty());
  EXPECT_EQ(n->addrs, std::vector<IpAddr>{ip("198.19.0.30")});
}

TEST(DnsRecords, OtherClusterDomain) {
  DnsResponder r(DnsRecords::build(cluster(), "corp.example.", 30, 1));
  Reply a = read(r.handle(query("web.default.svc.corp.example.", LDNS_RR_TYPE_A), DnsTransport::Udp)
                     .wire);
  EXPECT_THAT(a.answer, ElementsAre("web.default.svc.corp.example. 30 IN A 198.19.0.20"));
  EXPECT_EQ(r.handle(query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A), DnsTransport::Udp).kind,
            Kind::Forward);
}

TEST(DnsRecords, ReverseNamesParseOnlyInTheirOwnSpelling) {
  for (const char* a : {"198.18.129.2", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::"}) {
    auto back = addressOfReverseName(reverseName(ip(a)));
    ASSERT_TRUE(back) << a;
    EXPECT_EQ(*back, ip(a));
  }
  for (const char* bad : {"2.129.18.198.in-addr.arpa", "129.18.198.in-addr.arpa.",
                          "02.129.18.198.in-addr.arpa.", "2.129.18.198.1.in-addr.arpa.",
                          "256.129.18.198.in-addr.arpa.", "+2.129.18.198.in-addr.arpa.",
                          " 2.129.18.198.in-addr.arpa.", "in-addr.arpa.", "ip6.arpa.",
                          "1.0.ip6.arpa.", "2.129.18.198.ip6.arpa.",
                          // ::ffff:198.18.129.2 is answered under in-addr.arpa only
                          "2.0.1.8.2.1.6.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa."})
    EXPECT_FALSE(addressOfReverseName(bad)) << bad;
}

// Two services offer a PTR for the same endpoint address: the first in key
// order is served, the other takes over when it leaves; a ClusterIP offer
// outranks both; the incremental records equal a full build at each step.
TEST(DnsRecords, PtrOffersOfSeveralServicesFollowRankAndKeyOrder) {
  Service a = service("default", "a", {"198.19.0.1"}, {port("", 80, Protocol::TCP, {ep("198.18.129.7", 80)})});
  Service b = service("default", "b", {"198.19.0.2"}, {port("", 80, Protocol::TCP, {ep("198.18.129.7", 80)})});
  Service c = service("default", "c", {"198.18.129.7"});  // the address as a ClusterIP
  ClusterSnapshot snap = snapshot({b});
  auto inc = DnsRecords::buildIncremental(snap, "cluster.local", 5, 1);
  auto served = [&] {
    return inc->ptr("7.129.18.198.in-addr.arpa.").value_or("-");
  };
  auto same = [&](std::vector<Service> all) {
    return DnsRecords::build(snapshot(std::move(all)), "cluster.local", 5, 1)->sameContent(*inc);
  };
  EXPECT_EQ(served(), "198-18-129-7.b.default.svc.cluster.local.");
  inc->setService("default/a", &a);
  EXPECT_EQ(served(), "198-18-129-7.a.default.svc.cluster.local.");
  EXPECT_TRUE(same({a, b}));
  inc->setService("default/c", &c);
  EXPECT_EQ(served(), "c.default.svc.cluster.local.");
  EXPECT_TRUE(same({a, b, c}));
  inc->setService("default/c", nullptr);
  inc->setService("default/a", nullptr);
  EXPECT_EQ(served(), "198-18-129-7.b.default.svc.cluster.local.");
  EXPECT_TRUE(same({b}));
  inc->setService("default/b", nullptr);
  EXPECT_EQ(served(), "-");
  EXPECT_EQ(inc->ptrCount(), 0u);
  EXPECT_TRUE(same({}));
}

TEST(DnsConfig, Addresses) {
  EXPECT_EQ(DnsAddr::parse("198.18.0.11:53")->str(), "198.18.0.11:53");
  EXPECT_EQ(DnsAddr::parse("[2001:db8::11]:5353")->str(), "[2001:db8::11]:5353");
  EXPECT_FALSE(DnsAddr::parse("198.18.0.11"));
  EXPECT_EQ(DnsAddr::parse("198.18.0.11", 53)->port, 53);
  EXPECT_EQ(DnsAddr::parse("2001:db8::11", 53)->str(), "[2001:db8::11]:53");
  EXPECT_FALSE(DnsAddr::parse("198.18.0.11:0"));
  EXPECT_FALSE(DnsAddr::parse("198.18.0.11:65536"));
  EXPECT_FALSE(DnsAddr::parse("web:53"));
  EXPECT_TRUE(validClusterDomain("cluster.local"));
  EXPECT_TRUE(validClusterDomain("corp.example."));
  EXPECT_FALSE(validClusterDomain(""));
  EXPECT_FALSE(validClusterDomain("a..b"));
  EXPECT_FALSE(validClusterDomain("a b.local"));
  EXPECT_FALSE(validClusterDomain(std::string(64, 'x') + ".local"));
  auto ns = nameserversFromResolvConf(
      "# comment\nsearch x\nnameserver 198.18.64.1\nnameserver fe80::1%eth0\noptions ndots:5\n");
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[0].str(), "198.18.64.1:53");
  EXPECT_EQ(ns[1].str(), "[fe80::1]:53");
}

}  // namespace
}  // namespace ferry
