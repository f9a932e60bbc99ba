// Helpers for the announce tests.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "announce/packet.h"
#include "model/ip.h"

namespace ferry::testing {

// "ff ff 02 00" (spaces, newlines and '|' ignored) -> bytes.
inline Frame hex(const std::string& s) {
  Frame out;
  int hi = -1;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) continue;
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(uint8_t(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

inline std::string toHex(const Frame& f) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < f.size(); ++i) {
    if (i) s += (i % 16 == 0) ? '\n' : ' ';
    s += d[f[i] >> 4];
    s += d[f[i] & 15];
  }
  return s;
}

inline std::string toHexMac(const MacAddr& m) { return toHex(Frame(m.begin(), m.end())); }
inline std::string toHexMac(const Frame& f, size_t off) {
  if (f.size() < off + 6) return "short";
  return toHex(Frame(f.begin() + off, f.begin() + off + 6));
}

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }

}  // namespace ferry::testing
