// LoadBalancer services on bare metal, end to end: MetalLB-style address
// pools (IPAddressPool manifests), the dataplane serving <LB IP>:<port> on the
// nodes' eth0, and L2 announcement (exactly one node, the owner, answers ARP
// for the address on the LAN; the address is configured on no interface).
//
// Every test uses its own services (ClusterIPs 198.19.4.x), its own pool
// (addresses from 198.18.0.200-198.18.0.250, never two tests the same
// address, and not 198.18.0.210, which nodeport_test uses as an external IP)
// and removes them in TearDown. Cases written TEST_P(ClusterFamilyTest, ...)
// run in IPv6 too, with the same numbers: ClusterIPs 2001:db8:ffff::4xx
// (FamilyAddrs::vip), pool addresses 2001:db8::2xx, and NDP (ndpProbe) in
// place of ARP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kExt = "198.18.0.100";
const char* kExt2 = "198.18.0.101";  // a second client address on P-ext (test 3)
const char* kExt6 = "2001:db8::100";
const char* kExt26 = "2001:db8::101";
const std::map<std::string, std::string> kNodeIp = {{"node1", kNode1}, {"node2", kNode2}};

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// A Service manifest; extra is appended to spec ("  key: v\n"), annotations
// is the inside of a YAML flow map.
std::string svcYaml(const std::string& name, const std::string& type, const std::string& vip,
                    const std::string& selector, const std::string& ports,
                    const std::string& extra = "", const std::string& annotations = "") {
  std::string y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n";
  if (!annotations.empty()) y += "  annotations: {" + annotations + "}\n";
  y += "spec:\n  type: " + type + "\n";
  if (!vip.empty()) y += "  clusterIP: " + vip + "\n";
  if (!selector.empty()) y += "  selector: {" + selector + "}\n";
  y += "  ports: " + ports + "\n" + extra;
  return y;
}

const char* kWebPort = "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]";

// A MetalLB IPAddressPool; addresses is a YAML flow sequence.
std::string poolYaml(const std::string& name, const std::string& addresses,
                     bool autoAssign = true) {
  return "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: " + name +
         "\n  namespace: metallb-system\nspec:\n  addresses: " + addresses +
         "\n  autoAssign: " + (autoAssign ? "true" : "false") + "\n";
}

// Node objects with a Ready condition each.
std::string nodesYaml(bool node1Ready, bool node2Ready) {
  std::string y;
  for (auto [name, ready] : {std::pair{"node1", node1Ready}, std::pair{"node2", node2Ready}}) {
    if (!y.empty()) y += "---\n";
    y += std::string("apiVersion: v1\nkind: Node\nmetadata:\n  name: ") + name +
         "\nstatus:\n  conditions: [{type: Ready, status: \"" + (ready ? "True" : "False") +
         "\"}]\n";
  }
  return y;
}

json serviceOn(const std::string& node, const std::string& name) {
  json j = ferryctlJson(node, "services");
  if (!j.is_object() || !j.contains("items")) return json();
  for (auto& it : j["items"])
    if (it.value(json::json_pointer("/metadata/name"), std::string()) == name &&
        it.value(json::json_pointer("/metadata/namespace"), std::string()) == "default")
      return it;
  return json();
}

// status.loadBalancer.ingress[0].ip as node reports it ("" if none).
std::string lbIpOf(const std::string& node, const std::string& name) {
  json s = serviceOn(node, name);
  if (!s.is_object()) return "";
  json ing = s.value(json::json_pointer("/status/loadBalancer/ingress"), json::array());
  if (!ing.is_array() || ing.empty()) return "";
  return ing[0].value("ip", "");
}

// Waits until both nodes report the same address for the service; "" if not.
std::string lbIpEverywhere(const std::string& name, Ms timeout = Ms(5000)) {
  std::string ip;
  bool ok = waitFor([&] {
    std::string a = lbIpOf("node1", name), b = lbIpOf("node2", name);
    ip = a;
    return !a.empty() && a == b;
  }, timeout);
  return ok ? ip : "";
}

