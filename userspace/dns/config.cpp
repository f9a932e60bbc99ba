#include "dns/config.h"

#include <cctype>
#include <charconv>
#include <sstream>

namespace ferry {

std::optional<DnsAddr> DnsAddr::parse(std::string_view text, uint16_t defaultPort) {
  std::string_view host = text, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (size_t c = text.rfind(':'); c != std::string_view::npos &&
                                         text.find(':') == c) {  // one colon: IPv4:port
    host = text.substr(0, c);
    port = text.substr(c + 1);
    if (port.empty()) return std::nullopt;
  }
  auto ip = IpAddr::parse(host);
  if (!ip) return std::nullopt;
  DnsAddr a;
  a.ip = *ip;
  if (port.empty()) {
    if (defaultPort == 0) return std::nullopt;
    a.port = defaultPort;
    return a;
  }
  unsigned v = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535)
    return std::nullopt;
  a.port = static_cast<uint16_t>(v);
  return a;
}

std::string DnsAddr::str() const {
  return ip.isV4() ? ip.str() + ":" + std::to_string(port)
                   : "[" + ip.str() + "]:" + std::to_string(port);
}

bool validClusterDomain(const std::string& domain) {
  std::string d = domain;
  if (!d.empty() && d.back() == '.') d.pop_back();
  if (d.empty() || d.size() > 200) return false;
  size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

std::vector<DnsAddr> nameserversFromResolvConf(const std::string& text) {
  std::vector<DnsAddr> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    if (size_t pct = value.find('%'); pct != std::string::npos) value.resize(pct);  // fe80::1%eth0
    if (auto ip = IpAddr::parse(value)) out.push_back({*ip, 53});
  }
  return out;
}

}  // namespace ferry
