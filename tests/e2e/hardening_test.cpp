// Hardening against hostile input, clients and restarts (issue 11), against
// live agents: the hostile-input catalogue while connections and DNS queries
// run, control-socket abuse while DNS keeps answering, and restarts with a
// corrupt allocation record, a second agent on the same pin directory and a
// record lock held by another process.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "catalogue.h"
#include "cluster_fixture.h"

namespace e2e {
namespace {

using Clock = std::chrono::steady_clock;
// Under ASan/UBSan (scripts/sanitize.sh sets FERRY_SANITIZED) the agent is
// several times slower and its allocator keeps a quarantine: time and
// memory bounds are scaled by this.
int slack() { return std::getenv("FERRY_SANITIZED") ? 4 : 1; }
constexpr const char* kGoodVip = "198.19.7.1";
const std::string kGoodName = "hx-good.default.svc.cluster.local";

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
int agentPid(const std::string& node) {
  return std::atoi(slurp(runDir() + "/" + node + ".pid").c_str());
}
bool alive(int pid) {
  std::string st = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto p = st.rfind(')');
  return p != std::string::npos && p + 2 < st.size() && st[p + 2] != 'Z' && st[p + 2] != 'X';
}
long rssKb(int pid) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string l; std::getline(in, l);)
    if (l.rfind("VmRSS:", 0) == 0) return std::atol(l.c_str() + 6);
  return -1;
}
bool servesDns() {
  return exec("node1", "ss -Hlun 'sport = :53'", 10).out.find("198.18.0.11:53") != std::string::npos;
}

// Errors the agent reports for a file name (suffix match), as JSON objects.
std::vector<nlohmann::json> errorsFor(const nlohmann::json& reply, const std::string& file) {
  std::vector<nlohmann::json> out;
  if (!reply.is_object() || !reply["errors"].is_array()) return out;
  for (const auto& e : reply["errors"]) {
    std::string f = e.value("file", "");
    if (f.size() >= file.size() && f.compare(f.size() - file.size(), file.size(), file) == 0)
      out.push_back(e);
  }
  return out;
}

// A background loop in a pod until `stop` exists (or maxSec): TCP
// connections to the good service, or DNS queries for its name.
struct Loop {
  std::string stop;
  std::future<ShResult> done;
  static Loop connections(const std::string& pod, const std::string& vip, int maxSec,
                          int port = 80) {
    Loop l;
    l.stop = runDir() + "/hx-stop-conn-" + pod;
    std::remove(l.stop.c_str());
    std::string cmd = "ok=0; fail=0; end=$((SECONDS+" + std::to_string(maxSec) + ")); "
                      "while [ ! -e " + q(l.stop) + " ] && [ $SECONDS -lt $end ]; do "
                      "if " + q(echoBin()) + " ask tcp " + vip + " " + std::to_string(port) + " --timeout-ms 1000 >/dev/null 2>&1; "
                      "then ok=$((ok+1)); else fail=$((fail+1)); fi; done; echo \"conn $ok $fail\"";
    l.done = std::async(std::launch::async,
                        [pod, cmd, maxSec] { return exec(pod, "bash -c " + q(cmd), maxSec + 20); });
    return l;
  }
  static Loop dns(const std::string& pod, int maxSec) {
    Loop l;
    l.stop = runDir() + "/hx-stop-dns-" + pod;
    std::remove(l.stop.c_str());
    std::string cmd = "end=$((SECONDS+" + std::to_string(maxSec) + ")); "
                      "while [ ! -e " + q(l.stop) + " ] && [ $SECONDS -lt $end ]; do "
                      "out=$(dig +tries=1 +time=" + std::to_string(slack()) + " @198.18.0.11 " + kGoodName + " A 2>&1); "
                      "if printf '%s' \"$out\" | grep -q '^" + kGoodName + ".*" + kGoodVip + "'; then "
                      "echo \"ok $(printf '%s' \"$out\" | sed -n 's/^;; Query time: \\([0-9]*\\) msec.*/\\1/p')\"; "
                      "else echo fail; fi; done";
    l.done = std::async(std::launch::async,
                        [pod, cmd, maxSec] { return exec(pod, "bash -c " + q(cmd), maxSec + 20); });
    return l;
  }
  std::string finish() {
    hostile::writeFile(stop, "");
    std::string out = done.get().out;
    std::remove(stop.c_str());
    return out;
  }
};

