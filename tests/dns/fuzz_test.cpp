// A bounded fuzz run against the query path: 100k malformed or hostile
// inputs (mutated real queries and random bytes, fixed seed). Nothing may
// crash or hang; every answer parses, carries the query's id, and over UDP
// is never larger than the query allows (no amplification).
#include <gtest/gtest.h>

#include <random>

#include "dns/responder.h"
#include "dns_test_util.h"

namespace ferry {
namespace {

using namespace dnstest;

ClusterSnapshot fuzzCluster() {
  std::vector<Endpoint> many;
  for (int i = 0; i < 60; ++i) many.push_back(ep(("198.18.131." + std::to_string(i + 1)).c_str(), 80));
  return snapshot({service("default", "web", {"198.19.0.20", "2001:db8:ffff::20"},
                           {port("http", 80, Protocol::TCP, {ep("198.18.129.2", 8080)})}),
                   headless("default", "big", {port("http", 80, Protocol::TCP, many)}),
                   externalName("default", "httpbin", "httpbin.example.test"),
                   externalName("default", "alias", "big.default.svc.cluster.local")});
}

std::vector<std::vector<uint8_t>> seeds() {
  std::vector<std::vector<uint8_t>> s;
  for (auto [name, type] : std::vector<std::pair<const char*, ldns_rr_type>>{
           {"web.default.svc.cluster.local.", LDNS_RR_TYPE_A},
           {"big.default.svc.cluster.local.", LDNS_RR_TYPE_A},
           {"_http._tcp.big.default.svc.cluster.local.", LDNS_RR_TYPE_SRV},
           {"alias.default.svc.cluster.local.", LDNS_RR_TYPE_ANY},
           {"httpbin.default.svc.cluster.local.", LDNS_RR_TYPE_A},
           {"20.0.19.198.in-addr.arpa.", LDNS_RR_TYPE_PTR},
           {"www.example.test.", LDNS_RR_TYPE_AAAA},
           {"cluster.local.", LDNS_RR_TYPE_NS}}) {
    s.push_back(query(name, type, 0));
    s.push_back(query(name, type, 4096));
  }
  return s;
}

// The size the query allows over UDP, as a client would read it.
size_t allowed(const std::vector<uint8_t>& q) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, q.data(), q.size()) != LDNS_STATUS_OK) return 512;
  Pkt p(raw);
  if (!ldns_pkt_edns(p.get())) return 512;
  return std::max<size_t>(512, std::min<size_t>(ldns_pkt_edns_udp_size(p.get()), kDnsMaxUdpAnswer));
}

std::vector<uint8_t> mutate(std::mt19937& rng, std::vector<uint8_t> m) {
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!m.empty()) m[rng() % m.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // random byte
        if (!m.empty()) m[rng() % m.size()] = static_cast<uint8_t>(rng());
        break;
      case 2:  // truncate
        if (!m.empty()) m.resize(rng() % m.size());
        break;
      case 3:  // insert bytes
        for (int k = static_cast<int>(rng() % 8); k > 0; --k)
          m.insert(m.begin() + static_cast<long>(m.empty() ? 0 : rng() % m.size()),
                   static_cast<uint8_t>(rng()));
        break;
      case 4:  // a compression pointer somewhere (loops, forward pointers)
        if (m.size() > 13) {
          size_t at = 12 + rng() % (m.size() - 13);
          m[at] = static_cast<uint8_t>(0xc0 | (rng() & 0x3f));
          m[at + 1] = static_cast<uint8_t>(rng());
        }
        break;
      case 5:  // header counts
        if (m.size() >= 12) m[4 + 2 * (rng() % 4) + 1] = static_cast<uint8_t>(rng());
        break;
    }
  }
  return m;
}

TEST(DnsFuzz, HundredThousandHostileQueries) {
  DnsResponder r(DnsRecords::build(fuzzCluster(), "cluster.local", 5, 1));
  std::vector<std::vector<uint8_t>> base = seeds();
  std::mt19937 rng(20240501);
  size_t replies = 0, forwards = 0, drops = 0;
  for (int i = 0; i < 100000; ++i) {
    std::vector<uint8_t> q;
    if (i % 10 == 0) {
      q.resize(rng() % 300);
      for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
    } else {
      q = mutate(rng, base[rng() % base.size()]);
    }
    DnsTransport t = i % 7 == 0 ? DnsTransport::Tcp : DnsTransport::Udp;
    DnsAction a = r.handle(q, t);
    switch (a.kind) {
      case DnsAction::Kind::Drop:
        ++drops;
        break;
      case DnsAction::Kind::Forward:
        ++forwards;
        ASSERT_EQ(a.wire, q);
        // an upstream answering with garbage: SERVFAIL or its bytes, within the limit
        {
          std::vector<uint8_t> reply = mutate(rng, q);
          if (reply.size() > 2) reply[2] |= 0x80;
          std::vector<uint8_t> back = r.forwarded(q, reply, t);
          if (t == DnsTransport::Udp) ASSERT_LE(back.size(), allowed(q)) << i;
        }
        break;
      case DnsAction::Kind::Resolve: {
        ASSERT_FALSE(a.name.empty());
        std::vector<uint8_t> back = r.resolved(q, mutate(rng, dnsQuery(a.name, a.qtype, 1)), t);
        ASSERT_FALSE(back.empty());
        if (t == DnsTransport::Udp) ASSERT_LE(back.size(), allowed(q)) << i;
        break;
      }
      case DnsAction::Kind::Reply: {
        ++replies;
        Reply rep = read(a.wire);
        ASSERT_TRUE(rep.ok) << i;
        ASSERT_TRUE(rep.qr);
        ASSERT_EQ(rep.id, dnsId(q));
        if (t == DnsTransport::Udp) ASSERT_LE(a.wire.size(), allowed(q)) << i;
        break;
      }
    }
  }
  // the mix reached every path
  EXPECT_GT(replies, 10000u);
  EXPECT_GT(forwards, 1000u);
  EXPECT_GT(drops, 100u);
}

}  // namespace
}  // namespace ferry
