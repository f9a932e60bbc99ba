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
  long before = frontends("node1");
  ASSERT_GT(before, 0);
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

}  // namespace
}  // namespace e2e
