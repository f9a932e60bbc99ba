// The event-driven control plane from the outside (issues 11 and 12): a
// bad manifest never takes over or empties a working service, a service
// whose manifest turned invalid keeps its programming across an agent
// restart, and `ferryctl debug verify` finds the incremental state equal
// to a from-scratch build after all of it.
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

bool verifyOk(const std::string& node, std::string* out) {
  ShResult r = ferryctl(node, "debug verify");
  *out = r.out;
  return r.rc == 0 && r.out.rfind("OK:", 0) == 0;
}

bool answersByPods(const std::string& vip, const std::set<std::string>& pods, int n = 6) {
  auto [as, rc] = askMany("a", "tcp", vip, 80, n, 1000);
  if (rc != 0 || as.size() != size_t(n)) return false;
  for (const auto& a : as)
    if (!pods.count(a.name)) return false;
  return true;
}

TEST_F(ClusterTest, NewcomerDefinitionIsRejectedAndTheWorkingOneKeepsServing) {
  const std::string vip = "198.19.12.1";
  const std::string ports = "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]";
  writeManifest("t13-owner.yaml", serviceYaml("t13-dup", vip, "name: c", ports));
  ASSERT_TRUE(waitFor([&] { return answersByPods(vip, {"pod-c"}); }, Ms(5000)));
  // A file sorting first redefines the service towards other pods: it is
  // reported, and the working definition keeps serving.
  writeManifest("a13-newcomer.yaml", serviceYaml("t13-dup", vip, "name: a", ports));
  EXPECT_TRUE(waitFor([&] {
    return ferryctl("node1", "get errors").out.find("a13-newcomer.yaml") != std::string::npos;
  })) << ferryctl("node1", "get errors").out;
  EXPECT_TRUE(answersByPods(vip, {"pod-c"}, 10)) << "the newcomer must not take over";
  // An invalid EndpointSlice for it does not empty it either.
  writeManifest("t13-slice.yaml",
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: t13-dup-1\n"
                "  labels: {kubernetes.io/service-name: t13-dup}\naddressType: IPv4\n"
                "endpoints: [{addresses: [198.18.130.2]}, {addresses: [not-an-ip]}]\n"
                "ports: [{name: web, port: 8080}]\n");
  EXPECT_TRUE(waitFor([&] {
    return ferryctl("node1", "get errors").out.find("t13-slice.yaml") != std::string::npos;
  })) << ferryctl("node1", "get errors").out;
  EXPECT_TRUE(answersByPods(vip, {"pod-c"}, 10)) << "an invalid slice must not empty the service";
  // The owner goes: the other definition takes over.
  removeManifest("t13-owner.yaml");
  EXPECT_TRUE(waitFor([&] { return answersByPods(vip, {"pod-a"}); }, Ms(5000)));
  std::string v;
  EXPECT_TRUE(waitFor([&] { return verifyOk("node1", &v); }, Ms(3000))) << v;
  removeManifest("a13-newcomer.yaml");
  removeManifest("t13-slice.yaml");
}

TEST_F(ClusterTest, InvalidManifestKeepsLastGoodProgrammingAcrossRestart) {
  const std::string vip = "198.19.12.2";
  const std::string good = "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]";
  const std::string bad = "[{name: web, port: 70000, targetPort: 8080, protocol: TCP}]";
  writeManifest("t14-held.yaml", serviceYaml("t14-held", vip, "name: c", good));
  ASSERT_TRUE(waitFor([&] { return answersByPods(vip, {"pod-c"}); }, Ms(5000)));
  writeManifest("t14-held.yaml", serviceYaml("t14-held", vip, "name: c", bad));
  ASSERT_TRUE(waitFor([&] {
    return ferryctl("node1", "get errors").out.find("t14-held.yaml") != std::string::npos;
  })) << ferryctl("node1", "get errors").out;
  const std::string cs = q(clusterSh()) + " ";
  ShResult r = sh(cs + "stop-agent " + prefix() + " node1", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  r = sh(cs + "start-agent " + prefix() + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(waitFor([&] { return agentReply("node1").is_object(); }, Ms(5000)));
  EXPECT_EQ(clusterIPOf("node1", "t14-held"), vip) << "dropped at restart";
  EXPECT_TRUE(answersByPods(vip, {"pod-c"}, 10)) << "last good programming lost at restart";
  EXPECT_NE(ferryctl("node1", "get errors").out.find("t14-held.yaml"), std::string::npos);
  std::string v;
  EXPECT_TRUE(verifyOk("node1", &v)) << v;
  removeManifest("t14-held.yaml");
  EXPECT_TRUE(waitFor([&] { return clusterIPOf("node1", "t14-held").empty(); }));
}

}  // namespace
}  // namespace e2e
