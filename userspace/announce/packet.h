// ARP and NDP frames for L2 announcement (pure): parse what arrives on
// the external device, build the answer. Frames start at the Ethernet
// header, as an AF_PACKET SOCK_RAW socket hands them over.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "model/ip.h"

namespace ferry {

using MacAddr = std::array<uint8_t, 6>;
using Frame = std::vector<uint8_t>;

constexpr MacAddr kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// An ARP request (Ethernet, IPv4). senderIp is 0.0.0.0 for an RFC 5227
// probe.
struct ArpRequest {
  MacAddr senderMac{};
  IpAddr senderIp;
  IpAddr targetIp;
};

// Requests only; gratuitous ones (sender == target) are announcements by
// someone else and get no answer.
std::optional<ArpRequest> parseArpRequest(std::span<const uint8_t> frame);
// The reply "targetIp is at mac", unicast to the requester (42 bytes; the
// driver pads to the Ethernet minimum).
Frame buildArpReply(const ArpRequest& req, const MacAddr& mac);
// RFC 5227 ARP announcement: a broadcast request with sender = target =
// ip, which Linux neighbours treat as gratuitous and use to override a
// cached entry at once.
Frame buildGratuitousArp(const IpAddr& ip, const MacAddr& mac);

// A neighbour solicitation that passed RFC 4861 section 7.1.1 validation
// (hop limit 255, code 0, checksum, length, target not multicast, no
// source link-layer option from the unspecified address).
struct NeighborSolicitation {
  MacAddr ethSource{};
  IpAddr source;  // :: for duplicate address detection
  IpAddr target;
  std::optional<MacAddr> sourceLinkAddr;  // option 1
};

std::optional<NeighborSolicitation> parseNeighborSolicitation(std::span<const uint8_t> frame);
// The solicited advertisement (86 bytes): from the target address itself,
// with Override set and a target link-layer address option; Solicited
// and unicast to the soliciting node, or to all-nodes when it was a DAD
// probe from ::.
Frame buildNeighborAdvertisement(const NeighborSolicitation& ns, const MacAddr& mac);
// Unsolicited advertisement to all-nodes (S=0, O=1), sent on taking over.
Frame buildUnsolicitedNa(const IpAddr& target, const MacAddr& mac);

// The ICMPv6 checksum over the pseudo-header and `icmp` (checksum field
// included as it is: zero it to compute, keep it to verify -> 0).
uint16_t icmp6Checksum(const IpAddr& src, const IpAddr& dst, std::span<const uint8_t> icmp);

// The whole decision for one received frame: the answer when it asks for
// an address in `owned`, nothing otherwise.
std::optional<Frame> answerFor(std::span<const uint8_t> frame, const std::set<IpAddr>& owned,
                               const MacAddr& mac);

// 33:33:ff:xx:yy:zz, where the solicitations for `target` are sent.
MacAddr solicitedNodeMac(const IpAddr& target);

}  // namespace ferry
