// MetalLB-style address pools (IPAddressPool, metallb.io/v1beta1): the
// entries of spec.addresses, and the set of pools a snapshot uses.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/manifest.h"
#include "model/snapshot.h"

namespace ferry {

// One spec.addresses entry: a CIDR ("198.18.0.200/29"; host bits are
// cleared, as MetalLB's net.ParseCIDR does) or an inclusive range
// ("198.18.0.200-198.18.0.250", spaces around the parts allowed), IPv4 or
// IPv6. nullopt with *why set ("\"x\" is not a CIDR or range") otherwise.
std::optional<AddressRange> parseAddressRange(std::string_view text, std::string* why);

// The address after a (wrapping at the end of the 128-bit space).
IpAddr nextAddress(const IpAddr& a);

// The pools of a snapshot, by name:
//  * valid pools as parsed;
//  * an invalid pool, or one that vanished from a file with an
//    unidentifiable document (probably mid-edit), keeps its version from
//    `previous` (left out without one), so that a typo does not move
//    every LoadBalancer address;
//  * like MetalLB, no address may be in two pools: an entry overlapping an
//    entry seen before (pools in name order, entries in order) is reported
//    and ignored, so every address has one pool.
std::map<std::string, AddressPool> resolvePools(const Manifests& m,
                                                const ClusterSnapshot* previous,
                                                std::vector<ManifestError>* errors);

}  // namespace ferry
