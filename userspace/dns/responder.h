// The pure half of the DNS server: a query's bytes in, an action out
// (a reply's bytes, a forward to the upstream resolvers, or an outside
// lookup for an ExternalName target). Wire format through ldns only.
// No sockets, no clock: unit-tested byte for byte.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dns/records.h"

namespace ferry {

enum class DnsTransport { Udp, Tcp };

// The EDNS UDP payload size we advertise in answers and upstream queries
// (DNS flag day 2020): what we accept, not a cap on what we send.
inline constexpr uint16_t kDnsMaxUdp = 1232;
// Largest UDP answer we send: the query's advertised EDNS size (512
// without EDNS, RFC 6891 6.2.5), as CoreDNS does, up to the largest UDP
// payload of an IPv4 datagram. Answers above the path MTU arrive
// fragmented; the dataplane translates later fragments after the first
// one (bpf/lib/frag.h), so they reach pods through the DNS ClusterIP.
inline constexpr uint16_t kDnsMaxUdpAnswer = 65507;

struct DnsAction {
  enum class Kind { Drop, Reply, Forward, Resolve };
  Kind kind = Kind::Drop;
  std::vector<uint8_t> wire;  // Reply: the answer. Forward: the client's query as received.
  std::string name;           // Resolve: the outside name to look up (absolute)
  uint16_t qtype = 0;         // Resolve: A or AAAA
};

class DnsResponder {
 public:
  explicit DnsResponder(std::shared_ptr<const DnsRecords> records)
      : records_(std::move(records)) {}
  void setRecords(std::shared_ptr<const DnsRecords> r) { records_ = std::move(r); }
  const DnsRecords& records() const { return *records_; }

  DnsAction handle(std::span<const uint8_t> query, DnsTransport t) const;
  // The answer to a forwarded query, from the upstream's reply (empty or
  // unusable reply: SERVFAIL).
  std::vector<uint8_t> forwarded(std::span<const uint8_t> query, std::span<const uint8_t> reply,
                                 DnsTransport t) const;
  // The answer to a query that needed an outside lookup (Kind::Resolve):
  // the local answer (CNAME) plus the upstream's answer records; on failure
  // the CNAME alone, as CoreDNS does.
  std::vector<uint8_t> resolved(std::span<const uint8_t> query, std::span<const uint8_t> reply,
                                DnsTransport t) const;

 private:
  std::shared_ptr<const DnsRecords> records_;
};

// A recursive query (RD, EDNS0) for the upstream resolvers.
std::vector<uint8_t> dnsQuery(const std::string& name, uint16_t qtype, uint16_t id);
// True when `reply` is a response to `query`: same id, QR set, same question.
bool dnsReplyMatches(std::span<const uint8_t> query, std::span<const uint8_t> reply);
// The query's id (the first two bytes), and a copy with another id.
uint16_t dnsId(std::span<const uint8_t> msg);
std::vector<uint8_t> dnsWithId(std::span<const uint8_t> msg, uint16_t id);

}  // namespace ferry
