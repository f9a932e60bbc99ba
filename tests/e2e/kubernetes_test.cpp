// Both agents on the Kubernetes source (issue 13): the test API server
// (tests/k8s/apiserver.py) runs in the cluster's P-lan netns on 198.18.0.2,
// on the LAN bridge (TESTNET.md), and the agents in P-node1 / P-node2 reach
// https://198.18.0.2:6443 over their eth0. Objects are created, changed and
// deleted with the real kubectl; every assertion is on traffic (which pod
// answered) or on what `ferryctl status` reports.
//
// Each case brings the API server up, restarts both agents with
// --source kubernetes, and at the end restarts them on the manifest
// directory again and removes the server, so the other cases find the
// cluster as the fixture made it.
#include <atomic>
#include <map>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

using Clock = std::chrono::steady_clock;

const char* kVip = "198.19.5.10";

std::string testenv() { return std::string(FERRY_SOURCE_DIR) + "/tests/k8s/testenv.sh"; }

std::string sliceYaml(const std::string& name, const std::vector<std::pair<std::string, std::string>>& eps) {
  std::string y =
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
      "\n  namespace: default\n  labels:\n    kubernetes.io/service-name: k-web\n"
      "addressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n";
  for (const auto& [ip, node] : eps)
    y += "- addresses: [\"" + ip + "\"]\n  conditions: {ready: true}\n  nodeName: " + node + "\n";
  return y;
}

const std::string kService =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: k-web\n  namespace: default\n"
    "spec:\n  clusterIP: 198.19.5.10\n  ports:\n  - name: http\n    port: 80\n"
    "    targetPort: 8080\n    protocol: TCP\n";

class KubeSourceTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = runDir() + "/k8s-api";
    sh(q(testenv()) + " lan-down " + q(dir_) + " " + prefix(), 30);  // a crashed earlier case
    ShResult up = sh(q(testenv()) + " lan-up " + q(dir_) + " " + prefix() + serverArgs_, 60);
    ASSERT_EQ(up.rc, 0) << up.out;
    up_ = true;
    ASSERT_EQ(kubectl("get ns default -o name").rc, 0) << "kubectl cannot reach the test server";
    beforeAgents();
    for (const char* node : {"node1", "node2"}) restartAgent(node, true);
  }

  void TearDown() override {
    for (const char* node : {"node1", "node2"}) restartAgent(node, false);
    if (up_) sh(q(testenv()) + " lan-down " + q(dir_) + " " + prefix(), 30);
    ClusterTest::TearDown();
  }

  void restartAgent(const std::string& node, bool kube) {
    std::string cs = q(clusterSh());
    sh(cs + " stop-agent " + prefix() + " " + node, 30);
    // (no --lease-dir: the L2 announcement leases are Lease objects)
    std::string extra = kube ? " --source kubernetes --kubeconfig " + q(dir_ + "/kubeconfig") +
                                   " --healthz-listen 127.0.0.1:10256"
                             : "";
    ShResult r = sh(cs + " start-agent " + prefix() + " " + node + extra + " >/dev/null", 30);
    EXPECT_EQ(r.rc, 0) << "start-agent " << node << ": " << r.out;
  }

  // kubectl (the real one) against the test server, from the LAN netns.
  ShResult kubectl(const std::string& args, const std::string& stdinText = "") {
    std::string cmd = "ip netns exec " + prefix() + "-lan kubectl --kubeconfig " +
                      q(dir_ + "/kubeconfig") + " --request-timeout=10s " + args;
    if (!stdinText.empty()) cmd = "printf '%s' " + q(stdinText) + " | " + cmd;
    return sh(cmd, 30);
  }
  void apply(const std::string& yaml) {
    ShResult r = kubectl("apply --validate=false -f -", yaml);
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  // The test server's fault endpoints (no auth, on the same TLS port).
  ShResult fault(const std::string& what) {
    return sh("ip netns exec " + prefix() + "-lan curl -sS -m 5 --cacert " + q(dir_ + "/ca.crt") +
                  " -X POST " + q("https://198.18.0.2:6443/_test/" + what),
              10);
  }
  // Sum of one counter over the resources of node's status.
  long resourceSum(const std::string& node, const char* counter) {
    nlohmann::json st = status(node);  // kept alive for the loop
    long n = 0;
    if (st.is_object() && st.contains("resources"))
      for (const auto& x : st["resources"]) n += x.value(counter, 0L);
    return n;
  }
  nlohmann::json status(const std::string& node) {
    ShResult r = ferryctl(node, "status -o json", false);
    try {
      return nlohmann::json::parse(r.out);
    } catch (...) {
      return nullptr;
    }
  }
  bool synced(const std::string& node) {
    auto s = status(node);
    return s.is_object() && s.value("synced", false) && s.value("connected", false) &&
           s.value("programmed", false);
  }
  void waitBothSynced() {
    for (const char* node : {"node1", "node2"})
      ASSERT_TRUE(waitFor([&] { return synced(node); }, Ms(10000), Ms(100)))
          << node << " never synced: " << ferryctl(node, "status").out;
  }
  // Service k-web with endpoints on pod a (node1) and pod c (node2).
  void createWeb() {
    apply(kService);
    apply(sliceYaml("k-web-1", {{kPodA, "node1"}, {kPodC, "node2"}}));
    for (const char* from : {"b", "c"}) {
      Answer a = askUntil(from, "tcp", kVip, 80, [](const Answer& x) { return x.ok(); }, Ms(8000));
      ASSERT_TRUE(a.ok()) << "from pod " << from << ": " << a << "\n"
                          << ferryctl("node1", "status").out;
    }
  }
  // frontends programmed on node1 (-1 when the agent does not answer)
  long frontends(const std::string& node) {
    auto r = agentReply(node, 1000);
    if (!r.is_object() || !r.contains("programmed")) return -1;
    return r["programmed"].value("frontends", -1L);
  }

  // A connection loop from pod b to the VIP while `during` runs; returns the
  // failed connections, and the lowest frontend count node1 reported.
  struct LoopResult {
    int ok = 0, failed = 0;
    long minFrontends = 1 << 30;
    std::string firstFailure;
  };
  LoopResult loopWhile(const std::function<void()>& during, Ms extra = Ms(1500)) {
    std::atomic<bool> stop{false};
    LoopResult res;
    auto loop = std::async(std::launch::async, [&] {
      while (!stop) {
        Answer a = ask("b", "tcp", kVip, 80, 1000);
        if (a.ok() && a.byPod()) {
          ++res.ok;
        } else {
          if (res.failed++ == 0) {
            std::ostringstream os;
            os << a;
            res.firstFailure = os.str();
          }
        }
      }
    });
    auto watch = std::async(std::launch::async, [&] {
      while (!stop) {
        long f = frontends("node1");
        if (f >= 0) res.minFrontends = std::min(res.minFrontends, f);
        std::this_thread::sleep_for(Ms(100));
      }
    });
    during();
    std::this_thread::sleep_for(extra);
    stop = true;
    loop.get();
    watch.get();
    return res;
  }

  virtual void beforeAgents() {}
  // PATCH of a status subresource, as a controller (the kubelet) sends it.
  ShResult patchStatus(const std::string& path, const std::string& body) {
    return sh("ip netns exec " + prefix() + "-lan curl -sS -m 5 --cacert " + q(dir_ + "/ca.crt") +
                  " -H 'Authorization: Bearer test-token' -H 'Content-Type: application/merge-patch+json'"
                  " -X PATCH --data " + q(body) + " " + q("https://198.18.0.2:6443" + path),
              10);
  }
  // Requests the test server answered, as recorded by it.
  nlohmann::json requests() {
    ShResult r = sh("ip netns exec " + prefix() + "-lan curl -sS -m 5 --cacert " + q(dir_ + "/ca.crt") +
                        " https://198.18.0.2:6443/_test/requests",
                    10, false);
    try {
      return nlohmann::json::parse(r.out);
    } catch (...) {
      return nullptr;
    }
  }

  std::string dir_;
  std::string serverArgs_;
  bool up_ = false;
};