// One row of `ferryctl get services [-o wide]`: column -> cell, cut at the
// header's column offsets (the last column, REASON, may hold spaces).
std::map<std::string, std::string> tableRow(const std::string& node, const std::string& name,
                                            bool wide) {
  std::map<std::string, std::string> row;
  ShResult r = ferryctl(node, wide ? "get services -o wide" : "get services", false);
  if (r.rc != 0) return row;
  std::istringstream is(r.out);
  std::string header;
  std::getline(is, header);
  std::vector<std::pair<std::string, size_t>> cols;
  for (size_t i = 0; i < header.size();) {
    if (header[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = header.find(' ', i);
    if (j == std::string::npos) j = header.size();
    cols.push_back({header.substr(i, j - i), i});
    i = j;
  }
  for (std::string line; std::getline(is, line);) {
    if (line.rfind(name + " ", 0) != 0) continue;
    for (size_t c = 0; c < cols.size(); ++c) {
      size_t from = cols[c].second;
      size_t to = c + 1 < cols.size() ? cols[c + 1].second : std::string::npos;
      if (from >= line.size()) break;
      row[cols[c].first] = trim(line.substr(from, to == std::string::npos ? to : to - from));
    }
  }
  return row;
}

std::string extIpColumn(const std::string& node, const std::string& name) {
  auto row = tableRow(node, name, false);
  auto it = row.find("EXTERNAL-IP");
  return it == row.end() ? "" : it->second;
}

// The pending reason in JSON: status.conditions[type=ferry.io/LoadBalancerAddress].message
std::string pendingConditionOf(const std::string& node, const std::string& name) {
  json s = serviceOn(node, name);
  json conds = s.is_object() ? s.value(json::json_pointer("/status/conditions"), json::array())
                             : json::array();
  if (!conds.is_array()) return "";
  for (const auto& c : conds)
    if (c.value("type", "") == "ferry.io/LoadBalancerAddress" && c.value("status", "") == "False")
      return c.value("message", "");
  return "";
}

std::vector<json> errorsFor(const std::string& node, const std::string& file) {
  std::vector<json> out;
  json j = ferryctlJson(node, "errors");
  json arr = j.is_array() ? j : j.value("items", json::array());
  for (const auto& e : arr) {
    std::string f = e.value("file", "");
    if (f.size() >= file.size() && f.compare(f.size() - file.size(), file.size(), file) == 0)
      out.push_back(e);
  }
  return out;
}

// MAC of dev in netns P-<ns> ("node1", "ext", ...)
std::string macOf(const std::string& ns, const std::string& dev = "eth0") {
  ShResult r = sh("ip -j -n " + prefix() + "-" + ns + " link show dev " + dev, 10, false);
  try {
    return json::parse(r.out).at(0).value("address", "");
  } catch (...) {
    return "";
  }
}

struct Neigh {
  std::string mac, state;
};
// P-ext's neighbour entry for ip on eth0.
Neigh extNeigh(const std::string& ip) {
  ShResult r = sh("ip -j -n " + prefix() + "-ext neigh show " + ip + " dev eth0", 10, false);
  Neigh n;
  try {
    json j = json::parse(r.out);
    if (j.is_array() && !j.empty()) {
      n.mac = j[0].value("lladdr", "");
      for (const auto& s : j[0].value("state", json::array())) n.state += s.get<std::string>() + " ";
    }
  } catch (...) {
  }
  return n;
}

void flushExtNeigh() { sh("ip -n " + prefix() + "-ext neigh flush all", 10); }

// What the agents say about ip: each node's announce.owners[ip] and whether
// ip is in its announce.owned.
struct OwnerView {
  std::map<std::string, std::string> ownerSeenBy;  // node -> owner it computes ("" none)
  std::set<std::string> claimants;                 // nodes with ip in "owned"
  std::string dump;
};
OwnerView ownerView(const std::string& ip) {
  OwnerView v;
  for (const char* node : {"node1", "node2"}) {
    json r = agentReply(node);
    json a = r.is_object() ? r.value("announce", json::object()) : json::object();
    v.ownerSeenBy[node] = a.value(json::json_pointer("/owners/" + ip), std::string());
    for (const auto& o : a.value("owned", json::array()))
      if (o == ip) v.claimants.insert(node);
    json brief = json::object();
    for (const char* k : {"owners", "owned", "unowned", "leases"})
      if (a.contains(k)) brief[k] = a[k];
    v.dump += std::string(node) + ": " + brief.dump() + "\n";
  }
  return v;
}

// The node both agents agree owns ip, and the only one claiming it ("" if
// they do not agree within timeout).
std::string agreedOwner(const std::string& ip, Ms timeout = Ms(4000), OwnerView* last = nullptr) {
  OwnerView v;
  std::string owner;
  waitFor([&] {
    v = ownerView(ip);
    owner = v.ownerSeenBy["node1"];
    return !owner.empty() && owner == v.ownerSeenBy["node2"] && v.claimants.size() == 1 &&
           *v.claimants.begin() == owner;
  }, timeout, Ms(100));
  if (last) *last = v;
  bool ok = !owner.empty() && owner == v.ownerSeenBy["node2"] && v.claimants.size() == 1 &&
            *v.claimants.begin() == owner;
  return ok ? owner : "";
}

std::string otherNode(const std::string& n) { return n == "node1" ? "node2" : "node1"; }

// ARP request for target, broadcast from P-ext's eth0 (sender 198.18.0.100),
// sent `tries` times over waitMs; the sender MACs of all replies. Runs on a
// thread that enters P-ext's network namespace (setns affects that thread only).
struct ArpProbe {
  std::set<std::string> macs;
  int replies = 0;
  std::string error;
};
ArpProbe arpProbe(const std::string& target, int tries = 2, int waitMs = 600) {
  ArpProbe res;
  std::thread t([&] {
    std::string nsPath = "/run/netns/" + prefix() + "-ext";
    int nsfd = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
      res.error = "cannot enter " + nsPath + ": " + std::strerror(errno);
      if (nsfd >= 0) close(nsfd);
      return;
    }
    close(nsfd);
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (s < 0) {
      res.error = std::string("AF_PACKET socket: ") + std::strerror(errno);
      return;
    }
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{s};
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
    if (ioctl(s, SIOCGIFINDEX, &ifr) != 0) {
      res.error = "SIOCGIFINDEX eth0";
      return;
    }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) {
      res.error = "SIOCGIFHWADDR eth0";
      return;
    }
    uint8_t mac[6];
    std::memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = ifindex;
    if (bind(s, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      res.error = std::string("bind: ") + std::strerror(errno);
      return;
    }
    in_addr spa{}, tpa{};
    inet_pton(AF_INET, kExt, &spa);
    if (inet_pton(AF_INET, target.c_str(), &tpa) != 1) {
      res.error = "bad target " + target;
      return;
    }
    uint8_t f[42] = {};
    std::memset(f, 0xff, 6);
    std::memcpy(f + 6, mac, 6);
    f[12] = 0x08, f[13] = 0x06;        // ARP
    f[14] = 0x00, f[15] = 0x01;        // Ethernet
    f[16] = 0x08, f[17] = 0x00;        // IPv4
    f[18] = 6, f[19] = 4, f[21] = 1;   // request
    std::memcpy(f + 22, mac, 6);
    std::memcpy(f + 28, &spa, 4);
    std::memcpy(f + 38, &tpa, 4);
    auto start = Clock::now();
    for (int i = 0; i < tries; ++i) {
      if (send(s, f, sizeof f, 0) != static_cast<ssize_t>(sizeof f))
        res.error = std::string("send: ") + std::strerror(errno);
      auto until = start + Ms(waitMs * (i + 1) / tries);
      for (;;) {
        int left = static_cast<int>(
            std::chrono::duration_cast<Ms>(until - Clock::now()).count());
        if (left <= 0) break;
        pollfd p{s, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        uint8_t b[128];
        ssize_t n = recv(s, b, sizeof b, 0);
        if (n < 42 || b[12] != 0x08 || b[13] != 0x06 || b[21] != 2) continue;  // replies only
        if (std::memcmp(b + 28, &tpa, 4) != 0) continue;                      // for target
        char m[18];
        std::snprintf(m, sizeof m, "%02x:%02x:%02x:%02x:%02x:%02x", b[22], b[23], b[24], b[25],
                      b[26], b[27]);
        res.macs.insert(m);
        ++res.replies;
      }
    }
  });
  t.join();
  return res;
}

std::string join(const std::set<std::string>& s) {
  std::string r;
  for (const auto& x : s) r += (r.empty() ? "" : ",") + x;
  return r.empty() ? "(none)" : r;
}

bool answered(const Answer& a) { return a.ok() && a.byPod(); }

// Addresses configured on any interface of node (ip -o addr)
bool configuredOnNode(const std::string& node, const std::string& ip) {
  ShResult r = sh("ip -o -n " + prefix() + "-" + node + " addr show", 10, false);
  return r.out.find(" " + ip + "/") != std::string::npos;
}

// P-ext resolves ip: a ping makes the kernel send a neighbour solicitation
// (the echo itself needs the IPv6 datapath and is not looked at).
Neigh resolveFromExt(const std::string& ip) {
  sh("ip netns exec " + prefix() + "-ext ping -6 -c 1 -W 1 " + ip + " >/dev/null 2>&1", 10, false);
  return extNeigh(ip);
}

// Neighbour solicitation for target (IPv6), multicast from P-ext's eth0 to
// its solicited-node group (source 2001:db8::100, hop limit 255, RFC 4861
// 7.2.2), sent `tries` times over waitMs; the target link-layer addresses of
// all advertisements for target. A raw ICMPv6 socket (the kernel computes the
// checksum) on a thread in P-ext's network namespace, as arpProbe.
ArpProbe ndpProbe(const std::string& target, int tries = 2, int waitMs = 600) {
  ArpProbe res;
  std::thread t([&] {
    std::string nsPath = "/run/netns/" + prefix() + "-ext";
    int nsfd = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
      res.error = "cannot enter " + nsPath + ": " + std::strerror(errno);
      if (nsfd >= 0) close(nsfd);
      return;
    }
    close(nsfd);
    int s = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (s < 0) {
      res.error = std::string("ICMPv6 socket: ") + std::strerror(errno);
      return;
    }
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{s};
    unsigned ifindex = if_nametoindex("eth0");
    int hops = 255;
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex);
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    sockaddr_in6 src{};
    src.sin6_family = AF_INET6;
    inet_pton(AF_INET6, kExt6, &src.sin6_addr);
    if (bind(s, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      res.error = std::string("bind: ") + std::strerror(errno);
      return;
    }
    in6_addr tgt{};
    if (inet_pton(AF_INET6, target.c_str(), &tgt) != 1) {
      res.error = "bad target " + target;
      return;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // for the MAC only
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
    bool hw = fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0;
    if (fd >= 0) close(fd);
    if (!hw) {
      res.error = "SIOCGIFHWADDR eth0";
      return;
    }
    // NS: type 135, code 0, checksum, reserved(4), target(16), SLLA option(8)
    uint8_t ns[32] = {};
    ns[0] = 135;
    std::memcpy(ns + 8, &tgt, 16);
    ns[24] = 1, ns[25] = 1;
    std::memcpy(ns + 26, ifr.ifr_hwaddr.sa_data, 6);
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff02::1:ff00:0", &dst.sin6_addr);
    std::memcpy(&dst.sin6_addr.s6_addr[13], &tgt.s6_addr[13], 3);
    dst.sin6_scope_id = ifindex;
    auto start = Clock::now();
    for (int i = 0; i < tries; ++i) {
      if (sendto(s, ns, sizeof ns, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) !=
          static_cast<ssize_t>(sizeof ns))
        res.error = std::string("sendto: ") + std::strerror(errno);
      auto until = start + Ms(waitMs * (i + 1) / tries);
      for (;;) {
        int left = static_cast<int>(
            std::chrono::duration_cast<Ms>(until - Clock::now()).count());
        if (left <= 0) break;
        pollfd p{s, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        uint8_t b[256];
        ssize_t n = recv(s, b, sizeof b, 0);
        if (n < 24 || b[0] != 136) continue;                   // advertisements only
        if (std::memcmp(b + 8, &tgt, 16) != 0) continue;      // for target
        for (ssize_t o = 24; o + 8 <= n && b[o + 1] != 0; o += 8 * b[o + 1]) {
          if (b[o] != 2) continue;  // target link-layer address
          char m[18];
          std::snprintf(m, sizeof m, "%02x:%02x:%02x:%02x:%02x:%02x", b[o + 2], b[o + 3],
                        b[o + 4], b[o + 5], b[o + 6], b[o + 7]);
          res.macs.insert(m);
          ++res.replies;
        }
      }
    }
  });
  t.join();
  return res;
}

// Address resolution for ip from P-ext, by its family: ARP (arpProbe) or
// neighbour solicitation (ndpProbe); the MACs of all answers.
ArpProbe resolveProbe(const std::string& ip, int tries = 2, int waitMs = 600) {
  return ip.find(':') == std::string::npos ? arpProbe(ip, tries, waitMs)
                                           : ndpProbe(ip, tries, waitMs);
}

void report(const std::string& key, double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", ms);
  ::testing::Test::RecordProperty(key, buf);
  std::printf("[ LB METRIC ] %s = %s ms\n", key.c_str(), buf);
  std::fflush(stdout);
}

// ------------------------------------------------------------------------

// 1. An address from the pool, the same on both nodes; the ext client with an
// empty neighbour table connects; exactly one node (the owner) answers ARP,
// with its eth0 MAC; the address is on no interface.
TEST_P(ClusterFamilyTest, LoadBalancerBasicAssignAnnounceAndServe) {
  writeManifest("lb01-pool.yaml", poolYaml("lb01", v4v6<std::string>("[198.18.0.200-198.18.0.201]",
                                                         "[\"2001:db8::200/128\", \"2001:db8::201/128\"]")));
  writeManifest("lb01-web.yaml",
                svcYaml("lb01-web", "LoadBalancer", fam().vip(4, 1), "app: web", kWebPort));
  std::string ip = lbIpEverywhere("lb01-web");
  const std::string lo = v4v6<std::string>("198.18.0.200", "2001:db8::200");
  const std::string hi = v4v6<std::string>("198.18.0.201", "2001:db8::201");
  ASSERT_TRUE(ip == lo || ip == hi)
      << "no common address from pool " << lo << "-" << hi << ":: node1 " << lbIpOf("node1", "lb01-web")
      << " node2 " << lbIpOf("node2", "lb01-web") << "\n"
      << ferryctl("node1", "get services -o wide").out;
  for (const char* node : {"node1", "node2"}) {
    EXPECT_EQ(extIpColumn(node, "lb01-web"), ip) << node << "\n" << ferryctl(node, "get services").out;
    EXPECT_EQ(tableRow(node, "lb01-web", true)["REASON"], "<none>") << node;
    EXPECT_FALSE(configuredOnNode(node, ip)) << ip << " must not be configured on " << node;
  }
  EXPECT_FALSE(sh("ip -o -n " + prefix() + "-ext addr show", 10).out.find(" " + ip + "/") !=
               std::string::npos);

  OwnerView view;
  std::string owner = agreedOwner(ip, Ms(4000), &view);
  ASSERT_FALSE(owner.empty()) << "agents do not agree on one owner of " << ip << "\n" << view.dump;
  const std::string ownerMac = macOf(owner), otherMac = macOf(otherNode(owner));
  ASSERT_FALSE(ownerMac.empty());
  std::printf("[ LB INFO   ] %s owned by %s (%s)\n", ip.c_str(), owner.c_str(), ownerMac.c_str());

  flushExtNeigh();
  EXPECT_TRUE(extNeigh(ip).mac.empty()) << "neighbour table not flushed";
  Answer a = askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500);
  ASSERT_TRUE(answered(a)) << "ext client -> " << ip << ":80: " << a;
  EXPECT_EQ(a.localPort, 8080) << a;
  Neigh n = extNeigh(ip);
  EXPECT_EQ(n.mac, ownerMac) << "ext's neighbour entry for " << ip << " (" << n.state
                             << ") must be the owner " << owner << "'s eth0 MAC; other node "
                             << otherMac;
  auto [answers, rc] = askMany("ext", "tcp", ip, 80, 10, 1000);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(answers.size(), 10u);
  for (const auto& x : answers) EXPECT_TRUE(x.byPod()) << x;

  // exactly one node answers ARP (IPv6: neighbour solicitations), and it is the owner
  ArpProbe p = resolveProbe(ip, 3, 900);
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.macs, std::set<std::string>{ownerMac})
      << "ARP/NDP replies for " << ip << " from " << join(p.macs) << " (" << p.replies
      << " replies); owner " << owner << " " << ownerMac;
  EXPECT_EQ(agreedOwner(ip, Ms(500)), owner) << ownerView(ip).dump;
}

// 2. A pool with one address: the second service is <pending> with a reason;
// growing the pool assigns it within 2 s, and it is served.
TEST_P(ClusterFamilyTest, LoadBalancerPendingThenAssignedWhenPoolGrows) {
  const std::string ipA = v4v6<std::string>("198.18.0.202", "2001:db8::202");
  const std::string ipB = v4v6<std::string>("198.18.0.203", "2001:db8::203");
  const std::string m = v4v6<std::string>("/32", "/128");
  writeManifest("lb02-pool.yaml", poolYaml("lb02", "[\"" + ipA + m + "\"]"));
  writeManifest("lb02-svc.yaml",
                svcYaml("lb02-a", "LoadBalancer", fam().vip(4, 2), "app: web", kWebPort) + "---\n" +
                    svcYaml("lb02-b", "LoadBalancer", fam().vip(4, 3), "app: web", kWebPort));
  ASSERT_EQ(lbIpEverywhere("lb02-a"), ipA) << ferryctl("node1", "get services -o wide").out;
  std::string reasonJson, reasonWide;
  for (const char* node : {"node1", "node2"}) {
    SCOPED_TRACE(node);
    std::string col;
    EXPECT_TRUE(waitFor([&] { return (col = extIpColumn(node, "lb02-b")) == "<pending>"; }))
        << "EXTERNAL-IP of lb02-b: '" << col << "'\n" << ferryctl(node, "get services").out;
    EXPECT_EQ(lbIpOf(node, "lb02-b"), "");
    reasonJson = pendingConditionOf(node, "lb02-b");
    EXPECT_FALSE(reasonJson.empty()) << "no pending condition in JSON: " << serviceOn(node, "lb02-b").dump();
    reasonWide = tableRow(node, "lb02-b", true)["REASON"];
    EXPECT_EQ(reasonWide, reasonJson) << ferryctl(node, "get services -o wide").out;
    EXPECT_NE(reasonWide, "<none>");
    EXPECT_NE(reasonJson.find("lb02"), std::string::npos)
        << "the reason should name the exhausted pool: " << reasonJson;
    EXPECT_EQ(tableRow(node, "lb02-a", true)["REASON"], "<none>");
  }
  std::printf("[ LB INFO   ] pending reason: %s\n", reasonWide.c_str());

  auto t0 = Clock::now();
  writeManifest("lb02-pool.yaml", poolYaml("lb02", "[\"" + ipA + m + "\", \"" + ipB + m + "\"]"));
  std::string ip = lbIpEverywhere("lb02-b", Ms(5000));
  double ms = msSince(t0);
  ASSERT_EQ(ip, ipB) << "node1 " << lbIpOf("node1", "lb02-b") << " node2 "
                                << lbIpOf("node2", "lb02-b");
  report("pool_grow_to_assigned_ms", ms);
  EXPECT_LT(ms, 2000) << "assigned " << ms << " ms after the pool grew";
  EXPECT_EQ(lbIpOf("node1", "lb02-a"), ipA) << "A must keep its address";
  for (const char* node : {"node1", "node2"}) {
    EXPECT_EQ(extIpColumn(node, "lb02-b"), ip) << node;
    EXPECT_EQ(tableRow(node, "lb02-b", true)["REASON"], "<none>") << node;
    EXPECT_EQ(pendingConditionOf(node, "lb02-b"), "") << node;
  }
  Answer a = askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500);
  EXPECT_TRUE(answered(a)) << "ext -> " << ip << ":80: " << a;
  Answer b = askUntil("ext", "tcp", ipA, 80, answered, Ms(3000), 500);
  EXPECT_TRUE(answered(b)) << "ext -> A: " << b;
}

