// Changes while running: endpoint changes, service removal, agent restarts under
// traffic (these in both families: ByFamily/ClusterFamilyTest.<case>/IPv4|IPv6),
// and invalid manifests next to valid ones.
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

using Clock = std::chrono::steady_clock;

long msSince(Clock::time_point t0) {
  return std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
}

TEST_P(ClusterFamilyTest, EndpointsChangeWhileRunning) {
  const std::string vip = fam().vip(1, 7);
  const std::string ports = "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]";
  writeManifest("t07-change.yaml", serviceYaml("t07-change", vip, "tier: front", ports));
  ASSERT_TRUE(askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).ok());
  auto [before, rc] = askMany("a", "tcp", vip, 80, 10);
  ASSERT_EQ(rc, 0);
  for (const auto& a : before)
    EXPECT_TRUE(a.name == "pod-a" || a.name == "pod-b") << "tier=front is a and b: " << a;

  // selector now matches only pod c: within 2 s every answer comes from pod c
  writeManifest("t07-change.yaml", serviceYaml("t07-change", vip, "name: c", ports));
  auto t0 = Clock::now();
  int streak = 0;
  long switchedAt = -1;
  while (msSince(t0) < 4000 && streak < 5) {
    Answer a = ask("a", "tcp", vip, 80, 500);
    if (a.name == "pod-c") {
      if (streak++ == 0) switchedAt = msSince(t0);
    } else {
      streak = 0;
    }
  }
  ASSERT_EQ(streak, 5) << "answers never settled on pod c";
  EXPECT_LE(switchedAt, 2000) << "endpoint change took " << switchedAt << " ms";
  auto [after, rc2] = askMany("a", "tcp", vip, 80, 10);
  ASSERT_EQ(rc2, 0);
  for (const auto& a : after) {
    EXPECT_EQ(a.name, "pod-c") << a;
    EXPECT_EQ(a.clientIp, fam().podA) << a;
  }

  // Service file deleted: the ClusterIP is no longer answered by any pod
  removeManifest("t07-change.yaml");
  Answer gone = askUntil("a", "tcp", vip, 80, [](const Answer& a) { return !a.byPod(); },
                         Ms(5000), 300);
  ASSERT_FALSE(gone.byPod()) << "still answered after the Service was deleted: " << gone;
  for (int i = 0; i < 3; ++i) {
    Answer a = ask("a", "tcp", vip, 80, 300);
    EXPECT_FALSE(a.byPod()) << a;
    EXPECT_NE(a.rc, 0) << a;
  }
  EXPECT_EQ(clusterIPOf("node1", "t07-change"), "");
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

bool agentAlive(int pid) {
  std::string st = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (st.empty()) return false;
  auto p = st.rfind(')');
  return p != std::string::npos && p + 2 < st.size() && st[p + 2] != 'Z' && st[p + 2] != 'X';
}

TEST_P(ClusterFamilyTest, AgentRestartDuringTraffic) {
  const std::string vip = fam().vip(1, 11);
  writeManifest("t11-restart.yaml",
                serviceYaml("t11-restart", vip, "name: c",
                            "[{name: iperf, port: 5201, targetPort: 5201, protocol: TCP},"
                            " {name: echo, port: 80, targetPort: 8080, protocol: TCP}]"));
  Answer first = askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); });
  ASSERT_EQ(first.name, "pod-c") << first;
  ASSERT_EQ(askUntil("b", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).name, "pod-c");

  const std::string cs = q(clusterSh()) + " ";
  const std::string P = prefix();
  // The flows outlast the graceful restart even on a busy 2-core machine,
  // where loading the programs alone takes ferryd 7 s or more.
  auto iperf = std::async(std::launch::async, [&] {
    return exec("a", "iperf3 -c " + vip + " -p 5201 -t 12 -b 2G --connect-timeout 3000", 40);
  });
  auto hold = std::async(std::launch::async, [&] {
    return exec("b", q(echoBin()) + " hold tcp " + vip + " 80 --seconds 12", 40);
  });
  // both flows are live at pod c before the agent goes: iperf3's control and
  // data connections from pod a, the held connection from pod b
  auto flowsLive = [&] {
    return established("c", 5201, fam().podA) >= 2 && established("c", 8080, fam().podB) >= 1;
  };
  ASSERT_TRUE(waitFor(flowsLive, Ms(5000), Ms(100)))
      << "iperf3 / hold never connected through " << vip << ": "
      << exec("c", "ss -Htn state established").out;

  // 1. graceful stop (SIGTERM) and restart
  std::string pidPath = runDir() + "/node1.pid";
  int pid1 = std::atoi(readFile(pidPath).c_str());
  ShResult r = sh(cs + "stop-agent " + P + " node1", 30);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(agentAlive(pid1)) << "ferryd still running after stop-agent";
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  // the restarted agent has read the pinned state back and programmed the
  // service, and both flows survived the restart
  EXPECT_TRUE(waitFor([&] { return clusterIPOf("node1", "t11-restart") == vip; }))
      << ferryctl("node1", "get services").out;
  EXPECT_TRUE(flowsLive()) << "flows lost across the graceful restart: "
                           << exec("c", "ss -Htn state established").out;

  // 2. kill -9 and restart
  int pid2 = std::atoi(readFile(pidPath).c_str());
  ASSERT_GT(pid2, 0);
  ASSERT_NE(pid2, pid1);
  r = sh("kill -9 " + std::to_string(pid2), 10);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(waitFor([&] { return !agentAlive(pid2); }, Ms(3000)));
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;

  ShResult ip = iperf.get();
  ShResult hd = hold.get();
  EXPECT_EQ(ip.rc, 0) << "iperf3 through the ClusterIP failed during agent restarts:\n"
                      << ip.out;
  EXPECT_EQ(hd.rc, 0) << hd.out;
  // stdout "ok <bytes>" (stderr, merged, may carry an informational line first)
  EXPECT_TRUE(hd.out.rfind("ok ", 0) == 0 || hd.out.find("\nok ") != std::string::npos)
      << "hold: " << hd.out;

  // new connections work after the restarts, and the control socket answers
  Answer after = askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); });
  EXPECT_EQ(after.name, "pod-c") << after;
  EXPECT_EQ(after.clientIp, fam().podA) << after;
  ShResult svc;
  ASSERT_TRUE(waitFor([&] {
    svc = ferryctl("node1", "get services");
    return svc.rc == 0 && svc.out.find("t11-restart") != std::string::npos;
  })) << svc.out;
  EXPECT_NE(svc.out.find(vip), std::string::npos) << svc.out;
  EXPECT_EQ(clusterIPOf("node1", "t11-restart"), vip);
}

