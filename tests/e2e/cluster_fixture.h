// End-to-end test fixture: one netns test cluster (scripts/cluster.sh) for the
// whole e2e_tests binary, with three pods running ferry-echo, a host-network
// server on node2, Pod manifests, and ferryd on node1 and node2.
//
// Layout (TESTNET.md):
//   node1 198.18.0.11: pod a 198.18.129.2 (app=web, tier=front, name=a, http=8080)
//                      pod b 198.18.129.3 (app=web, tier=front, name=b, http=9090)
//   node2 198.18.0.12: pod c 198.18.130.2 (app=web, name=c, http=8080), iperf3 -s
//                      host-network ferry-echo "node2-host" on 198.18.0.12:7070
//                      and [2001:db8::12]:7070
// Every pod serves TCP 8080 and 9090 and UDP 5353 with ferry-echo (--name pod-<x>).
//
// Under CTest every case is its own test and process: the fixture test
// e2e_cluster_up (`e2e_tests --cluster-up`) brings the cluster up once,
// each case attaches to it (FERRY_E2E_ATTACH=1), and e2e_cluster_down
// removes it; `ctest -R <case>` runs the fixture tests around the case.
// Run directly, the binary brings its own cluster up in
// ClusterTest::SetUpTestSuite (once) and tears it down (`cluster.sh down P`)
// through a global test environment, an atexit hook, and signal handlers
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace e2e {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

inline constexpr const char* kPodA = "198.18.129.2";
inline constexpr const char* kPodB = "198.18.129.3";
inline constexpr const char* kPodC = "198.18.130.2";
// Their IPv6 addresses (TESTNET plan: node i's pods in 2001:db8:1:i::/64).
inline constexpr const char* kPodA6 = "2001:db8:1:1::2";
inline constexpr const char* kPodB6 = "2001:db8:1:1::3";
inline constexpr const char* kPodC6 = "2001:db8:1:2::2";
inline constexpr const char* kNode1 = "198.18.0.11";
inline constexpr const char* kNode2 = "198.18.0.12";
inline constexpr const char* kNode1v6 = "2001:db8::11";
inline constexpr const char* kNode2v6 = "2001:db8::12";

// One IP family of the test cluster, for cases parametrized by family
// (ClusterFamilyTest::fam()): the pods' and nodes' addresses in it, and where
// its ClusterIPs come from.
struct FamilyAddrs {
  const char* name;  // test name suffix: IPv4, IPv6
  const char* podA;
  const char* podB;
  const char* podC;
  const char* node1;
  const char* node2;
  // Test ClusterIP number (x, y): 198.19.x.y, or 2001:db8:ffff::XXYY
  // (x and y as two hex bytes) in the IPv6 service CIDR.
  std::string vip(int x, int y) const;
  // The pod a name belongs to ("pod-a") -> its address in this family ("" if none).
  std::string podIp(const std::string& name) const;
  bool v6() const;
};
inline constexpr FamilyAddrs kFamily4{"IPv4", kPodA, kPodB, kPodC, kNode1, kNode2};
inline constexpr FamilyAddrs kFamily6{"IPv6", kPodA6, kPodB6, kPodC6, kNode1v6, kNode2v6};

struct ShResult {
  int rc = -1;
  std::string out;
};

// Runs `cmd` with bash under `timeout -k 2 SEC`; stdout (and stderr if merge) captured.
// rc: exit status, 124 on timeout, 128+N when killed by signal N.
ShResult sh(const std::string& cmd, int timeoutSec = 30, bool mergeStderr = true);

// kill -9 a process and wait (at most 5 s) until it is gone or a zombie
// with no thread left: an agent started in the background is re-parented,
// and whoever reaps it may take its time, so waiting for the pid itself to
// vanish can hang; a zombie leader whose threads still exit holds its flocks.
ShResult killHard(int pid);

// Single-quote a string for bash.
std::string q(const std::string& s);

// Polls pred every `step` until it returns true or `timeout` passes (capped at 10 s).
bool waitFor(const std::function<bool()>& pred, Ms timeout = Ms(5000), Ms step = Ms(50));

// Cluster paths
const std::string& prefix();
std::string runDir();            // /tmp/ferry-P
std::string manifestsDir();      // /tmp/ferry-P/manifests
std::string clusterSh();         // <src>/scripts/cluster.sh
std::string echoBin();           // <build>/ferry-echo
std::string ferryctlBin();       // <build>/ferryctl
std::string socketOf(const std::string& node);  // /tmp/ferry-P/nodeN.sock

// Manifests (written atomically: temp file + rename). Files written during a
// test are removed by ClusterTest::TearDown.
void writeManifest(const std::string& name, const std::string& yaml);
void removeManifest(const std::string& name);

// A Service manifest. clusterIP and selector may be empty; selector is the inside
// of a YAML flow map ("app: web"); ports is a YAML flow sequence.
std::string serviceYaml(const std::string& name, const std::string& clusterIP,
                        const std::string& selector, const std::string& ports);

// Run a command in a pod ("a", "b", "c") or node ("node1", "node2", via node-exec),
// or in the external client netns P-ext (198.18.0.100) with "ext".
ShResult exec(const std::string& where, const std::string& cmd, int timeoutSec = 30);

// Established TCP connections in `where` (as for exec) whose local port is
// localPort, counted by `ss`; with peer, only those from that address.
int established(const std::string& where, int localPort, const std::string& peer = "");

// One parsed ferry-echo answer line: "NAME <client-ip>:<port> <local-ip>:<port>".
struct Answer {
  int rc = -1;            // ferry-echo exit status (0 ok, 3 refused, 4 timeout)
  std::string raw;        // whole output
  std::string name;       // who answered (pod-a, node2-host, ...), empty if none
  std::string clientIp;   // client address the server saw
  int clientPort = 0;
  std::string localIp;    // server's local address
  int localPort = 0;
  std::string peer;       // with --show-peer: "ip:port" the client socket saw
  bool ok() const { return rc == 0 && !name.empty(); }
  bool byPod() const { return name.rfind("pod-", 0) == 0; }
};
std::ostream& operator<<(std::ostream& os, const Answer& a);
// One server line ("NAME <client-ip>:<port> <local-ip>:<port>") parsed; rc stays -1.
Answer parseAnswer(const std::string& line);

// ferry-echo ask from a pod or node; extra is appended (e.g. "--show-peer").
Answer ask(const std::string& where, const std::string& proto, const std::string& ip, int port,
           int timeoutMs = 1000, const std::string& extra = "");
// ask --count N: one answer per line (stops at the first failure); rc in .second.
std::pair<std::vector<Answer>, int> askMany(const std::string& where, const std::string& proto,
                                            const std::string& ip, int port, int count,
                                            int timeoutMs = 1000);
// Retries ask until pred(answer) holds or timeout passes; returns the last answer.
Answer askUntil(const std::string& where, const std::string& proto, const std::string& ip,
                int port, const std::function<bool(const Answer&)>& pred,
                Ms timeout = Ms(5000), int askTimeoutMs = 500);

// ferryctl --socket <node sock> ARGS
ShResult ferryctl(const std::string& node, const std::string& args, bool mergeStderr = true);
// ferryctl get WHAT -o json, parsed (null json on failure)
nlohmann::json ferryctlJson(const std::string& node, const std::string& what = "services");
// The agent's whole reply to {"cmd": "snapshot"} on node's control socket
// (services, endpoints, errors, stats, announce, ...), read directly (ferryctl
// prints only parts of it); null json on failure (agent down, timeout).
nlohmann::json agentReply(const std::string& node, int timeoutMs = 3000);
// spec.clusterIP of Service default/name as node reports it ("" if absent)
std::string clusterIPOf(const std::string& node, const std::string& name);

// The outside world (cluster.sh outside-up, TESTNET.md 198.18.64.0/24): dnsmasq
// on kOutsideDns serving example.test (httpbin / www -> kOutsideHttp and
// kOutsideHttp6), the agents' DNS upstream; an HTTP server on kOutsideHttp:80
// and [kOutsideHttp6]:80 answering GET /get with kOutsideHttpBody.
inline constexpr const char* kOutsideDns = "198.18.64.1";
inline constexpr const char* kOutsideHttp = "198.18.64.2";
inline constexpr const char* kOutsideHttp6 = "2001:db8:64::2";
inline constexpr const char* kOutsideHttpBody = "httpbin.example.test says hello";

class Cluster {
 public:
  // Brings the cluster up once (or, under FERRY_E2E_ATTACH=1, attaches to the
  // one e2e_cluster_up made, restarting an agent an earlier case left down);
  // later calls return the first result.
  static bool ensureUp(std::string* err);
  // Starts the outside world's servers if they are not listening.
  static bool ensureOutside(std::string* err);
  // Idempotent: `cluster.sh down P` (only for a cluster this process brought up).
  static void down();
  // `e2e_tests --cluster-up` / `--cluster-down`: the CTest fixture tests.
  // Up uses FERRY_PREFIX (else a new prefix, left in <build>/e2e-cluster.prefix)
  // and records FERRY_OWNER (else the parent, ctest) as the run's owner.
  // Exit status 0 on success.
  static int fixtureUp();
  static int fixtureDown();
};

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  void TearDown() override;
};