struct DnsFigures {
  int ok = 0, failed = 0;
  double p99 = 0, max = 0;
};
DnsFigures dnsFigures(const std::string& out) {
  DnsFigures f;
  std::vector<int> ms;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("ok ", 0) == 0) {
      ++f.ok;
      ms.push_back(std::atoi(l.c_str() + 3));
    } else if (l == "fail") {
      ++f.failed;
    }
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    f.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    f.max = ms.back();
  }
  return f;
}
std::pair<int, int> connFigures(const std::string& out) {
  int ok = -1, fail = -1;
  auto p = out.find("conn ");
  if (p != std::string::npos) std::sscanf(out.c_str() + p, "conn %d %d", &ok, &fail);
  return {ok, fail};
}

class HardeningTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    // The good service every case must leave alone, and DNS on node1.
    writeManifest("aa-hx-good.yaml", serviceYaml("hx-good", kGoodVip, "name: c",
                                                 "[{name: web, port: 80, targetPort: 8080}]"));
    if (!servesDns()) {
      std::string cs = q(clusterSh()) + " ";
      sh(cs + "stop-agent " + prefix() + " node1", 30);
      ShResult r = sh(cs + "start-agent " + prefix() + " node1 --dns-listen 198.18.0.11:53 >/dev/null", 30);
      ASSERT_EQ(r.rc, 0) << r.out;
    }
    ASSERT_TRUE(askUntil("a", "tcp", kGoodVip, 80, [](const Answer& a) { return a.ok(); }).ok());
    ASSERT_TRUE(waitFor([] {
      return exec("a", "dig +short +tries=1 +time=1 @198.18.0.11 " + kGoodName, 5).out.find(kGoodVip) !=
             std::string::npos;
    }, Ms(5000), Ms(100))) << "DNS on node1 does not answer for " << kGoodName;
  }
};