// 3. loadBalancerSourceRanges: 198.18.0.100 allowed, 198.18.0.101 dropped
// (while an unrestricted service on the same pool serves .101); in IPv6
// 2001:db8::100/128 and 2001:db8::101.
TEST_P(ClusterFamilyTest, LoadBalancerSourceRangesEnforced) {
  const char* ext = v4v6(kExt, kExt6);
  const char* ext2 = v4v6(kExt2, kExt26);
  const char* ports =
      "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
      " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]";
  writeManifest("lb03-pool.yaml", poolYaml("lb03", v4v6<std::string>("[198.18.0.204-198.18.0.205]",
                                                           "[\"2001:db8::204/128\", \"2001:db8::205/128\"]")));
  writeManifest("lb03-svc.yaml",
                svcYaml("lb03-open", "LoadBalancer", fam().vip(4, 4), "app: web", ports) + "---\n" +
                    svcYaml("lb03-ranges", "LoadBalancer", fam().vip(4, 5), "app: web", ports,
                            "  loadBalancerSourceRanges: [\"" + std::string(ext) +
                                v4v6<std::string>("/32", "/128") + "\"]\n"));
  std::string open = lbIpEverywhere("lb03-open"), ranged = lbIpEverywhere("lb03-ranges");
  ASSERT_FALSE(open.empty());
  ASSERT_FALSE(ranged.empty());
  ASSERT_NE(open, ranged);

  const std::string extNs = prefix() + "-ext";
  struct DelAddr {
    std::string cmd;
    ~DelAddr() { sh(cmd, 10); }
  } del{"ip -n " + extNs + " addr del " + std::string(ext2) + v4v6<std::string>("/24", "/64") +
         " dev eth0"};
  // IPv6: deprecated (preferred_lft 0), so that source address selection
  // keeps choosing the first one and only --src picks this one
  ShResult add = sh("ip -n " + extNs + " addr add " + std::string(ext2) +
                        v4v6<std::string>("/24", "/64 nodad preferred_lft 0") + " dev eth0",
                    10);
  ASSERT_EQ(add.rc, 0) << add.out;

  for (auto [proto, port] : {std::pair{"tcp", 80}, std::pair{"udp", 53}}) {
    SCOPED_TRACE(proto);
    Answer ok = askUntil("ext", proto, ranged, port, answered, Ms(4000), 500);
    ASSERT_TRUE(answered(ok)) << "allowed source " << ext << " -> " << ranged << ": " << ok;
    // the second source works in general ...
    Answer ctl = ask("ext", proto, open, port, 1000, std::string("--src ") + ext2);
    if (!answered(ctl)) ctl = askUntil("ext", proto, open, port, answered, Ms(3000), 500);
    Answer ctl2 = ask("ext", proto, open, port, 1000, std::string("--src ") + ext2);
    EXPECT_TRUE(answered(ctl2)) << ext2 << " -> unrestricted " << open << ": " << ctl2;
    // ... but not to the restricted service: dropped (timeout), not answered
    for (int i = 0; i < 2; ++i) {
      Answer no = ask("ext", proto, ranged, port, 600, std::string("--src ") + ext2);
      EXPECT_FALSE(no.byPod()) << ext2 << " is outside loadBalancerSourceRanges: " << no;
      EXPECT_EQ(no.rc, 4) << "expected a drop (timeout): " << no;
    }
    Answer again = ask("ext", proto, ranged, port, 1000);
    EXPECT_TRUE(answered(again)) << "allowed source after the drops: " << again;
  }
}