TEST_F(KubeSourceTest, ServicesAndSlicesFollowKubectl) {
  waitBothSynced();
  createWeb();
  auto [answers, rc] = askMany("b", "tcp", kVip, 80, 12);
  ASSERT_EQ(rc, 0);
  std::set<std::string> who;
  for (const Answer& a : answers) who.insert(a.name);
  for (const std::string& n : who) EXPECT_TRUE(n == "pod-a" || n == "pod-c") << n;

  // slice changed with kubectl: only pod c answers, on both nodes
  apply(sliceYaml("k-web-1", {{kPodC, "node2"}}));
  for (const char* from : {"b", "c"}) {
    int streak = 0;
    auto t0 = Clock::now();
    while (streak < 5 && Clock::now() - t0 < Ms(5000)) {
      Answer a = ask(from, "tcp", kVip, 80, 500);
      streak = a.name == "pod-c" ? streak + 1 : 0;
    }
    EXPECT_EQ(streak, 5) << "from " << from << ": answers never settled on pod c";
  }
  // service changed: a second port
  apply(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: k-web\n  namespace: default\n"
      "spec:\n  clusterIP: 198.19.5.10\n  ports:\n  - name: http\n    port: 80\n"
      "    targetPort: 8080\n    protocol: TCP\n  - name: alt\n    port: 81\n    targetPort: 9090\n"
      "    protocol: TCP\n");
  apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: k-web-1\n"
      "  namespace: default\n  labels:\n    kubernetes.io/service-name: k-web\naddressType: IPv4\n"
      "ports:\n- name: http\n  port: 8080\n  protocol: TCP\n- name: alt\n  port: 9090\n  protocol: TCP\n"
      "endpoints:\n- addresses: [\"198.18.130.2\"]\n  conditions: {ready: true}\n  nodeName: node2\n");
  Answer alt = askUntil("b", "tcp", kVip, 81, [](const Answer& a) { return a.ok(); }, Ms(5000));
  EXPECT_EQ(alt.name, "pod-c") << alt;
  EXPECT_EQ(alt.localPort, 9090) << alt;

  // deleted with kubectl: no pod answers any more
  ASSERT_EQ(kubectl("delete svc k-web").rc, 0);
  Answer gone = askUntil("b", "tcp", kVip, 80, [](const Answer& a) { return !a.byPod(); },
                         Ms(5000), 300);
  EXPECT_FALSE(gone.byPod()) << "still answered after kubectl delete: " << gone;

  // what the operator sees
  ShResult st = ferryctl("node1", "status");
  EXPECT_EQ(st.rc, 0) << st.out;
  EXPECT_NE(st.out.find("kubernetes https://198.18.0.2:6443"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("endpointslices.discovery.k8s.io"), std::string::npos) << st.out;
  ShResult ci = sh(q(ferryctlBin()) + " --socket " + q(socketOf("node2")) +
                   " cluster-info dump | grep -m 1 service-cluster-ip-range");
  EXPECT_NE(ci.out.find("198.19.0.0/16"), std::string::npos) << ci.out;
  // /readyz answers 200 once synced (inside node1's netns)
  ShResult rz = sh("ip netns exec " + prefix() +
                   "-node1 curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:10256/readyz");
  EXPECT_EQ(rz.out, "200") << rz.out;
}