TEST_F(HardeningTest, HostileCatalogueAgainstLiveAgents) {
  const std::string src = std::string(FERRY_SOURCE_DIR) + "/tests/hostile";
  auto cases = hostile::load(src);
  ASSERT_GE(cases.size(), 45u);
  int pid1 = agentPid("node1"), pid2 = agentPid("node2");
  long rss0 = rssKb(pid1);
  Loop conn = Loop::connections("b", kGoodVip, 150);
  Loop dns = Loop::dns("a", 150);
  int survived = 0, clear = 0;
  long rssMax = rss0;
  auto t0 = Clock::now();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string name = "hx-case-" + c.file;
    const std::string path = manifestsDir() + "/" + name;
    bool special = c.kind == "special";
    if (special) {
      ASSERT_TRUE(hostile::materialise(c, src, path));
    } else {  // in place by a rename, as an editor or kubectl would
      std::string tmp = runDir() + "/" + name;
      ASSERT_TRUE(hostile::materialise(c, src, tmp));
      ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
    }
    nlohmann::json reply;
    bool found = false;
    waitFor([&] {
      reply = agentReply("node1", 2000);
      for (const auto& e : errorsFor(reply, name))
        found |= e.value("object", "") == c.object && e.value("field", "") == c.field &&
                 e.value("message", "").find(c.message) != std::string::npos;
      return !c.expectsError() || found;
    }, Ms(c.expectsError() ? 5000 : 400), Ms(50));
    bool up = alive(pid1) && alive(pid2) && agentPid("node1") == pid1 && agentPid("node2") == pid2;
    EXPECT_TRUE(up) << "an agent died";
    EXPECT_TRUE(reply.is_object()) << "node1 does not answer on its control socket";
    survived += up;
    if (c.expectsError()) {
      EXPECT_TRUE(found) << "want " << c.object << " | " << c.field << " | " << c.message << "\ngot "
                         << nlohmann::json(errorsFor(reply, name)).dump(-1, ' ', false,
                                                    nlohmann::json::error_handler_t::replace).substr(0, 800);
      clear += found;
    } else {
      EXPECT_TRUE(errorsFor(reply, name).empty());
    }
    for (const auto& e : errorsFor(reply, name))
      EXPECT_LE(e.value("message", "").size(), 600u) << "an error quotes too much input";
    long rss = rssKb(pid1);
    rssMax = std::max(rssMax, rss);
    EXPECT_LT(rss, rss0 + slack() * 200 * 1024) << "RSS grew from " << rss0 << " kB to " << rss << " kB";
    hostile::remove(path);
    if (!up) break;
  }
  // The catalogue's cleanup must have settled: no case's error remains.
  EXPECT_TRUE(waitFor([] {
    auto r = agentReply("node1");
    return r.is_object() && errorsFor(r, "").size() == r["errors"].size() &&
           std::none_of(r["errors"].begin(), r["errors"].end(), [](const nlohmann::json& e) {
             return e.value("file", "").find("hx-case-") != std::string::npos;
           });
  }, Ms(5000)));
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0).count();
  auto [ok, failed] = connFigures(conn.finish());
  DnsFigures d = dnsFigures(dns.finish());
  std::printf("[ HOSTILE  ] %zu cases in %lld s: %d survived, %d clear errors; connections to "
              "other services %d ok / %d failed; DNS %d ok / %d failed (p99 %.0f ms); RSS %ld -> "
              "max %ld kB\n",
              cases.size(), (long long)secs, survived, clear, ok, failed, d.ok, d.failed, d.p99,
              rss0, rssMax);
  EXPECT_EQ(survived, int(cases.size()));
  EXPECT_GT(ok, 0);
  EXPECT_EQ(failed, 0) << "connections to a service no bad file names failed";
  EXPECT_GT(d.ok, 0);
  EXPECT_EQ(d.failed, 0) << "DNS queries failed during the catalogue";
}

int connectControl(const std::string& node) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string p = socketOf(node);
  std::strncpy(sa.sun_path, p.c_str(), sizeof sa.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `req` raw and reads the reply line (timeout 3 s).
std::string rawRequest(const std::string& req) {
  int fd = connectControl("node1");
  if (fd < 0) return "";
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.find('\n') == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0)
    out.append(buf, size_t(n));
  close(fd);
  return out;
}

