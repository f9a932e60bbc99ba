// The sliced map write (issue 12) in a real agent: a manifest whose map
// delta is larger than the agent's sliced-write threshold (2,048 entries)
// is written over several passes of the event loop. Found broken once: a
// sliced write begun by the agent's first sync (before its loop) was only
// continued at the next source event, so an agent started on a large
// directory programmed a prefix of it and waited (or, with more objects
// than the agent's first event slice, planned nothing). This case starts
// the agent on such a file and then touches no file again.
#include <fstream>
#include <future>
#include <regex>

#include "cluster_fixture.h"

namespace e2e {
namespace {

std::string readFrom(const std::string& path, std::streamoff from) {
  std::ifstream f(path);
  f.seekg(from);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::streamoff sizeOf(const std::string& path) {
  std::ifstream f(path, std::ios::ate);
  return f ? std::streamoff(f.tellg()) : 0;
}

// The entries of the first "writing N map entries in slices" line of log, 0 if none.
long slicedEntries(const std::string& log) {
  std::smatch m;
  static const std::regex re("writing ([0-9]+) map entries in slices");
  return std::regex_search(log, m, re) ? std::stol(m[1]) : 0;
}

// Whether log has the sliced write's line before the agent's "ready" line,
// which it logs after its first sync, just before its loop.
bool slicedBeforeReady(const std::string& log) {
  auto w = log.find("map entries in slices"), r = log.find("ferryd ready on node");
  return w != std::string::npos && r != std::string::npos && w < r;
}

TEST_F(ClusterTest, AgentStartsOnAManifestWrittenInSlices) {
  // 200 ClusterIP services in one file: the first selects pod a, the last
  // pod c, the others app=web (pods a, b and c), three ports each. About
  // 20 map entries a service, over the 2,048 of a sliced write, in fewer
  // objects than the agent's first event slice (256): the first sync
  // plans and begins the write, before the loop.
  constexpr int kServices = 200;
  auto name = [](int i) { return "t30-sl-" + std::to_string(i); };
  auto vip = [](int i) {
    return "198.19.90." + std::to_string(1 + i);
  };
  const std::string ports =
      "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
      " {name: alt, port: 90, targetPort: 9090, protocol: TCP},"
      " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]";
  std::string yaml;
  for (int i = 0; i < kServices; ++i) {
    std::string sel = i == 0 ? "name: a" : i == kServices - 1 ? "name: c" : "app: web";
    yaml += (i ? "---\n" : "") + serviceYaml(name(i), vip(i), sel, ports);
  }
  const std::string first = vip(0), last = vip(kServices - 1);
  const std::string cs = q(clusterSh()) + " ";
  const std::string P = prefix();
  const std::string log = runDir() + "/node1.log";

  // Agent stopped, file written, agent started: its first sync begins the
  // sliced write; nothing but the loop continues it.
  ShResult r = sh(cs + "stop-agent " + P + " node1", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  writeManifest("t30-sliced.yaml", yaml);
  std::streamoff logAt = sizeOf(log);
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;

  auto answered = [](const Answer& a) { return a.ok(); };
  Answer a0 = askUntil("a", "tcp", first, 80, answered, Ms(8000));
  EXPECT_EQ(a0.name, "pod-a") << "first service of the file: " << a0;
  Answer aN = askUntil("b", "tcp", last, 80, answered, Ms(8000));
  EXPECT_EQ(aN.name, "pod-c") << "last service of the file: " << aN;
  EXPECT_EQ(aN.clientIp, kPodB) << aN;
  Answer uN = askUntil("a", "udp", last, 53, answered);
  EXPECT_EQ(uN.name, "pod-c") << "last service, UDP port: " << uN;
  // The last service's name, from node1's DNS listener.
  ShResult dig;
  EXPECT_TRUE(waitFor([&] {
    dig = exec("a", "dig +time=1 +tries=1 +short @" + std::string(kNode1) + " A " +
                        name(kServices - 1) + ".default.svc.cluster.local", 10);
    return dig.rc == 0 && dig.out == last + "\n";
  })) << dig.out;
  ShResult v;
  EXPECT_TRUE(waitFor([&] {
    v = ferryctl("node1", "debug verify");
    return v.rc == 0 && v.out.rfind("OK:", 0) == 0;
  })) << v.out;
  std::string started = readFrom(log, logAt);
  EXPECT_GT(slicedEntries(started), 2048) << "no sliced write at the start:\n" << started;
  EXPECT_TRUE(slicedBeforeReady(started)) << "not begun by the first sync:\n" << started;

  // Restart with the file present and a flow open to the last service:
  // the maps are pinned, the flow keeps going, and the restarted agent
  // finds its maps equal to the plan.
  auto hold = std::async(std::launch::async, [&] {
    return exec("b", q(echoBin()) + " hold tcp " + last + " 80 --seconds 8", 30);
  });
  ASSERT_TRUE(waitFor([&] { return established("c", 8080, kPodB) >= 1; }, Ms(5000), Ms(100)))
      << exec("c", "ss -Htn state established").out;
  r = sh(cs + "stop-agent " + P + " node1", 30);
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  // (A restart slower than the hold, on a busy machine, leaves only the
  // hold's own verdict: it kept exchanging data while the agent was down.)
  if (hold.wait_for(Ms(0)) != std::future_status::ready) {
    EXPECT_GE(established("c", 8080, kPodB), 1) << "flow lost across the restart: "
                                                 << exec("c", "ss -Htn state established").out;
  }
  ShResult hd = hold.get();
  EXPECT_EQ(hd.rc, 0) << hd.out;
  EXPECT_TRUE(hd.out.rfind("ok ", 0) == 0 || hd.out.find("\nok ") != std::string::npos)
      << "hold across the restart: " << hd.out;
  EXPECT_TRUE(waitFor([&] {
    v = ferryctl("node1", "debug verify");
    return v.rc == 0 && v.out.rfind("OK:", 0) == 0;
  })) << v.out;
  EXPECT_EQ(askUntil("a", "tcp", last, 80, answered).name, "pod-c");
}

}  // namespace
}  // namespace e2e