TEST_F(KubeSourceTest, ApiserverRestartDuringTrafficChangesNothing) {
  waitBothSynced();
  createWeb();
  // an iperf3 stream from pod a (node1) through a ClusterIP to pod c (node2)
  apply(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: k-iperf\n  namespace: default\n"
      "spec:\n  clusterIP: 198.19.5.11\n  ports:\n  - name: iperf\n    port: 5201\n"
      "    targetPort: 5201\n    protocol: TCP\n");
  apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: k-iperf-1\n"
      "  namespace: default\n  labels:\n    kubernetes.io/service-name: k-iperf\n"
      "addressType: IPv4\nports:\n- name: iperf\n  port: 5201\n  protocol: TCP\nendpoints:\n"
      "- addresses: [\"198.18.130.2\"]\n  conditions: {ready: true}\n  nodeName: node2\n");
  // programmed on node1 with its endpoint (Endpoints view of the agent)
  ASSERT_TRUE(waitFor(
      [&] {
        nlohmann::json r = agentReply("node1", 2000);
        if (!r.is_object() || !r.contains("endpoints")) return false;
        for (const auto& e : r["endpoints"])
          if (e.value(nlohmann::json::json_pointer("/metadata/name"), "") == "k-iperf")
            return e.dump().find(kPodC) != std::string::npos;
        return false;
      },
      Ms(8000), Ms(200)))
      << "k-iperf never programmed on node1";
  std::this_thread::sleep_for(Ms(300));
  long before = frontends("node1");
  ASSERT_GT(before, 0);
  auto iperf = std::async(std::launch::async, [&] {
    return exec("a", "iperf3 -J -i 1 -c 198.19.5.11 -p 5201 -t 16 -b 1G --connect-timeout 3000 "
                "2>/dev/null", 60);
  });
  // iperf3's control and data connections are live at pod c
  ASSERT_TRUE(waitFor([] { return established("c", 5201, kPodA) >= 2; }, Ms(5000), Ms(100)))
      << "iperf3 never connected: " << exec("c", "ss -Htn state established").out;
  auto iperfStart = Clock::now();
  LoopResult r = loopWhile([&] {
    ShResult stop = sh(q(testenv()) + " stop " + q(dir_), 20);
    EXPECT_EQ(stop.rc, 0) << stop.out;
    // unreachable for a while: agents keep the dataplane exactly as it is
    EXPECT_TRUE(waitFor([&] { return !status("node1").value("connected", true); }, Ms(8000)))
        << ferryctl("node1", "status").out;
    std::this_thread::sleep_for(Ms(1500));
    ShResult start = sh(q(testenv()) + " start " + q(dir_) + " " + prefix() + "-lan", 30);
    EXPECT_EQ(start.rc, 0) << start.out;
    EXPECT_TRUE(waitFor([&] { return synced("node1"); }, Ms(10000), Ms(100)))
        << ferryctl("node1", "status").out;
  });
  EXPECT_EQ(r.failed, 0) << r.ok << " ok; first failure: " << r.firstFailure;
  EXPECT_GT(r.ok, 20);
  EXPECT_EQ(r.minFrontends, before) << "the maps changed while the apiserver was away";
  EXPECT_LT(Clock::now() - iperfStart, std::chrono::seconds(16))
      << "the restart outlasted the iperf3 stream";
  ShResult ip = iperf.get();
  EXPECT_EQ(ip.rc, 0) << "iperf3 through the ClusterIP failed during the apiserver restart:\n"
                      << ip.out;
  double received = 0, slowest = -1;
  try {
    nlohmann::json j = nlohmann::json::parse(ip.out);
    received = j.value(nlohmann::json::json_pointer("/end/sum_received/bytes"), 0.0);
    for (const auto& i : j.at("intervals")) {
      double b = i.value(nlohmann::json::json_pointer("/sum/bytes"), 0.0);
      if (slowest < 0 || b < slowest) slowest = b;
    }
  } catch (...) {
  }
  // 1 Gbit/s for 16 s is 2 GB; a stream broken or stalled for long falls far short
  EXPECT_GT(received, 500e6) << "bytes received by pod c: " << received << "\n" << ip.out;
  EXPECT_GT(slowest, 0) << "a second without a byte: the stream stalled\n" << ip.out;
  // the watch resumed: a change after the restart is followed
  apply(sliceYaml("k-web-1", {{kPodA, "node1"}}));
  Answer a = askUntil("c", "tcp", kVip, 80, [](const Answer& x) { return x.name == "pod-a"; },
                      Ms(8000));
  EXPECT_EQ(a.name, "pod-a") << a << "\n" << ferryctl("node2", "status").out;
}