TEST_F(HardeningTest, ControlSocketAbuseWhileDnsAnswers) {
  int pid = agentPid("node1");
  Loop dns = Loop::dns("a", 60);
  std::this_thread::sleep_for(Ms(500));
  // 16 idle clients, held for the whole test.
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) idle.push_back(connectControl("node1"));
  // One client trickling a byte every 0.5 s: cut at its deadline (5 s).
  auto trickle = std::async(std::launch::async, [] {
    int fd = connectControl("node1");
    auto t0 = Clock::now();
    while (Clock::now() - t0 < std::chrono::seconds(12)) {
      if (send(fd, "{", 1, MSG_NOSIGNAL) < 0) break;
      std::this_thread::sleep_for(Ms(500));
      char b;
      ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    }
    close(fd);
    return std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  });
  // Early-closing clients (SIGPIPE before the fix).
  for (int round = 0; round < 25; ++round)
    for (int i = 0; i < 4; ++i) {
      int fd = connectControl("node1");
      const char req[] = "{\"cmd\": \"snapshot\"}\n";
      (void)!send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
      close(fd);
    }
  // Malformed requests: each gets an error reply.
  for (std::string req : {std::string("\"snapshot\"\n"), std::string("[]\n"), std::string("{\"cmd\": 5}\n"),
                          std::string("{\"cmd\": null}\n"), std::string("{\"cmd\": \"x\xff\"}\n"),
                          std::string(100000, '[') + "\n", std::string("{\"cmd\"\n"),
                          std::string(70000, 'x')}) {
    std::string reply = rawRequest(req);
    auto j = nlohmann::json::parse(reply, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << req.substr(0, 30) << " -> " << reply.substr(0, 200);
  }
  // A new Service appears while the idle clients are held.
  auto t0 = Clock::now();
  writeManifest("hx-ctl-new.yaml", serviceYaml("hx-ctl-new", "198.19.7.2", "name: c",
                                               "[{name: web, port: 80, targetPort: 8080}]"));
  Answer a = askUntil("a", "tcp", "198.19.7.2", 80, [](const Answer& x) { return x.ok(); }, Ms(5000));
  auto appearMs = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_LT(appearMs, 2000 * slack()) << "a new Service took " << appearMs << " ms with 16 idle clients";
  // 300 concurrent ferryctl calls: none refused.
  ShResult many = sh("for i in $(seq 300); do (" + q(ferryctlBin()) + " --socket " + q(socketOf("node1")) +
                         " get services -A >/dev/null 2>&1 || echo FAIL) & done; wait", 120);
  int refused = 0;
  for (size_t p = 0; (p = many.out.find("FAIL", p)) != std::string::npos; ++p) ++refused;
  EXPECT_EQ(refused, 0) << "of 300 concurrent ferryctl calls";
  long trickleMs = trickle.get();
  EXPECT_LE(trickleMs, 5000 + 2000 * slack()) << "a trickling client was not cut at its deadline";
  for (int fd : idle) close(fd);
  DnsFigures d = dnsFigures(dns.finish());
  std::printf("[ CONTROL  ] DNS %d ok / %d failed, p99 %.0f ms, max %.0f ms; new service after %lld ms; "
              "trickler cut after %ld ms; 300 ferryctl: %d refused\n",
              d.ok, d.failed, d.p99, d.max, (long long)appearMs, trickleMs, refused);
  EXPECT_TRUE(alive(pid) && agentPid("node1") == pid) << "the agent died";
  // A frozen loop (one client served at a time) stalled DNS for seconds.
  // No-stall check, not a timed percentile (which flaked on a loaded
  // 2-core machine): every query of the loop (dig, one try) was answered
  // within the client's timeout (slack() s), none lost. The figures are
  // printed above.
  EXPECT_GT(d.ok, 20);
  EXPECT_EQ(d.failed, 0) << "DNS queries lost or not answered within " << slack()
                         << " s while the control socket is abused";
  EXPECT_LE(d.max, 1000.0 * slack()) << "a DNS answer took longer than the client's timeout";
}

TEST_F(HardeningTest, RestartWithCorruptAllocationRecordKeepsServices) {
  writeManifest("hx-rst.yaml",
                serviceYaml("hx-rst-fixed", "198.19.7.3", "name: c", "[{name: web, port: 80, targetPort: 8080}]") +
                    "---\n" + serviceYaml("hx-rst-dyn", "", "name: c", "[{name: web, port: 8181, targetPort: 8080}]"));
  ASSERT_TRUE(waitFor([] { return !clusterIPOf("node1", "hx-rst-dyn").empty(); }));
  std::string dyn = clusterIPOf("node1", "hx-rst-dyn");
  ASSERT_TRUE(askUntil("a", "tcp", dyn, 8181, [](const Answer& x) { return x.ok(); }).ok());
  const std::string record = manifestsDir() + "/.ferry/allocations.json";
  const std::string cs = q(clusterSh()) + " ";
  ASSERT_EQ(sh(cs + "stop-agent " + prefix() + " node1", 30).rc, 0);
  std::string text = slurp(record);
  ASSERT_GT(text.size(), 20u);
  hostile::writeFile(record, text.substr(0, text.size() / 2));  // truncated mid-way
  Loop conn = Loop::connections("a", "198.19.7.3", 40);
  ShResult r = sh(cs + "start-agent " + prefix() + " node1 --dns-listen 198.18.0.11:53 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  std::this_thread::sleep_for(Ms(1500));
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(ask("a", "tcp", "198.19.7.3", 80).ok());
    EXPECT_TRUE(ask("a", "tcp", dyn, 8181).ok()) << "the dynamic ClusterIP moved or vanished";
  }
  auto [ok, failed] = connFigures(conn.finish());
  EXPECT_GT(ok, 0);
  EXPECT_EQ(failed, 0) << "connections failed across the restart with a corrupt record";
  EXPECT_EQ(clusterIPOf("node1", "hx-rst-dyn"), dyn);
  EXPECT_EQ(clusterIPOf("node1", "hx-good"), kGoodVip);
  EXPECT_EQ(sh("ls " + q(record) + ".corrupt-*", 5).rc, 0) << "the corrupt record was not kept aside";
  EXPECT_NE(slurp(runDir() + "/node1.log").find("corrupt allocation record"), std::string::npos);
  sh("rm -f " + q(record) + ".corrupt-*", 5);
}