// errors entries that name this file
std::vector<nlohmann::json> errorsFor(const std::string& node, const std::string& file) {
  std::vector<nlohmann::json> out;
  nlohmann::json j = ferryctlJson(node, "errors");
  nlohmann::json arr = j.is_array() ? j : j.value("items", nlohmann::json::array());
  for (const auto& e : arr) {
    std::string f = e.value("file", "");
    if (f.size() >= file.size() && f.compare(f.size() - file.size(), file.size(), file) == 0)
      out.push_back(e);
  }
  return out;
}

bool hasError(const std::string& node, const std::string& file, const std::string& object,
              const std::string& field) {
  for (const auto& e : errorsFor(node, file))
    if (e.value("object", "") == object && e.value("field", "") == field) return true;
  return false;
}

TEST_F(ClusterTest, BadManifestNextToGoodOnes) {
  const std::string vipBefore = "198.19.1.12", vipGood = "198.19.1.13", vipTurns = "198.19.1.14",
                    vipBad = "198.19.1.15";
  const std::string ports = "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]";
  auto answered = [](const Answer& a) { return a.ok(); };
  writeManifest("t12-before.yaml", serviceYaml("t12-before", vipBefore, "app: web", ports));
  writeManifest("t12-turns.yaml", serviceYaml("t12-turns", vipTurns, "app: web", ports));
  ASSERT_TRUE(askUntil("a", "tcp", vipBefore, 80, answered).ok());
  ASSERT_TRUE(askUntil("a", "tcp", vipTurns, 80, answered).ok());

  // one file: an invalid Service, then a valid one
  writeManifest("t12-mixed.yaml",
                serviceYaml("t12-bad", vipBad, "app: web",
                            "[{name: web, port: 70000, targetPort: 8080, protocol: TCP}]") +
                    "---\n" + serviceYaml("t12-good", vipGood, "app: web", ports));
  for (const char* node : {"node1", "node2"}) {
    EXPECT_TRUE(waitFor([&] {
      return hasError(node, "/t12-mixed.yaml", "Service default/t12-bad", "spec.ports[0].port");
    })) << node << ": errors: " << ferryctl(node, "get errors -o json").out;
  }
  ShResult plain = ferryctl("node1", "get errors");
  EXPECT_EQ(plain.rc, 0) << plain.out;
  EXPECT_NE(plain.out.find("t12-mixed.yaml"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("Service default/t12-bad"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("spec.ports[0].port"), std::string::npos) << plain.out;

  Answer good = askUntil("a", "tcp", vipGood, 80, answered);
  EXPECT_TRUE(good.ok() && good.byPod()) << "valid Service in the same file: " << good;
  for (const std::string& vip : {vipBefore, vipTurns}) {
    auto [as, rc] = askMany("a", "tcp", vip, 80, 5);
    EXPECT_EQ(rc, 0) << vip;
    for (const auto& a : as) EXPECT_TRUE(a.byPod()) << a;
  }
  Answer bad = ask("a", "tcp", vipBad, 80, 300);
  EXPECT_FALSE(bad.byPod()) << "invalid Service must not be programmed: " << bad;
  EXPECT_EQ(clusterIPOf("node1", "t12-good"), vipGood);

  // a good Service turns bad: it keeps its last good programming, error listed
  writeManifest("t12-turns.yaml",
                serviceYaml("t12-turns", vipTurns, "app: web",
                            "[{name: web, port: 70000, targetPort: 8080, protocol: TCP}]"));
  EXPECT_TRUE(waitFor([&] {
    return hasError("node1", "/t12-turns.yaml", "Service default/t12-turns", "spec.ports[0].port");
  })) << ferryctl("node1", "get errors -o json").out;
  for (int i = 0; i < 5; ++i) {
    Answer a = ask("a", "tcp", vipTurns, 80, 1000);
    EXPECT_TRUE(a.ok() && a.byPod()) << "last good programming must stay: " << a;
    std::this_thread::sleep_for(Ms(100));
  }
  for (const std::string& vip : {vipBefore, vipGood}) {
    Answer a = ask("a", "tcp", vip, 80, 1000);
    EXPECT_TRUE(a.ok() && a.byPod()) << vip << ": " << a;
  }

  // removing the files clears their errors
  removeManifest("t12-mixed.yaml");
  removeManifest("t12-turns.yaml");
  EXPECT_TRUE(waitFor([&] {
    return errorsFor("node1", "/t12-mixed.yaml").empty() &&
           errorsFor("node1", "/t12-turns.yaml").empty();
  })) << ferryctl("node1", "get errors -o json").out;
}

}  // namespace
}  // namespace e2e