TEST_F(KubeSourceTest, WatchCutMidStreamResumes) {
  waitBothSynced();
  createWeb();
  auto lists = [&] { return resourceSum("node1", "lists"); };
  long listsBefore = lists();
  LoopResult r = loopWhile([&] {
    ShResult f = fault("cut-watches");
    EXPECT_NE(f.out.find("ok"), std::string::npos) << f.out;
  });
  EXPECT_EQ(r.failed, 0) << r.firstFailure;
  // a change made after the cut reaches both nodes through the resumed watch
  apply(sliceYaml("k-web-1", {{kPodA, "node1"}}));
  for (const char* from : {"b", "c"}) {
    Answer a = askUntil(from, "tcp", kVip, 80, [](const Answer& x) { return x.name == "pod-a"; },
                        Ms(8000));
    EXPECT_EQ(a.name, "pod-a") << "from " << from << ": " << a;
  }
  EXPECT_EQ(lists(), listsBefore) << "a cut watch resumes from its resourceVersion, no relist";
  long watches = resourceSum("node1", "watches");
  EXPECT_GE(watches, 6) << status("node1").dump();
}

TEST_F(KubeSourceTest, GoneForcesARelistWithoutDisruption) {
  waitBothSynced();
  createWeb();
  long before = frontends("node1");
  LoopResult r = loopWhile([&] {
    // history dropped, then every watch cut: resuming gets 410 Gone
    EXPECT_NE(fault("compact").out.find("ok"), std::string::npos);
    apply(sliceYaml("k-web-1", {{kPodA, "node1"}, {kPodC, "node2"}, {kPodB, "node1"}}));
    EXPECT_NE(fault("compact").out.find("ok"), std::string::npos);
    EXPECT_NE(fault("cut-watches").out.find("ok"), std::string::npos);
    EXPECT_TRUE(waitFor(
        [&] { return resourceSum("node1", "expired") > 0 && synced("node1"); },
        Ms(8000), Ms(100)))
        << ferryctl("node1", "status").out;
  });
  EXPECT_EQ(r.failed, 0) << r.firstFailure;
  EXPECT_GE(r.minFrontends, before) << "the relist must be diffed, never a flush";
  // the relist brought pod b in (added while the watches were cut)
  Answer b = askUntil("c", "tcp", kVip, 80, [](const Answer& x) { return x.name == "pod-b"; },
                      Ms(8000));
  EXPECT_EQ(b.name, "pod-b") << b;
}