// A restart while another process holds the record's lock: the agent cannot
// allocate, so its model lacks the services; planning it would delete what
// is pinned. The pinned state must stay until the record is usable.
TEST_F(HardeningTest, RestartWhileRecordLockedKeepsPinnedServices) {
  writeManifest("hx-lkr.yaml", serviceYaml("hx-lkr-dyn", "", "name: c",
                                           "[{name: web, port: 8282, targetPort: 8080}]"));
  ASSERT_TRUE(waitFor([] { return !clusterIPOf("node1", "hx-lkr-dyn").empty(); }));
  std::string dyn = clusterIPOf("node1", "hx-lkr-dyn");
  ASSERT_TRUE(askUntil("a", "tcp", dyn, 8282, [](const Answer& x) { return x.ok(); }).ok());
  const std::string cs = q(clusterSh()) + " ";
  ASSERT_EQ(sh(cs + "stop-agent " + prefix() + " node1", 30).rc, 0);
  const std::string lock = manifestsDir() + "/.ferry/allocations.json.lock";
  const std::string held = runDir() + "/hx-lkr-held";
  // The lock is held until the test has seen the agent keep its pinned state
  // (the held file is removed), at most 25 s: a fixed hold raced the agent's
  // start on a loaded machine, which then found the lock already free.
  auto holder = std::async(std::launch::async, [&] {
    return sh("flock " + q(lock) + " sh -c 'touch " + q(held) + "; i=0; while [ -e " + q(held) +
                  " ] && [ $i -lt 250 ]; do sleep 0.1; i=$((i+1)); done'",
              40);
  });
  ASSERT_TRUE(waitFor([&] { return access(held.c_str(), F_OK) == 0; }));
  Loop conn = Loop::connections("a", dyn, 40, 8282);
  ShResult r = sh(cs + "start-agent " + prefix() + " node1 --dns-listen 198.18.0.11:53 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(waitFor([&] {
    return slurp(runDir() + "/node1.log").find("keeping the pinned state") != std::string::npos;
  }, Ms(15000))) << "the agent never reported the unusable record";
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(ask("a", "tcp", dyn, 8282).ok()) << "a pinned service was dropped while the record was locked";
    EXPECT_TRUE(ask("a", "tcp", kGoodVip, 80).ok()) << "a pinned service was dropped while the record was locked";
  }
  sh("rm -f " + q(held), 5);
  holder.get();
  EXPECT_TRUE(waitFor([&] { return clusterIPOf("node1", "hx-lkr-dyn") == dyn; }))
      << "the service did not come back with its address once the lock was released";
  auto [ok, failed] = connFigures(conn.finish());
  EXPECT_GT(ok, 0);
  EXPECT_EQ(failed, 0) << "connections failed across a restart with the record locked";
  removeManifest("hx-lkr.yaml");
}

