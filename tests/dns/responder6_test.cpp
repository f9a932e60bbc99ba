// IPv6 records of every kind: AAAA for ClusterIP, headless (by hostname and
// by dashed address) and pod names, and ip6.arpa PTR for each.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dns/responder.h"
#include "dns_test_util.h"

namespace ferry {
namespace {

using namespace dnstest;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

ClusterSnapshot cluster6() {
  std::vector<Service> s;
  s.push_back(service("default", "v6", {"2001:db8:ffff::30"}, {port("http", 80)}));
  s.push_back(headless("default", "db6",
                       {port("pg", 5432, Protocol::TCP,
                             {ep("2001:db8:1:1::5", 5432, true, "db-0"), ep("2001:db8:1:2::6", 5432),
                              ep("198.18.129.6", 5432), ep("2001:db8:1:1::7", 5432, false)})}));
  return snapshot(std::move(s));
}

class Responder6 : public ::testing::Test {
 protected:
  DnsResponder r{DnsRecords::build(cluster6(), "cluster.local", 5, 42)};
  Reply ask(const std::string& name, ldns_rr_type type) {
    DnsAction a = r.handle(query(name, type), DnsTransport::Udp);
    EXPECT_EQ(a.kind, DnsAction::Kind::Reply) << name;
    return read(a.wire);
  }
};

TEST_F(Responder6, Ipv6OnlyServiceHasAaaaAndNoDataForA) {
  EXPECT_THAT(ask("v6.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("v6.default.svc.cluster.local. 5 IN AAAA 2001:db8:ffff::30"));
  Reply a = ask("v6.default.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(a.answer.empty());
}

TEST_F(Responder6, HeadlessEndpointsOfBothFamilies) {
  EXPECT_THAT(ask("db6.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              UnorderedElementsAre("db6.default.svc.cluster.local. 5 IN AAAA 2001:db8:1:1::5",
                                   "db6.default.svc.cluster.local. 5 IN AAAA 2001:db8:1:2::6"));
  EXPECT_THAT(ask("db6.default.svc.cluster.local.", LDNS_RR_TYPE_A).answer,
              ElementsAre("db6.default.svc.cluster.local. 5 IN A 198.18.129.6"));
  EXPECT_THAT(ask("db-0.db6.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("db-0.db6.default.svc.cluster.local. 5 IN AAAA 2001:db8:1:1::5"));
  // CoreDNS's dashed form of an IPv6 endpoint without hostname: "::" as "--".
  EXPECT_THAT(ask("2001-db8-1-2--6.db6.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("2001-db8-1-2--6.db6.default.svc.cluster.local. 5 IN AAAA 2001:db8:1:2::6"));
  EXPECT_EQ(ask("2001-db8-1-1--7.db6.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA).rcode,
            LDNS_RCODE_NXDOMAIN) << "not ready: not published";
}

TEST_F(Responder6, Ip6ArpaPtrForClusterIPsAndEndpoints) {
  std::string vip = reverseName(ip("2001:db8:ffff::30"));
  EXPECT_THAT(ask(vip, LDNS_RR_TYPE_PTR).answer,
              ElementsAre(vip + " 5 IN PTR v6.default.svc.cluster.local."));
  std::string named = reverseName(ip("2001:db8:1:1::5"));
  EXPECT_THAT(ask(named, LDNS_RR_TYPE_PTR).answer,
              ElementsAre(named + " 5 IN PTR db-0.db6.default.svc.cluster.local."));
  std::string dashed = reverseName(ip("2001:db8:1:2::6"));
  EXPECT_THAT(ask(dashed, LDNS_RR_TYPE_PTR).answer,
              ElementsAre(dashed + " 5 IN PTR 2001-db8-1-2--6.db6.default.svc.cluster.local."));
}

TEST_F(Responder6, PodAaaaRecords) {
  EXPECT_THAT(ask("2001-db8-1-2--6.default.pod.cluster.local.", LDNS_RR_TYPE_AAAA).answer,
              ElementsAre("2001-db8-1-2--6.default.pod.cluster.local. 5 IN AAAA 2001:db8:1:2::6"));
  EXPECT_EQ(ask("2001-db8-1-2--6.default.pod.cluster.local.", LDNS_RR_TYPE_A).answer.size(), 0u);
}

}  // namespace
}  // namespace ferry