TEST_F(KubeSourceTest, WrongTokenIsReportedAndTrafficKeepsFlowing) {
  waitBothSynced();
  createWeb();
  LoopResult r = loopWhile([&] {
    EXPECT_NE(fault("revoke-token?token=test-token").out.find("ok"), std::string::npos);
    EXPECT_NE(fault("cut-watches").out.find("ok"), std::string::npos);
    EXPECT_TRUE(waitFor(
        [&] {
          return status("node1").value("lastError", "").find("401") != std::string::npos;
        },
        Ms(8000), Ms(100)))
        << ferryctl("node1", "status").out;
  });
  EXPECT_EQ(r.failed, 0) << r.firstFailure;
  ShResult st = ferryctl("node1", "status");
  EXPECT_NE(st.rc, 0) << "not connected: exit status 1\n" << st.out;
  EXPECT_NE(st.out.find("CONNECTED:      no"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("401"), std::string::npos) << st.out;
  // the token is accepted again: the agents reconnect by themselves
  EXPECT_NE(fault("allow-token?token=test-token&user=ferry-test").out.find("ok"), std::string::npos);
  // (the reflectors back off up to 30 s between failed attempts; waitFor caps at 10 s)
  bool back = false;
  for (int i = 0; i < 4 && !back; ++i)
    back = waitFor([&] { return synced("node1") && status("node1").value("lastError", "x").empty(); },
                   Ms(10000), Ms(200));
  EXPECT_TRUE(back) << ferryctl("node1", "status").out;
}

// MetalLB pools and ServiceCIDRs served; Nodes Ready; a ServiceCIDR object
// present before the agents start.
class KubeLoadBalancerTest : public KubeSourceTest {
 protected:
  void SetUp() override {
    serverArgs_ = " --metallb --servicecidr";
    KubeSourceTest::SetUp();
  }
  void beforeAgents() override {
    apply(
        "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: kubernetes\n"
        "spec:\n  cidrs: [\"198.19.0.0/16\"]\n");
    for (const char* node : {"node1", "node2"}) {
      apply(std::string("apiVersion: v1\nkind: Node\nmetadata:\n  name: ") + node + "\n");
      ShResult r = patchStatus(
          std::string("/api/v1/nodes/") + node + "/status",
          std::string(R"({"status":{"conditions":[{"type":"Ready","status":"True"}],"addresses":[{"type":"InternalIP","address":"198.18.0.1)") +
              (node[4] == '1' ? "1" : "2") + "\"}]}}");
      ASSERT_EQ(r.rc, 0) << r.out;
    }
  }

  void applyPool() {
    apply(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: k-pool\n"
        "  namespace: default\nspec:\n  addresses: [\"198.18.0.220-198.18.0.229\"]\n");
  }
  // A LoadBalancer service on port 80 (`meta`, `spec`: more lines of each)
  // with a slice of pods a and c.
  void applyLb(const std::string& name, const std::string& meta = "",
               const std::string& spec = "") {
    apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
          "\n  namespace: default\n" + meta + "spec:\n  type: LoadBalancer\n" + spec +
          "  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n");
    std::string slice = sliceYaml(name + "-1", {{kPodA, "node1"}, {kPodC, "node2"}});
    slice.replace(slice.find("service-name: k-web"), 19, "service-name: " + name);
    apply(slice);
  }
  // status.loadBalancer.ingress[0].ip as kubectl shows it.
  std::string statusIp(const std::string& name) {
    return kubectl("get svc " + name + " -o jsonpath='{.status.loadBalancer.ingress[0].ip}'").out;
  }
  // The address node's agent assigned (its snapshot), "" when none,
  // "absent" when the service is not in it, "?" when the agent is silent.
  std::string assigned(const std::string& node, const std::string& name) {
    nlohmann::json r = agentReply(node, 2000);
    if (!r.is_object() || !r.contains("services")) return "?";
    for (const auto& s : r["services"]) {
      if (s.value(nlohmann::json::json_pointer("/metadata/name"), "") != name) continue;
      auto ptr = nlohmann::json::json_pointer("/status/loadBalancer/ingress/0/ip");
      return s.contains(ptr) ? s[ptr].get<std::string>() : "";
    }
    return "absent";
  }
  // PATCHes of the service's status subresource the server answered, by
  // client address.
  std::map<std::string, int> statusPatches(const std::string& name) {
    std::map<std::string, int> out;
    for (const auto& r : requests())
      if (r.value("method", "") == "PATCH" &&
          r.value("path", "") == "/api/v1/namespaces/default/services/" + name + "/status")
        ++out[r.value("client", "")];
    return out;
  }
  // The status PATCHes the server answered, one line each, for messages.
  std::string patchLog() {
    std::string out;
    for (const auto& r : requests())
      if (r.value("method", "") == "PATCH" && r.value("path", "").find("/services/") != std::string::npos)
        out += r.value("client", "") + " " + r.value("path", "") + " " +
               std::to_string(r.value("code", 0)) + "\n";
    return out;
  }
  static int total(const std::map<std::string, int>& m) {
    int n = 0;
    for (const auto& [k, v] : m) n += v;
    return n;
  }
  std::string holder() {
    return kubectl(
               "-n kube-system get lease ferry-loadbalancer-status -o "
               "jsonpath='{.spec.holderIdentity}'")
        .out;
  }
  // Agents that say they hold the status lease.
  std::vector<std::string> leaders() {
    std::vector<std::string> out;
    for (const char* node : {"node1", "node2"}) {
      auto st = status(node);
      if (st.is_object() && st.contains("loadBalancerStatus") &&
          st["loadBalancerStatus"].value("leader", false))
        out.push_back(node);
    }
    return out;
  }
};

