#include "announce/announcer.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

namespace ferry {

namespace {

constexpr int kBatch = 64;  // frames per onReadable: the loop has other work too

// Offsets in an Ethernet frame (no VLAN tag: the packet socket sees
// frames after the tag is taken off).
// ARP requests: ethertype 0x0806, operation 1.
sock_filter kArpFilter[] = {
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                // ethertype
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 0, 3),  //   ARP?
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),                // ARP operation
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),          //   request?
    BPF_STMT(BPF_RET | BPF_K, 0xffff),                     // accept
    BPF_STMT(BPF_RET | BPF_K, 0),                          // drop
};
// Neighbour solicitations: ethertype 0x86dd, next header 58 (ICMPv6),
// ICMPv6 type 135. Without it every IPv6 frame would be copied to us.
sock_filter kNsFilter[] = {
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                     // ethertype
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 5),      //   IPv6?
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),                     // next header
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 3),  // ICMPv6?
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54),                     // ICMPv6 type
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 135, 0, 1),             //   NS?
    BPF_STMT(BPF_RET | BPF_K, 0xffff),                          // accept
    BPF_STMT(BPF_RET | BPF_K, 0),                               // drop
};

struct DeviceInfo {
  int ifindex = 0;
  MacAddr mac{};
};

Expected<DeviceInfo> queryDevice(int fd, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return Status::error("bad device name \"" + ifname + "\"");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) return Status::sys(ifname, errno);
  DeviceInfo d;
  d.ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return Status::sys(ifname + ": hardware address", errno);
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
    return Status::error(ifname + ": not an Ethernet device, no ARP/NDP to answer");
  std::memcpy(d.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  return d;
}

// Created with protocol 0 (receives nothing), filtered, then bound to the
// device and protocol: no unfiltered frame from another device slips in.
Expected<int> packetSocket(const std::string& ifname, int ifindex, uint16_t proto,
                           sock_filter* filter, size_t filterLen) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::sys(ifname + ": packet socket", errno);
  sock_fprog prog{static_cast<unsigned short>(filterLen), filter};
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(proto);
  sll.sll_ifindex = ifindex;
  const char* what = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
    what = ": socket filter";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
    what = ": bind packet socket";
  if (what) {
    int err = errno;
    close(fd);
    return Status::sys(ifname + what, err);
  }
  return fd;
}

}  // namespace

Expected<std::unique_ptr<L2Announcer>> L2Announcer::open(const std::string& ifname,
                                                         std::function<MonoTime()> mono) {
  std::unique_ptr<L2Announcer> a(new L2Announcer());
  a->ifname_ = ifname;
  a->mono_ = mono ? std::move(mono) : [] { return std::chrono::steady_clock::now(); };
  int q = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // receives nothing: protocol 0
  if (q < 0) return Status::sys(ifname + ": packet socket", errno);
  auto dev = queryDevice(q, ifname);
  close(q);
  if (!dev) return dev.status();
  a->ifindex_ = dev->ifindex;
  a->mac_ = dev->mac;
  auto arp = packetSocket(ifname, a->ifindex_, ETH_P_ARP, kArpFilter, std::size(kArpFilter));
  if (!arp) return arp.status();
  a->arpFd_ = *arp;
  auto nd = packetSocket(ifname, a->ifindex_, ETH_P_IPV6, kNsFilter, std::size(kNsFilter));
  if (!nd) return nd.status();
  a->ndFd_ = *nd;
  return a;
}

L2Announcer::~L2Announcer() {
  if (arpFd_ >= 0) close(arpFd_);
  if (ndFd_ >= 0) close(ndFd_);  // also drops the multicast memberships
}

void L2Announcer::setOwned(const std::set<IpAddr>& owned) {
  MonoTime now = mono_();
  for (const IpAddr& a : owned_)
    if (!owned.count(a)) schedule_.stop(a);
  for (const IpAddr& a : owned)
    if (!owned_.count(a)) schedule_.start(a, now);
  owned_ = owned;
  syncMulticast();
  onTimer();  // the first announcement goes out now
}

// Solicitations for an address go to its solicited-node group, which the
// device filters out unless someone joined it: join the groups of the
// IPv6 addresses we own, as the kernel does for configured ones.
void L2Announcer::syncMulticast() {
  std::set<MacAddr> want;
  for (const IpAddr& a : owned_)
    if (!a.isV4()) want.insert(solicitedNodeMac(a));
  auto member = [&](const MacAddr& m, int op) {
    packet_mreq mr{};
    mr.mr_ifindex = ifindex_;
    mr.mr_type = PACKET_MR_MULTICAST;
    mr.mr_alen = 6;
    std::memcpy(mr.mr_address, m.data(), 6);
    return setsockopt(ndFd_, SOL_PACKET, op, &mr, sizeof mr) == 0;
  };
  for (auto it = joined_.begin(); it != joined_.end();) {
    if (want.count(*it)) {
      ++it;
      continue;
    }
    member(*it, PACKET_DROP_MEMBERSHIP);
    it = joined_.erase(it);
  }
  for (const MacAddr& m : want) {
    if (joined_.count(m)) continue;
    if (member(m, PACKET_ADD_MEMBERSHIP)) {
      joined_.insert(m);
    } else {
      ++stats_.sendErrors;
      stats_.lastError = ifname_ + ": join solicited-node group: " + std::strerror(errno);
    }
  }
}

void L2Announcer::send(int fd, const Frame& f, uint64_t* counter) {
  // Bound socket: send() goes out on the bound device as is.
  if (::send(fd, f.data(), f.size(), MSG_DONTWAIT) == static_cast<ssize_t>(f.size())) {
    ++*counter;
    return;
  }
  ++stats_.sendErrors;
  stats_.lastError = ifname_ + ": send: " + std::strerror(errno);
}

void L2Announcer::onReadable(int fd) {
  if (fd != arpFd_ && fd != ndFd_) return;
  alignas(8) uint8_t buf[2048];
  for (int i = 0; i < kBatch; ++i) {
    sockaddr_ll from{};
    socklen_t fromLen = sizeof from;
    ssize_t n =
        recvfrom(fd, buf, sizeof buf, MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: drained. ENETDOWN once when the device goes down (the
      // socket resumes when it comes back up); refresh() tells if it
      // went away for good.
      return;
    }
    if (from.sll_pkttype == PACKET_OUTGOING || static_cast<size_t>(n) > sizeof buf) continue;
    auto reply = answerFor(std::span<const uint8_t>(buf, size_t(n)), owned_, mac_);
    if (reply) send(fd, *reply, fd == arpFd_ ? &stats_.arpReplies : &stats_.naReplies);
  }
}

int L2Announcer::timeoutMs() const {
  auto next = schedule_.next();
  if (!next) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - mono_());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

void L2Announcer::onTimer() {
  for (const IpAddr& a : schedule_.takeDue(mono_())) {
    if (a.isV4())
      send(arpFd_, buildGratuitousArp(a, mac_), &stats_.gratuitous);
    else
      send(ndFd_, buildUnsolicitedNa(a, mac_), &stats_.gratuitous);
  }
}

void L2Announcer::restartAll() {
  MonoTime now = mono_();
  for (const IpAddr& a : owned_) schedule_.start(a, now);
  onTimer();
}

bool L2Announcer::refresh() {
  auto dev = queryDevice(arpFd_, ifname_);
  if (!dev || dev->ifindex != ifindex_) return false;
  if (dev->mac != mac_) {
    mac_ = dev->mac;
    restartAll();  // neighbours must learn the new MAC
  }
  return true;
}

}  // namespace ferry