// 4. Two services share an address (same allow-shared-ip key, ports 80 and
// 81); a third on port 80 with the same key and address is refused.
TEST_P(ClusterFamilyTest, LoadBalancerSharedAddress) {
  const std::string ip = v4v6<std::string>("198.18.0.206", "2001:db8::206");
  const std::string ann = "metallb.universe.tf/allow-shared-ip: \"k\"";
  const std::string req = "  loadBalancerIP: " + ip + "\n";
  writeManifest("lb04-pool.yaml", poolYaml("lb04", v4v6<std::string>("[198.18.0.206-198.18.0.207]",
                                                      "[\"2001:db8::206/128\", \"2001:db8::207/128\"]"),
                                    false));
  writeManifest("lb04-ab.yaml",
                svcYaml("lb04-a", "LoadBalancer", fam().vip(4, 6), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]", req, ann) +
                    "---\n" +
                    svcYaml("lb04-b", "LoadBalancer", fam().vip(4, 7), "app: web",
                            "[{name: alt, port: 81, targetPort: 9090, protocol: TCP}]", req, ann));
  ASSERT_EQ(lbIpEverywhere("lb04-a"), ip) << ferryctl("node1", "get services -o wide").out
                                          << ferryctl("node1", "get errors").out;
  ASSERT_EQ(lbIpEverywhere("lb04-b"), ip) << ferryctl("node1", "get services -o wide").out
                                          << ferryctl("node1", "get errors").out;
  Answer a = askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500);
  EXPECT_TRUE(answered(a)) << a;
  EXPECT_EQ(a.localPort, 8080) << "port 80 is lb04-a's (targetPort 8080): " << a;
  Answer b = askUntil("ext", "tcp", ip, 81, answered, Ms(4000), 500);
  EXPECT_TRUE(answered(b)) << b;
  EXPECT_EQ(b.localPort, 9090) << "port 81 is lb04-b's (targetPort 9090): " << b;
  std::string owner = agreedOwner(ip);
  EXPECT_FALSE(owner.empty()) << ownerView(ip).dump;
  ArpProbe p = resolveProbe(ip);
  EXPECT_EQ(p.macs.size(), 1u) << "one owner for the shared address; replies from " << join(p.macs);
  if (!owner.empty()) {
    EXPECT_EQ(p.macs, std::set<std::string>{macOf(owner)});
  }

  // a third service wants port 80 on the same address
  writeManifest("lb04-c.yaml",
                svcYaml("lb04-c", "LoadBalancer", fam().vip(4, 8), "app: web",
                        "[{name: web, port: 80, targetPort: 9090, protocol: TCP}]", req, ann));
  for (const char* node : {"node1", "node2"}) {
    SCOPED_TRACE(node);
    std::vector<json> errs;
    EXPECT_TRUE(waitFor([&] { return !(errs = errorsFor(node, "lb04-c.yaml")).empty(); }))
        << "no error for lb04-c (port 80 already used on " << ip << ")\n"
        << ferryctl(node, "get errors").out;
    std::string all;
    for (const auto& e : errs) all += e.dump() + "\n";
    EXPECT_NE(all.find("loadBalancerIP"), std::string::npos) << all;
    EXPECT_TRUE(waitFor([&] { return serviceOn(node, "lb04-c").is_object(); }));
    EXPECT_EQ(lbIpOf(node, "lb04-c"), "") << "lb04-c must not get the address";
    EXPECT_EQ(extIpColumn(node, "lb04-c"), "<pending>");
    EXPECT_NE(tableRow(node, "lb04-c", true)["REASON"], "<none>")
        << ferryctl(node, "get services -o wide").out;
    EXPECT_EQ(lbIpOf(node, "lb04-a"), ip);
    EXPECT_EQ(lbIpOf(node, "lb04-b"), ip);
    if (node == std::string("node1"))
      std::printf("[ LB INFO   ] lb04-c: %s", all.c_str());
  }
  auto [answers, rc] = askMany("ext", "tcp", ip, 80, 6, 1000);
  EXPECT_EQ(rc, 0);
  for (const auto& x : answers) EXPECT_EQ(x.localPort, 8080) << "still lb04-a's port 80: " << x;
}