TEST_F(HardeningTest, SecondAgentOnTheSamePinDirectoryExitsAndTouchesNothing) {
  auto before = agentReply("node1");
  ASSERT_TRUE(before.is_object());
  std::string empty = runDir() + "/hx-empty-manifests";
  sh("mkdir -p " + q(empty) + " " + q(runDir() + "/hx-state-second"), 5);
  std::string ferryd = std::string(FERRY_BINARY_DIR) + "/ferryd";
  ShResult r = sh("nsenter --net=/run/netns/" + prefix() + "-node1 " + q(ferryd) + " --manifests " + q(empty) +
                      " --node-name node1 --service-cidr 198.19.0.0/16 --bpffs " +
                      q(runDir() + "/bpffs/node1") + " --socket " + q(runDir() + "/hx-second.sock") +
                      " --state-dir " + q(runDir() + "/hx-state-second") + " --allocations " +
                      q(empty + "/alloc.json"),
                  15);
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.rc, 124) << "the second agent kept running";
  EXPECT_NE(r.out.find("one agent per pin directory"), std::string::npos) << r.out;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(ask("a", "tcp", kGoodVip, 80).ok());
  auto after = agentReply("node1");
  EXPECT_EQ(after["programmed"], before["programmed"]);
  sh("rm -rf " + q(empty) + " " + q(runDir() + "/hx-state-second"), 5);
}

TEST_F(HardeningTest, RecordLockHeldElsewhereDoesNotFreezeTheAgent) {
  const std::string lock = manifestsDir() + "/.ferry/allocations.json.lock";
  auto holder = std::async(std::launch::async, [&] { return sh("flock " + q(lock) + " sleep 4", 20); });
  std::this_thread::sleep_for(Ms(300));
  auto t0 = Clock::now();
  writeManifest("hx-lock.yaml", serviceYaml("hx-lock", "198.19.7.4", "name: c",
                                            "[{name: web, port: 80, targetPort: 8080}]"));
  // While locked: the agent answers, DNS answers.
  for (int i = 0; i < 5; ++i) {
    auto s = Clock::now();
    EXPECT_TRUE(agentReply("node1", 1000).is_object());
    EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - s).count(), 500);
    EXPECT_NE(exec("a", "dig +short +tries=1 +time=1 @198.18.0.11 " + kGoodName, 5).out.find(kGoodVip),
              std::string::npos);
    std::this_thread::sleep_for(Ms(300));
  }
  holder.get();
  Answer a = askUntil("a", "tcp", "198.19.7.4", 80, [](const Answer& x) { return x.ok(); }, Ms(5000));
  EXPECT_TRUE(a.ok()) << "the service never appeared after the lock was released: " << a;
  std::printf("[ LOCK     ] service appeared %lld ms after the write (lock held ~4 s)\n",
              (long long)std::chrono::duration_cast<Ms>(Clock::now() - t0).count());
}

TEST_F(HardeningTest, MapsWipedBehindTheAgentsBackAreRepaired) {
  // What a second agent with an empty manifest directory did before the
  // pin lock: every service entry deleted. The agent's periodic check
  // (every 10 s) must notice and put them back.
  const std::string map = runDir() + "/bpffs/node1/ferry_svc";
  ShResult wipe = sh("bpftool -j map dump pinned " + q(map) +
                         " | jq -r '.[].key | join(\" \")' | while read -r k; do "
                         "bpftool map delete pinned " + q(map) + " key $k; done; "
                         "bpftool -j map dump pinned " + q(map) + " | jq length",
                     60);
  ASSERT_EQ(wipe.rc, 0) << wipe.out;
  EXPECT_EQ(wipe.out.substr(0, 1), "0") << "the map was not wiped: " << wipe.out;
  auto t0 = Clock::now();
  Answer a = askUntil("a", "tcp", kGoodVip, 80, [](const Answer& x) { return x.ok(); }, Ms(10000), 300);
  if (!a.ok()) a = askUntil("a", "tcp", kGoodVip, 80, [](const Answer& x) { return x.ok(); }, Ms(10000), 300);
  auto ms = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  EXPECT_TRUE(a.ok()) << "the service was never repaired: " << a;
  EXPECT_LT(ms, 15000);
  EXPECT_NE(slurp(runDir() + "/node1.log").find("maps drifted"), std::string::npos);
  std::printf("[ DRIFT    ] service map wiped; repaired and answering after %lld ms\n", (long long)ms);
}

}  // namespace
}  // namespace e2e
