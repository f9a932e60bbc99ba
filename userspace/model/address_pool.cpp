#include "model/address_pool.h"

namespace ferry {

namespace {

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// The prefix's last address: its host bits set.
IpAddr lastOf(const IpPrefix& p) {
  IpAddr a = p.addr;
  int bits = p.addr.isV4() ? 96 + p.len : p.len;
  for (int i = 0; i < 16; ++i) {
    int keep = bits - i * 8;
    if (keep >= 8) continue;
    a.bytes[i] |= keep <= 0 ? 0xff : uint8_t(0xff >> keep);
  }
  return a;
}

bool overlaps(const AddressRange& a, const AddressRange& b) {
  return a.first.isV4() == b.first.isV4() && a.first <= b.last && b.first <= a.last;
}

}  // namespace

IpAddr nextAddress(const IpAddr& a) {
  IpAddr n = a;
  for (int i = 15; i >= 0; --i)
    if (++n.bytes[i] != 0) break;
  return n;
}

std::optional<AddressRange> parseAddressRange(std::string_view text, std::string* why) {
  std::string quoted = "\"" + std::string(text) + "\"";
  auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    auto pfx = IpPrefix::parseMasked(trim(text));
    if (!pfx) return *why = quoted + " is not a CIDR or range", std::nullopt;
    return AddressRange{pfx->addr, lastOf(*pfx), std::string(text), 0};
  }
  auto first = IpAddr::parse(trim(text.substr(0, dash)));
  auto last = IpAddr::parse(trim(text.substr(dash + 1)));
  if (!first || !last) return *why = quoted + " is not a CIDR or range", std::nullopt;
  if (first->isV4() != last->isV4())
    return *why = quoted + " is not a valid range: it mixes IPv4 and IPv6", std::nullopt;
  if (*last < *first)
    return *why = quoted + " is not a valid range: its start is after its end", std::nullopt;
  return AddressRange{*first, *last, std::string(text), 0};
}

std::map<std::string, AddressPool> resolvePools(const Manifests& m,
                                                const ClusterSnapshot* previous,
                                                std::vector<ManifestError>* errors) {
  std::map<std::string, AddressPool> pools;
  for (const auto& p : m.pools) pools[p.name] = p;
  if (previous) {
    for (const auto& [name, p] : previous->pools) {
      bool keep = m.invalidPools.count(name) ||
                  (m.brokenFiles.count(p.file) && !pools.count(name));
      if (keep) pools[name] = p;
    }
  }
  std::vector<std::pair<const AddressPool*, const AddressRange*>> seen;
  for (auto& [name, pool] : pools) {
    std::vector<AddressRange> kept;
    for (const auto& r : pool.ranges) {
      bool clash = false;
      for (const auto& [otherPool, other] : seen) {
        if (!overlaps(r, *other)) continue;
        errors->push_back({pool.file, "IPAddressPool " + name,
                           "spec.addresses[" + std::to_string(r.index) + "]",
                           "\"" + r.text + "\" overlaps \"" + other->text + "\" (pool " +
                               otherPool->name + ", spec.addresses[" +
                               std::to_string(other->index) + "]) and is ignored"});
        clash = true;
        break;
      }
      if (!clash) kept.push_back(r);
    }
    pool.ranges = std::move(kept);
    for (const auto& r : pool.ranges) seen.push_back({&pool, &r});
  }
  return pools;
}

}  // namespace ferry
