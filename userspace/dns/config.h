// Settings of the cluster DNS server (ferryd --dns-*), and the parsing of
// their textual forms. No sockets here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/ip.h"

namespace ferry {

struct DnsAddr {
  IpAddr ip;
  uint16_t port = 53;
  // "198.18.0.11:53", "[2001:db8::11]:53"; without a port, defaultPort
  // (0 = a port is required).
  static std::optional<DnsAddr> parse(std::string_view text, uint16_t defaultPort = 0);
  std::string str() const;
  bool operator==(const DnsAddr&) const = default;
};

struct DnsConfig {
  std::vector<DnsAddr> listen;            // empty = no DNS server
  std::string clusterDomain = "cluster.local";
  std::vector<DnsAddr> upstreams;         // empty = nameservers of /etc/resolv.conf
  uint32_t ttl = 5;                       // seconds, as CoreDNS's kubernetes plugin
  bool enabled() const { return !listen.empty(); }
};

// True for a domain we can serve: labels of [A-Za-z0-9-_] (1-63 chars), at
// most 200 characters, an optional trailing dot ("cluster.local").
bool validClusterDomain(const std::string& domain);

// The `nameserver` lines of a resolv.conf text, port 53.
std::vector<DnsAddr> nameserversFromResolvConf(const std::string& text);

}  // namespace ferry