// Which node forwarded an answer of a service whose only endpoint is pod c
// (node2), externalTrafficPolicy Cluster: node2 keeps the client address,
// node1 SNATs to its own.
std::string viaNode(const Answer& a) {
  if (!a.ok() || a.name != "pod-c") return "";
  if (a.clientIp == kExt || a.clientIp == kExt6) return "node2";
  if (a.clientIp == kNode1 || a.clientIp == kNode1v6) return "node1";
  return "?";
}

struct Failover {
  double recoveryMs = -1;  // first answer through the new owner, after the fault
  int failures = 0;        // attempts without an answer after the fault, before that
  int viaOld = 0;          // answers through the old owner after the fault
  std::string log;
};

// The ext client retries (ferry-echo ask, 200 ms timeout, back to back) while
// fault() runs; measures until an answer comes through newOwner.
Failover measureFailover(const std::string& ip, const std::string& newOwner,
                         const std::function<void()>& fault, Ms limit = Ms(6000)) {
  struct Attempt {
    double endMs;
    Answer a;
  };
  std::mutex mu;
  std::vector<Attempt> attempts;
  std::atomic<bool> stop{false}, recovered{false};
  std::atomic<double> faultMs{1e18};
  auto t0 = Clock::now();
  std::thread client([&] {
    while (!stop && msSince(t0) < 20000) {
      Answer a = ask("ext", "tcp", ip, 80, 200);
      double end = msSince(t0);
      if (end > faultMs && viaNode(a) == newOwner) recovered = true;
      std::lock_guard<std::mutex> l(mu);
      attempts.push_back({end, a});
    }
  });
  // the client is answered (through the current owner) before the fault
  waitFor([&] {
    std::lock_guard<std::mutex> l(mu);
    return std::any_of(attempts.begin(), attempts.end(),
                       [](const Attempt& at) { return at.a.ok(); });
  }, Ms(3000), Ms(20));
  faultMs = msSince(t0);
  fault();
  auto deadline = Clock::now() + limit;
  while (!recovered && Clock::now() < deadline) std::this_thread::sleep_for(Ms(20));
  std::this_thread::sleep_for(Ms(100));
  stop = true;
  client.join();
  Failover f;
  for (const auto& at : attempts) {
    std::string v = viaNode(at.a);
    char line[96];
    std::snprintf(line, sizeof line, "  %+8.0f ms rc=%d via=%s\n", at.endMs - faultMs, at.a.rc,
                  v.empty() ? "-" : v.c_str());
    f.log += line;
    if (at.endMs <= faultMs || f.recoveryMs >= 0) continue;
    if (v == newOwner) {
      f.recoveryMs = at.endMs - faultMs;
    } else if (v.empty()) {
      ++f.failures;
    } else {
      ++f.viaOld;
    }
  }
  return f;
}