TEST_F(KubeLoadBalancerTest, StatusWrittenOnceByTheLeaseHolderAndServed) {
  waitBothSynced();
  apply(
      "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: k-pool\n"
      "  namespace: default\nspec:\n  addresses: [\"198.18.0.220-198.18.0.229\"]\n");
  apply(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: k-lb\n  namespace: default\n"
      "spec:\n  type: LoadBalancer\n  ports:\n  - name: http\n    port: 80\n"
      "    targetPort: 8080\n    protocol: TCP\n");
  std::string slice = sliceYaml("k-lb-1", {{kPodA, "node1"}, {kPodC, "node2"}});
  slice.replace(slice.find("service-name: k-web"), 19, "service-name: k-lb");
  apply(slice);
  // written back: kubectl shows it
  std::string ip;
  ASSERT_TRUE(waitFor(
      [&] {
        ip = kubectl("get svc k-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}'").out;
        return ip == "198.18.0.220";
      },
      Ms(10000), Ms(200)))
      << "status.loadBalancer: '" << ip << "'\n" << ferryctl("node1", "status -o json").out;
  ShResult get = kubectl("get svc k-lb");
  EXPECT_NE(get.out.find("198.18.0.220"), std::string::npos) << get.out;
  // served from outside through the announcing node
  Answer a = askUntil("ext", "tcp", "198.18.0.220", 80, [](const Answer& x) { return x.byPod(); },
                      Ms(8000));
  EXPECT_TRUE(a.byPod()) << a;
  // exactly one writer, and exactly one write
  std::this_thread::sleep_for(Ms(3000));
  int patches = 0;
  std::set<std::string> users;
  for (const auto& r : requests())
    if (r.value("method", "") == "PATCH" &&
        r.value("path", "") == "/api/v1/namespaces/default/services/k-lb/status") {
      ++patches;
    }
  EXPECT_EQ(patches, 1) << requests().dump();
  int leaders = 0;
  for (const char* node : {"node1", "node2"}) {
    auto st = status(node);
    if (st.contains("loadBalancerStatus") && st["loadBalancerStatus"].value("leader", false)) ++leaders;
  }
  EXPECT_EQ(leaders, 1);
  ShResult lease = kubectl("-n kube-system get lease ferry-loadbalancer-status -o jsonpath='{.spec.holderIdentity}'");
  EXPECT_TRUE(lease.out == "node1" || lease.out == "node2") << lease.out;
  // the L2 announcement leases are Lease objects, one per node
  ShResult leases = kubectl("-n kube-system get lease -l app.kubernetes.io/component=ferry-l2-announcement "
                            "-o jsonpath='{.items[*].spec.holderIdentity}'");
  EXPECT_EQ(leases.out, "node1 node2") << leases.out;
  // the service CIDR came from the ServiceCIDR object
  ShResult ci = ferryctl("node1", "cluster-info");
  EXPECT_NE(ci.out.find("198.19.0.0/16 (from ServiceCIDR objects"), std::string::npos) << ci.out;
}

// Step 1 of the closing note's list: LoadBalancer addresses are seeded
// from the stored status, so the lease holder restarted after a deletion
// that changed the ns/name order computes what the other node holds and
// writes nothing. Without the seeding, it would give k-lb-b the freed
// first address and PATCH it.
TEST_F(KubeLoadBalancerTest, RestartedAgentKeepsStoredAddresses) {
  waitBothSynced();
  applyPool();
  applyLb("k-lb-a");
  ASSERT_TRUE(waitFor([&] { return statusIp("k-lb-a") == "198.18.0.220"; }, Ms(10000), Ms(200)))
      << statusIp("k-lb-a");
  applyLb("k-lb-b");
  ASSERT_TRUE(waitFor([&] { return statusIp("k-lb-b") == "198.18.0.221"; }, Ms(10000), Ms(200)))
      << statusIp("k-lb-b");
  ASSERT_EQ(kubectl("delete svc k-lb-a").rc, 0);
  for (const char* node : {"node1", "node2"})
    ASSERT_TRUE(waitFor([&] { return assigned(node, "k-lb-a") == "absent"; }, Ms(8000), Ms(100)))
        << node;
  std::string h = holder();
  ASSERT_TRUE(h == "node1" || h == "node2") << h;
  int before = total(statusPatches("k-lb-b"));
  EXPECT_EQ(before, 1);
  restartAgent(h, true);
  ASSERT_TRUE(waitFor([&] { return synced(h) && leaders() == std::vector<std::string>{h}; },
                      Ms(10000), Ms(100)))
      << ferryctl(h, "status").out;
  // time for a write, had the restarted holder computed anything else
  std::this_thread::sleep_for(Ms(3000));
  for (const char* node : {"node1", "node2"})
    EXPECT_EQ(assigned(node, "k-lb-b"), "198.18.0.221") << node << " (restarted: " << h << ")";
  EXPECT_EQ(total(statusPatches("k-lb-b")), before) << patchLog();
  EXPECT_EQ(statusIp("k-lb-b"), "198.18.0.221");
  // still served on the stored address, from outside
  Answer a = askUntil("ext", "tcp", "198.18.0.221", 80, [](const Answer& x) { return x.byPod(); },
                      Ms(8000));
  EXPECT_TRUE(a.byPod()) << a;
  // the freed address goes to the next new service, on both nodes alike
  applyLb("k-lb-c");
  ASSERT_TRUE(waitFor([&] { return statusIp("k-lb-c") == "198.18.0.220"; }, Ms(10000), Ms(200)))
      << statusIp("k-lb-c");
  for (const char* node : {"node1", "node2"})
    EXPECT_TRUE(waitFor([&] { return assigned(node, "k-lb-c") == "198.18.0.220"; }, Ms(5000)))
        << node << ": " << assigned(node, "k-lb-c");
}

