// Dual-stack services end to end (issue 15, KEP-563): one Service with a
// ClusterIP of each family, reached over each family from a pod (tc
// programs) and from the nodes' own processes (socket hooks), landing on
// the same pods, each of which sees the client's address of the family
// that was used. ClusterIPs 198.19.16.x / 2001:db8:ffff::10xx.
#include <set>

#include "cluster_fixture.h"

namespace e2e {
namespace {

bool isPod(const std::string& name) { return !kFamily4.podIp(name).empty(); }

TEST_F(ClusterTest, DualStackServiceReachedOverEachFamily) {
  const std::string vip4 = "198.19.16.1", vip6 = "2001:db8:ffff::1001";
  writeManifest("ds01-web.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: ds01-web, namespace: default}\n"
                "spec:\n  clusterIP: " + vip4 + "\n  clusterIPs: [" + vip4 + ", \"" + vip6 + "\"]\n"
                "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n"
                "  selector: {app: web}\n"
                "  ports: [{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]\n");
  // every agent shows both ClusterIPs, primary first
  for (const char* node : {"node1", "node2"}) {
    nlohmann::json ips;
    EXPECT_TRUE(waitFor([&] {
      nlohmann::json j = ferryctlJson(node, "services");
      for (const auto& it : j.value("items", nlohmann::json::array()))
        if (it.value(nlohmann::json::json_pointer("/metadata/name"), std::string()) == "ds01-web")
          ips = it.value(nlohmann::json::json_pointer("/spec/clusterIPs"), nlohmann::json());
      return ips == nlohmann::json::array({vip4, vip6});
    })) << node << ": " << ips.dump();
  }
  std::set<std::string> answered[2];
  for (const FamilyAddrs* f : {&kFamily4, &kFamily6}) {
    const std::string vip = f->v6() ? vip6 : vip4;
    SCOPED_TRACE(std::string(f->name) + " " + vip);
    Answer first = askUntil("a", "tcp", vip, 80, [](const Answer& x) { return x.ok(); });
    ASSERT_TRUE(first.ok()) << "never answered: " << first;
    // pod a -> the ClusterIP of this family: any web pod, seeing pod a's
    // address of the family (its node's when pod a answers itself: hairpin)
    auto [answers, rc] = askMany("a", "tcp", vip, 80, 20);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(answers.size(), 20u);
    for (const Answer& a : answers) {
      ASSERT_TRUE(isPod(a.name)) << a;
      EXPECT_EQ(a.localIp, f->podIp(a.name)) << a;
      EXPECT_EQ(a.localPort, 8080) << a;
      EXPECT_EQ(a.clientIp, a.name == "pod-a" ? f->node1 : f->podA) << a;
      answered[f->v6()].insert(a.name);
    }
    EXPECT_GE(answered[f->v6()].size(), 2u) << "20 connections all went to one pod";
    Answer u = askUntil("a", "udp", vip, 53, [](const Answer& x) { return x.ok(); });
    ASSERT_TRUE(u.ok()) << u;
    EXPECT_EQ(u.localIp, f->podIp(u.name)) << u;
    EXPECT_EQ(u.localPort, 5353) << u;
    // the nodes' own processes: the pod sees the node's address of the
    // family, getpeername() shows the ClusterIP
    for (auto [node, nodeIp] : {std::pair{"node1", f->node1}, std::pair{"node2", f->node2}}) {
      for (int i = 0; i < 4; ++i) {
        Answer b = ask(node, "tcp", vip, 80, 1000, "--show-peer");
        ASSERT_TRUE(b.ok()) << node << ": " << b;
        ASSERT_TRUE(isPod(b.name)) << b;
        EXPECT_EQ(b.peer, hostPort(vip, 80)) << node << ": " << b;
        EXPECT_EQ(b.clientIp, nodeIp) << node << ": " << b;
        EXPECT_EQ(b.localIp, f->podIp(b.name)) << b;
      }
    }
  }
}

}  // namespace
}  // namespace e2e