// The IP family a case runs in: cases written once and run in both
// (TEST_P(ClusterFamilyTest, ...), INSTANTIATE_TEST_SUITE_P(..., kFamilies,
// familyName)) pick their addresses with v4v6().
enum class Family { IPv4, IPv6 };
inline const auto kFamilies = ::testing::Values(Family::IPv4, Family::IPv6);
std::string familyName(const ::testing::TestParamInfo<Family>& info);
inline void PrintTo(Family f, std::ostream* os) { *os << (f == Family::IPv6 ? "IPv6" : "IPv4"); }

class ClusterFamilyTest : public ClusterTest, public ::testing::WithParamInterface<Family> {
 protected:
  bool v6() const { return GetParam() == Family::IPv6; }
  // The IPv4 or the IPv6 one of two values, by the case's family.
  template <class T>
  T v4v6(T v4, T v6) const {
    return this->v6() ? v6 : v4;
  }
  // The test cluster's addresses in the case's family.
  const FamilyAddrs& fam() const { return v6() ? kFamily6 : kFamily4; }
};

// "ip:port" as ferry-echo prints a socket address ("[ip]:port" for IPv6).
std::string hostPort(const std::string& ip, int port);

// The client pod "cl" on node1 (both families), shared by the conntrack and
// endpoint-set cases: ensureClientPod adds it to the cluster if no earlier
// case did (each case runs in a process of its own on the shared cluster).
inline constexpr const char* kCl = "198.18.129.10";
inline constexpr const char* kCl6 = "2001:db8:1:1::10";
bool ensureClientPod(std::string* err);

}  // namespace e2e