// Waits until ip has an agreed owner and the ext client reaches it through that owner.
std::string settledOwner(const std::string& ip, OwnerView* view) {
  std::string owner = agreedOwner(ip, Ms(5000), view);
  if (owner.empty()) return "";
  Answer a = askUntil("ext", "tcp", ip, 80, [&](const Answer& x) { return viaNode(x) == owner; },
                      Ms(4000), 300);
  return viaNode(a) == owner ? owner : "";
}

// 5. The owner fails while the ext client retries: clean stop, kill -9,
// NotReady; the other node takes over (ARP, gratuitous ARP).
TEST_P(ClusterFamilyTest, LoadBalancerOwnerFailover) {
  const std::string P = prefix(), cs = q(clusterSh()) + " ";
  struct AgentsBack {
    std::string cs, P;
    ~AgentsBack() {
      for (const char* n : {"node1", "node2"})
        sh(cs + "start-agent " + P + " " + n + " >/dev/null 2>&1 || true", 30);
    }
  } back{cs, P};
  writeManifest("lb05-nodes.yaml", nodesYaml(true, true));
  writeManifest("lb05-pool.yaml", poolYaml("lb05", v4v6<std::string>("[198.18.0.211/32]", "[\"2001:db8::211/128\"]")));
  writeManifest("lb05-fo.yaml",
                svcYaml("lb05-fo", "LoadBalancer", fam().vip(4, 9), "name: c", kWebPort));
  const std::string ip = lbIpEverywhere("lb05-fo");
  ASSERT_EQ(ip, v4v6<std::string>("198.18.0.211", "2001:db8::211"));
  flushExtNeigh();

  struct Step {
    const char* label;
    const char* metric;
    double limitMs;
  };
  for (Step step : {Step{"clean stop", "failover_clean_stop_ms", 2000 + 250},
                    Step{"kill -9", "failover_kill9_ms", 3500},
                    Step{"NotReady", "failover_notready_ms", 2000 + 250}}) {
    SCOPED_TRACE(step.label);
    OwnerView view;
    std::string owner = settledOwner(ip, &view);
    ASSERT_FALSE(owner.empty()) << "no settled owner of " << ip << " before " << step.label << "\n"
                                << view.dump;
    std::string next = otherNode(owner);
    std::string nextMac = macOf(next), ownerMac = macOf(owner);
    EXPECT_EQ(extNeigh(ip).mac, ownerMac);
    std::function<void()> fault;
    if (std::string(step.label) == "clean stop") {
      fault = [&] { sh(cs + "stop-agent " + P + " " + owner, 30); };
    } else if (std::string(step.label) == "kill -9") {
      fault = [&] {
        std::ifstream f(runDir() + "/" + owner + ".pid");
        int pid = 0;
        f >> pid;
        if (pid > 0) {
          killHard(pid);
          sh("rm -f " + q(runDir() + "/" + owner + ".pid"), 10);
        }
      };
    } else {
      fault = [&] { writeManifest("lb05-nodes.yaml", nodesYaml(owner != "node1", owner != "node2")); };
    }
    Failover f = measureFailover(ip, next, fault);
    std::printf("[ LB INFO   ] %s of owner %s: recovery %.0f ms through %s, %d failed attempts, "
                "%d answers still through %s\n",
                step.label, owner.c_str(), f.recoveryMs, next.c_str(), f.failures, f.viaOld,
                owner.c_str());
    if (f.recoveryMs >= 0) report(step.metric, f.recoveryMs);
    EXPECT_GE(f.recoveryMs, 0) << step.label << ": no answer through " << next << " within 6 s\n"
                               << f.log << ownerView(ip).dump;
    EXPECT_LE(f.recoveryMs, step.limitMs) << step.label << "\n" << f.log;
    Neigh n = extNeigh(ip);
    EXPECT_EQ(n.mac, nextMac) << "ext's neighbour entry must move to " << next
                              << " (gratuitous ARP / unsolicited NA); state " << n.state;
    std::string now = agreedOwner(ip, Ms(3000), &view);
    if (std::string(step.label) == "NotReady") {
      EXPECT_EQ(now, next) << view.dump;
      ArpProbe p = resolveProbe(ip);
      EXPECT_EQ(p.macs, std::set<std::string>{nextMac})
          << "only " << next << " may answer ARP while " << owner << " is NotReady: "
          << join(p.macs);
      writeManifest("lb05-nodes.yaml", nodesYaml(true, true));
    } else {
      // the agent is down: ask the survivor
      json r = agentReply(next);
      json owned = r.is_object() ? r.value(json::json_pointer("/announce/owned"), json()) : json();
      EXPECT_TRUE(owned.is_array() && std::find(owned.begin(), owned.end(), json(ip)) != owned.end())
          << next << " must own " << ip << ": " << (r.is_object() ? r["announce"].dump() : "");
      ArpProbe p = resolveProbe(ip);
      EXPECT_EQ(p.macs, std::set<std::string>{nextMac}) << join(p.macs);
      ShResult s = sh(cs + "start-agent " + P + " " + owner + " >/dev/null", 30);
      ASSERT_EQ(s.rc, 0) << s.out;
    }
  }
  // the assignment survived the restarts, and agents agree on an owner again
  EXPECT_EQ(lbIpEverywhere("lb05-fo"), ip);
  EXPECT_FALSE(agreedOwner(ip).empty()) << ownerView(ip).dump;
}