// Step 2: the status writer's Lease is taken over when its holder dies.
// The holder's agent is killed (SIGKILL, by pid: it cannot hand the lease
// back); a LoadBalancer created then gets no status until the lease has
// expired, and then exactly one PATCH, from the survivor. The killed agent
// back again does not take the lease back.
TEST_F(KubeLoadBalancerTest, StatusWriterLeaseTakenOverAfterHolderDies) {
  waitBothSynced();
  applyPool();
  std::string h;
  ASSERT_TRUE(waitFor(
      [&] {
        h = holder();
        return (h == "node1" || h == "node2") && leaders() == std::vector<std::string>{h};
      },
      Ms(10000), Ms(200)))
      << "no single holder: '" << h << "'";
  std::string other = h == "node1" ? "node2" : "node1";
  std::string otherIp = other == "node1" ? kNode1 : kNode2;
  std::ifstream pf(runDir() + "/" + h + ".pid");
  int pid = 0;
  pf >> pid;
  ASSERT_GT(pid, 0);
  auto killedAt = Clock::now();
  ShResult k = killHard(pid);
  ASSERT_EQ(k.rc, 0) << k.out;
  applyLb("k-lb-t");
  // the survivor serves it at once, but does not write while the lease is
  // still the dead holder's (15 s from its last renewal as seen here)
  ASSERT_TRUE(waitFor([&] { return assigned(other, "k-lb-t") == "198.18.0.220"; }, Ms(5000)))
      << assigned(other, "k-lb-t");
  EXPECT_EQ(statusIp("k-lb-t"), "") << "written while the lease was held by the dead " << h;
  bool written = false;
  for (int i = 0; i < 4 && !written; ++i)
    written = waitFor([&] { return statusIp("k-lb-t") == "198.18.0.220"; }, Ms(10000), Ms(200));
  ASSERT_TRUE(written) << ferryctl(other, "status").out;
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - killedAt).count();
  EXPECT_GE(took, 9000) << "taken over before the lease could have expired";
  EXPECT_EQ(holder(), other);
  EXPECT_EQ(leaders(), std::vector<std::string>{other});
  EXPECT_EQ(kubectl("-n kube-system get lease ferry-loadbalancer-status -o "
                    "jsonpath='{.spec.leaseTransitions}'")
                .out,
            "1");
  std::map<std::string, int> patches = statusPatches("k-lb-t");
  EXPECT_EQ(patches, (std::map<std::string, int>{{otherIp, 1}})) << patchLog();
  // the killed node's agent back: the lease stays with the survivor
  restartAgent(h, true);
  ASSERT_TRUE(waitFor([&] { return synced(h); }, Ms(10000), Ms(100))) << ferryctl(h, "status").out;
  std::this_thread::sleep_for(Ms(6000));  // more than a renewal period
  EXPECT_EQ(holder(), other);
  EXPECT_EQ(leaders(), std::vector<std::string>{other});
  EXPECT_EQ(statusPatches("k-lb-t"), patches) << patchLog();
  EXPECT_EQ(assigned(h, "k-lb-t"), "198.18.0.220");
}

// Step 4: kube-proxy's filters on the wire. A Service labelled
// service.kubernetes.io/service-proxy-name for another proxy is not served;
// one labelled service.kubernetes.io/headless gets no ClusterIP frontend
// (its clusterIP is set, and nothing answers on it); a LoadBalancer of
// another loadBalancerClass keeps its ClusterIP served but gets no address
// from ferry (no status written, and the pool's first address stays free).
TEST_F(KubeLoadBalancerTest, FiltersLeaveOtherImplementationsServicesAlone) {
  waitBothSynced();
  applyPool();
  auto svc = [&](const std::string& name, const std::string& labels, const std::string& spec) {
    std::string meta = labels.empty() ? "" : "  labels: " + labels + "\n";
    apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
          "\n  namespace: default\n" + meta + "spec:\n" + spec +
          "  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n");
    std::string slice = sliceYaml(name + "-1", {{kPodA, "node1"}, {kPodC, "node2"}});
    slice.replace(slice.find("service-name: k-web"), 19, "service-name: " + name);
    apply(slice);
  };
  svc("k-other", "{service.kubernetes.io/service-proxy-name: other-proxy}",
      "  clusterIP: 198.19.5.12\n");
  svc("k-hl", "{service.kubernetes.io/headless: \"\"}", "  clusterIP: 198.19.5.13\n");
  svc("k-lbc", "", "  type: LoadBalancer\n  clusterIP: 198.19.5.14\n"
                   "  loadBalancerClass: other.example/lb\n");
  // a served service created last: once it answers, the watch has
  // delivered the ones before it
  createWeb();
  applyLb("k-lb-n");
  for (const char* node : {"node1", "node2"}) {
    SCOPED_TRACE(node);
    EXPECT_TRUE(waitFor([&] { return assigned(node, "k-lb-n") == "198.18.0.220"; }, Ms(8000)))
        << "the class-less LoadBalancer did not get the pool's first address: "
        << assigned(node, "k-lb-n");
    EXPECT_EQ(assigned(node, "k-other"), "absent");
    EXPECT_EQ(assigned(node, "k-lbc"), "");
    nlohmann::json r = agentReply(node, 2000);
    std::string hlIp = "absent";
    if (r.is_object() && r.contains("services"))
      for (const auto& s : r["services"])
        if (s.value(nlohmann::json::json_pointer("/metadata/name"), "") == "k-hl")
          hlIp = s.value(nlohmann::json::json_pointer("/spec/clusterIP"), "");
    EXPECT_EQ(hlIp, "None") << "k-hl is served as headless";
  }
  // on the wire, from pods on both nodes
  for (const char* from : {"b", "c"}) {
    SCOPED_TRACE(from);
    Answer lbc = askUntil(from, "tcp", "198.19.5.14", 80, [](const Answer& x) { return x.byPod(); },
                          Ms(5000));
    EXPECT_TRUE(lbc.byPod()) << "the other class's LoadBalancer keeps its ClusterIP: " << lbc;
    for (const char* vip : {"198.19.5.12", "198.19.5.13"})
      for (int i = 0; i < 3; ++i) {
        Answer a = ask(from, "tcp", vip, 80, 500);
        EXPECT_FALSE(a.byPod()) << vip << " answered: " << a;
      }
  }
  // no address written for the other class; the class-less one written once
  EXPECT_TRUE(waitFor([&] { return statusIp("k-lb-n") == "198.18.0.220"; }, Ms(10000), Ms(200)));
  EXPECT_EQ(statusIp("k-lbc"), "");
  EXPECT_TRUE(statusPatches("k-lbc").empty()) << patchLog();
  EXPECT_TRUE(statusPatches("k-other").empty()) << patchLog();
  // relabelled for ferry's own proxy name (none: the label removed), it is served
  ASSERT_EQ(kubectl("label svc k-other service.kubernetes.io/service-proxy-name-").rc, 0);
  Answer back = askUntil("b", "tcp", "198.19.5.12", 80, [](const Answer& x) { return x.byPod(); },
                         Ms(8000));
  EXPECT_TRUE(back.byPod()) << back;
}

// Step 5: a ServiceCIDR object added while the agents run is applied in
// place. A service whose ClusterIP lies outside every CIDR is reported and
// not served; once a ServiceCIDR covers it, it is served, by the same
// agent processes.
TEST_F(KubeLoadBalancerTest, ServiceCidrAddedWithoutRestart) {
  waitBothSynced();
  auto pidOf = [&](const std::string& node) {
    std::ifstream f(runDir() + "/" + node + ".pid");
    int pid = 0;
    f >> pid;
    return pid;
  };
  int pid1 = pidOf("node1"), pid2 = pidOf("node2");
  apply(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: k-cidr\n  namespace: default\n"
      "spec:\n  clusterIP: 198.18.96.10\n  ports:\n  - name: http\n    port: 80\n"
      "    targetPort: 8080\n    protocol: TCP\n");
  std::string slice = sliceYaml("k-cidr-1", {{kPodA, "node1"}, {kPodC, "node2"}});
  slice.replace(slice.find("service-name: k-web"), 19, "service-name: k-cidr");
  apply(slice);
  createWeb();  // served after k-cidr's events: those are in
  for (const char* node : {"node1", "node2"}) {
    nlohmann::json r = agentReply(node, 2000);
    EXPECT_TRUE(r.is_object() && r.contains("errors") &&
                r["errors"].dump().find("default/k-cidr") != std::string::npos)
        << node << ": " << (r.is_object() ? r.value("errors", nlohmann::json()).dump() : "");
  }
  for (int i = 0; i < 3; ++i) {
    Answer a = ask("b", "tcp", "198.18.96.10", 80, 500);
    EXPECT_FALSE(a.byPod()) << "served outside the service CIDRs: " << a;
  }
  apply(
      "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: extra\n"
      "spec:\n  cidrs: [\"198.18.96.0/24\"]\n");
  for (const char* from : {"b", "c"}) {
    Answer a = askUntil(from, "tcp", "198.18.96.10", 80, [](const Answer& x) { return x.byPod(); },
                        Ms(8000));
    EXPECT_TRUE(a.byPod()) << "from " << from << ": " << a << "\n" << ferryctl("node1", "status").out;
  }
  ShResult ci = ferryctl("node2", "cluster-info");
  // (ServiceCIDR objects in name order, IPv4 first)
  EXPECT_NE(ci.out.find("198.18.96.0/24,198.19.0.0/16"), std::string::npos) << ci.out;
  EXPECT_EQ(pidOf("node1"), pid1);
  EXPECT_EQ(pidOf("node2"), pid2);
}

}  // namespace
}  // namespace e2e