// 6. LoadBalancer -> ClusterIP releases the address: no EXTERNAL-IP, no node
// answers ARP for it, and another service can take it.
TEST_P(ClusterFamilyTest, LoadBalancerTypeChangeReleasesAddress) {
  const std::string ip = v4v6<std::string>("198.18.0.212", "2001:db8::212");
  writeManifest("lb06-pool.yaml", poolYaml("lb06", v4v6<std::string>("[198.18.0.212/32]", "[\"2001:db8::212/128\"]")));
  writeManifest("lb06-web.yaml",
                svcYaml("lb06-web", "LoadBalancer", fam().vip(4, 10), "app: web", kWebPort));
  ASSERT_EQ(lbIpEverywhere("lb06-web"), ip);
  ASSERT_TRUE(answered(askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500)));
  std::string owner = agreedOwner(ip);
  ASSERT_FALSE(owner.empty()) << ownerView(ip).dump;
  ArpProbe before = resolveProbe(ip);
  EXPECT_EQ(before.macs, std::set<std::string>{macOf(owner)}) << join(before.macs);

  writeManifest("lb06-web.yaml",
                svcYaml("lb06-web", "ClusterIP", fam().vip(4, 10), "app: web", kWebPort));
  for (const char* node : {"node1", "node2"}) {
    SCOPED_TRACE(node);
    std::string col;
    EXPECT_TRUE(waitFor([&] { return (col = extIpColumn(node, "lb06-web")) == "<none>"; }))
        << "EXTERNAL-IP '" << col << "'\n" << ferryctl(node, "get services").out;
    EXPECT_EQ(lbIpOf(node, "lb06-web"), "");
    EXPECT_EQ(tableRow(node, "lb06-web", false)["TYPE"], "ClusterIP");
  }
  flushExtNeigh();
  ArpProbe p;
  bool silent = waitFor([&] {
    p = resolveProbe(ip, 2, 400);
    return p.error.empty() && p.macs.empty();
  }, Ms(3000), Ms(0));
  EXPECT_TRUE(silent) << "still answered ARP for " << ip << " by " << join(p.macs) << " "
                      << p.error << "\n" << ownerView(ip).dump;
  p = resolveProbe(ip, 3, 1200);
  EXPECT_TRUE(p.macs.empty()) << "ARP replies for released " << ip << " from " << join(p.macs);
  OwnerView v = ownerView(ip);
  EXPECT_TRUE(v.claimants.empty() && v.ownerSeenBy["node1"].empty() && v.ownerSeenBy["node2"].empty())
      << v.dump;
  Answer a = ask("ext", "tcp", ip, 80, 1500);
  EXPECT_FALSE(a.byPod()) << a;
  Neigh n = extNeigh(ip);
  EXPECT_TRUE(n.mac.empty()) << "ext resolved " << ip << " to " << n.mac << " (" << n.state << ")";
  EXPECT_TRUE(n.state.find("FAILED") != std::string::npos ||
              n.state.find("INCOMPLETE") != std::string::npos)
      << "state '" << n.state << "'";
  // the ClusterIP itself still works
  EXPECT_TRUE(answered(askUntil("a", "tcp", fam().vip(4, 10), 80, answered, Ms(3000), 500)));

  // the address is free again
  writeManifest("lb06-next.yaml",
                svcYaml("lb06-next", "LoadBalancer", fam().vip(4, 11), "app: web", kWebPort));
  EXPECT_EQ(lbIpEverywhere("lb06-next"), ip) << ferryctl("node1", "get services -o wide").out;
  Answer b = askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500);
  EXPECT_TRUE(answered(b)) << b;
}

// 7. Pods and nodes reach the LoadBalancer address from inside (IPv6:
// 2001:db8::213 from an IPv6 pool, ClusterIP in the IPv6 service CIDR).
TEST_P(ClusterFamilyTest, LoadBalancerReachableFromPodsAndNodes) {
  const std::string ip = v4v6<std::string>("198.18.0.213", "2001:db8::213");
  writeManifest("lb07-pool.yaml", poolYaml("lb07", v4v6<std::string>("[198.18.0.213/32]",
                                                                     "[\"2001:db8::213/128\"]")));
  writeManifest("lb07-web.yaml",
                svcYaml("lb07-web", "LoadBalancer", fam().vip(4, 12), "app: web", kWebPort));
  ASSERT_EQ(lbIpEverywhere("lb07-web"), ip) << ferryctl("node1", "get services -o wide").out;
  for (const char* from : {"a", "c", "node1", "node2"}) {
    SCOPED_TRACE(from);
    Answer a = askUntil(from, "tcp", ip, 80, answered, Ms(4000), 500);
    EXPECT_TRUE(answered(a)) << from << " -> " << ip << ":80: " << a;
    EXPECT_EQ(a.localPort, 8080) << a;
  }
}

// 8. externalTrafficPolicy Local: the owner is a node with a ready local
// endpoint (whatever the hash prefers), and the client address is kept; in
// IPv6 the owner answers the neighbour solicitation.
TEST_P(ClusterFamilyTest, LoadBalancerLocalPolicyOwnerHasLocalEndpoint) {
  const std::string local = "  externalTrafficPolicy: Local\n";
  writeManifest("lb08-pool.yaml",
                poolYaml("lb08", v4v6<std::string>("[198.18.0.214-198.18.0.215]",
                                                   "[\"2001:db8::214/128\", \"2001:db8::215/128\"]")));
  writeManifest("lb08-svc.yaml",
                svcYaml("lb08-a", "LoadBalancer", fam().vip(4, 13), "name: a", kWebPort, local) +
                    "---\n" +
                    svcYaml("lb08-c", "LoadBalancer", fam().vip(4, 14), "name: c", kWebPort, local));
  for (auto [svc, pod, node] : {std::tuple{"lb08-a", "pod-a", "node1"},
                                std::tuple{"lb08-c", "pod-c", "node2"}}) {
    SCOPED_TRACE(svc);
    std::string ip = lbIpEverywhere(svc);
    ASSERT_FALSE(ip.empty());
    EXPECT_EQ(ip.find(':') != std::string::npos, v6()) << ip;
    OwnerView v;
    EXPECT_EQ(agreedOwner(ip, Ms(4000), &v), node)
        << "Local policy: only " << node << " has an endpoint of " << svc << "\n" << v.dump;
    Answer a = askUntil("ext", "tcp", ip, 80, answered, Ms(4000), 500);
    ASSERT_TRUE(answered(a)) << a;
    EXPECT_EQ(a.name, pod) << a;
    EXPECT_EQ(a.clientIp, v4v6(kExt, kExt6)) << "Local policy keeps the client address: " << a;
    ArpProbe p = resolveProbe(ip);
    ASSERT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.macs, std::set<std::string>{macOf(node)}) << join(p.macs);
  }
}

}  // namespace
}  // namespace e2e

namespace e2e {
namespace {

// The IPv6 address of a dual-stack LoadBalancer (status.loadBalancer.ingress[1])
// as node reports it ("" if none).
std::string lbIp6Of(const std::string& node, const std::string& name) {
  json s = serviceOn(node, name);
  if (!s.is_object()) return "";
  json ing = s.value(json::json_pointer("/status/loadBalancer/ingress"), json::array());
  for (const auto& i : ing)
    if (i.value("ip", "").find(':') != std::string::npos) return i.value("ip", "");
  return "";
}

}  // namespace

// 9. A dual-stack LoadBalancer gets an address of each family; exactly one
// node, the owner, answers neighbour solicitations for the IPv6 one (with
// its eth0 MAC), and when the owner's agent stops the other node takes over
// with an unsolicited neighbour advertisement that moves ext's entry. Then
// with traffic: the IPv6 address served through its owner (XDP, SNAT to
// node1's IPv6 address when node1 forwards to pod-c) fails over to the
// other node while the ext client keeps asking.
TEST_F(ClusterTest, LoadBalancerIpv6NdpAnnounceAndFailover) {
  const std::string P = prefix(), cs = q(clusterSh()) + " ";
  struct AgentsBack {
    std::string cs, P;
    ~AgentsBack() {
      for (const char* n : {"node1", "node2"})
        sh(cs + "start-agent " + P + " " + n + " >/dev/null 2>&1 || true", 30);
    }
  } back{cs, P};
  writeManifest("lb09-nodes.yaml", nodesYaml(true, true));
  writeManifest("lb09-pool.yaml", poolYaml("lb09", "[198.18.0.221/32, \"2001:db8::221/128\"]"));
  writeManifest("lb09-dual.yaml", svcYaml("lb09-dual", "LoadBalancer", "", "name: c", kWebPort,
                                          "  ipFamilyPolicy: PreferDualStack\n"));
  std::string ip6;
  ASSERT_TRUE(waitFor([&] {
    ip6 = lbIp6Of("node1", "lb09-dual");
    return !ip6.empty() && ip6 == lbIp6Of("node2", "lb09-dual");
  }, Ms(5000))) << ferryctl("node1", "get services -o wide").out;
  EXPECT_EQ(ip6, "2001:db8::221");
  EXPECT_EQ(lbIpEverywhere("lb09-dual"), "198.18.0.221") << "primary family first";
  // kubectl's column: cut at 16 characters, whole with -o wide.
  EXPECT_EQ(extIpColumn("node1", "lb09-dual"), "198.18.0.221,...");
  EXPECT_EQ(tableRow("node1", "lb09-dual", true)["EXTERNAL-IP"], "198.18.0.221,2001:db8::221");

  OwnerView view;
  std::string owner = agreedOwner(ip6, Ms(4000), &view);
  ASSERT_FALSE(owner.empty()) << "agents do not agree on one owner of " << ip6 << "\n" << view.dump;
  const std::string ownerMac = macOf(owner), nextMac = macOf(otherNode(owner));
  flushExtNeigh();
  Neigh n;
  waitFor([&] { return !(n = resolveFromExt(ip6)).mac.empty(); }, Ms(4000), Ms(200));
  EXPECT_EQ(n.mac, ownerMac) << "ext's neighbour entry for " << ip6 << " (" << n.state
                             << ") must be the owner " << owner << "'s MAC; other " << nextMac;

  ShResult s = sh(cs + "stop-agent " + P + " " + owner, 30);
  ASSERT_EQ(s.rc, 0) << s.out;
  // No new solicitation from ext: only the unsolicited advertisement can move it.
  bool moved = waitFor([&] { return extNeigh(ip6).mac == nextMac; }, Ms(4000), Ms(100));
  EXPECT_TRUE(moved) << "ext's entry for " << ip6 << " stayed " << extNeigh(ip6).mac
                     << " after " << owner << " stopped; " << otherNode(owner) << " is " << nextMac
                     << "\n" << ownerView(ip6).dump;
  flushExtNeigh();
  n = Neigh{};
  waitFor([&] { return !(n = resolveFromExt(ip6)).mac.empty(); }, Ms(4000), Ms(200));
  EXPECT_EQ(n.mac, nextMac) << "the new owner answers solicitations";

  // With traffic: the ext client asks 2001:db8::221:80 back to back while
  // the owner stops; pod-c (node2) tells which node forwarded it (via node2
  // it sees the client, via node1 node1's IPv6 address: SNAT).
  s = sh(cs + "start-agent " + P + " " + owner + " >/dev/null", 30);
  ASSERT_EQ(s.rc, 0) << s.out;
  std::string owner2 = agreedOwner(ip6, Ms(5000), &view);
  ASSERT_FALSE(owner2.empty()) << view.dump;
  Answer a = askUntil("ext", "tcp", ip6, 80, [&](const Answer& x) { return viaNode(x) == owner2; },
                      Ms(6000), 300);
  ASSERT_EQ(viaNode(a), owner2) << "ext -> [" << ip6 << "]:80 through the owner " << owner2 << ": "
                                << a;
  EXPECT_EQ(a.localIp, kPodC6) << a;
  EXPECT_EQ(a.clientIp, owner2 == "node2" ? kExt6 : kNode1v6) << a;
  const std::string next2 = otherNode(owner2);
  Failover f = measureFailover(ip6, next2, [&] { sh(cs + "stop-agent " + P + " " + owner2, 30); });
  std::printf("[ LB INFO   ] IPv6 clean stop of owner %s: recovery %.0f ms through %s, %d failed "
              "attempts\n",
              owner2.c_str(), f.recoveryMs, next2.c_str(), f.failures);
  EXPECT_GE(f.recoveryMs, 0) << "no answer through " << next2 << " within 6 s\n"
                             << f.log << ownerView(ip6).dump;
  EXPECT_LE(f.recoveryMs, 2000 + 250) << f.log;
  EXPECT_EQ(extNeigh(ip6).mac, macOf(next2)) << "ext's neighbour entry must move to " << next2;
}

}  // namespace e2e
