// ferryctl output and ClusterIP allocation agreement between agents.
#include <arpa/inet.h>

#include <map>
#include <set>
#include <sstream>

#include "cluster_fixture.h"

namespace e2e {
namespace {

std::vector<std::string> tokens(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> t;
  std::string w;
  while (is >> w) t.push_back(w);
  return t;
}

bool inServiceCidr(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) & 0xfffe0000u) == 0xc6120000u &&  // 198.18.0.0/15 sanity
         (ntohl(a.s_addr) & 0xffff0000u) == 0xc6130000u;   // 198.19.0.0/16
}

// name -> clusterIP from ferryctl get services -o json
std::map<std::string, std::string> serviceIPs(const std::string& node) {
  std::map<std::string, std::string> m;
  nlohmann::json j = ferryctlJson(node, "services");
  if (!j.is_object()) return m;
  for (const auto& it : j.value("items", nlohmann::json::array()))
    m[it["metadata"].value("namespace", "default") + "/" + it["metadata"].value("name", "")] =
        it["spec"].value("clusterIP", "");
  return m;
}

TEST_F(ClusterTest, FerryctlGetServicesOutput) {
  const std::string vip = "198.19.1.17";
  writeManifest("t14-fixed.yaml",
                serviceYaml("t14-fixed", vip, "app: web",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]"));
  writeManifest("t14-auto.yaml",
                serviceYaml("t14-auto", "", "app: web",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]"));
  ASSERT_TRUE(waitFor([&] {
    return clusterIPOf("node1", "t14-fixed") == vip && !clusterIPOf("node1", "t14-auto").empty();
  })) << ferryctl("node1", "get services").out;

  // table: kubectl's header and a row
  ShResult r = ferryctl("node1", "get services", false);
  ASSERT_EQ(r.rc, 0) << r.out;
  std::istringstream is(r.out);
  std::string header;
  std::getline(is, header);
  EXPECT_EQ(tokens(header), (std::vector<std::string>{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                                                      "PORT(S)", "AGE"}))
      << r.out;
  std::vector<std::string> row;
  for (std::string line; std::getline(is, line);) {
    auto t = tokens(line);
    if (!t.empty() && t[0] == "t14-fixed") row = t;
  }
  ASSERT_EQ(row.size(), 6u) << r.out;
  EXPECT_EQ(row[1], "ClusterIP");
  EXPECT_EQ(row[2], vip);
  EXPECT_EQ(row[3], "<none>");
  EXPECT_EQ(row[4], "80/TCP");
  EXPECT_FALSE(row[5].empty());

  // -o json: a List whose items carry spec.clusterIP
  ShResult js = ferryctl("node1", "get services -o json", false);
  ASSERT_EQ(js.rc, 0) << js.out;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(js.out)) << js.out;
  EXPECT_EQ(j.value("kind", ""), "List");
  ASSERT_TRUE(j.contains("items") && j["items"].is_array()) << js.out;
  EXPECT_FALSE(j["items"].empty());
  for (const auto& it : j["items"]) {
    EXPECT_EQ(it.value("kind", ""), "Service") << it.dump();
    ASSERT_TRUE(it.contains("spec") && it["spec"].contains("clusterIP")) << it.dump();
    EXPECT_TRUE(it["spec"]["clusterIP"].is_string()) << it.dump();
  }

  // allocation: in the service CIDR, the same on both nodes, and it works
  std::string ip1 = clusterIPOf("node1", "t14-auto");
  EXPECT_TRUE(inServiceCidr(ip1)) << ip1;
  std::string ip2;
  EXPECT_TRUE(waitFor([&] { return !(ip2 = clusterIPOf("node2", "t14-auto")).empty(); }));
  EXPECT_EQ(ip1, ip2) << "node1 and node2 allocated different ClusterIPs";
  Answer a = askUntil("a", "tcp", ip1, 80, [](const Answer& x) { return x.ok(); });
  EXPECT_TRUE(a.byPod()) << a;
  Answer c = askUntil("c", "tcp", ip1, 80, [](const Answer& x) { return x.ok(); });
  EXPECT_TRUE(c.byPod()) << c;

  // other subcommands answer
  ShResult eps = ferryctl("node1", "get endpoints", false);
  EXPECT_EQ(eps.rc, 0) << eps.out;
  EXPECT_NE(eps.out.find("t14-fixed"), std::string::npos) << eps.out;
  ShResult st = ferryctl("node1", "stats", false);
  EXPECT_EQ(st.rc, 0) << st.out;
  EXPECT_FALSE(st.out.empty());
}

TEST_F(ClusterTest, AgentsAgreeOnClusterIPs) {
  // several services without a clusterIP (YAML multi-document and JSON), plus one fixed
  std::string multi;
  for (int i = 1; i <= 4; ++i) {
    if (i > 1) multi += "---\n";
    multi += serviceYaml("t15-auto" + std::to_string(i), "", "app: web",
                         "[{port: 80, targetPort: 8080}]");
  }
  writeManifest("t15-multi.yaml", multi);
  writeManifest("t15-json.json", R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "t15-json", "namespace": "default"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})");
  writeManifest("t15-fixed.yml", serviceYaml("t15-fixed", "198.19.1.18", "name: c",
                                             "[{port: 80, targetPort: 8080}]"));
  const std::vector<std::string> mine = {"default/t15-auto1", "default/t15-auto2",
                                         "default/t15-auto3", "default/t15-auto4",
                                         "default/t15-json", "default/t15-fixed"};
  std::map<std::string, std::string> n1, n2;
  bool same = waitFor([&] {
    n1 = serviceIPs("node1");
    n2 = serviceIPs("node2");
    for (const auto& s : mine)
      if (!n1.count(s) || !n2.count(s)) return false;
    return n1 == n2;
  });
  for (const auto& s : mine) {
    EXPECT_TRUE(n1.count(s)) << "node1 lacks " << s;
    EXPECT_TRUE(n2.count(s)) << "node2 lacks " << s;
  }
  EXPECT_TRUE(same) << "node1 and node2 disagree";
  std::set<std::string> ips;
  for (const auto& [name, ip] : n1) {
    EXPECT_EQ(n2[name], ip) << name;
    EXPECT_TRUE(inServiceCidr(ip)) << name << " " << ip;
    EXPECT_TRUE(ips.insert(ip).second) << "duplicate ClusterIP " << ip << " (" << name << ")";
  }
  EXPECT_EQ(n1["default/t15-fixed"], "198.19.1.18");

  // each of them is served on both nodes
  for (const auto& s : mine) {
    const std::string& ip = n1[s];
    for (const char* from : {"a", "c"}) {
      Answer a = askUntil(from, "tcp", ip, 80, [](const Answer& x) { return x.ok(); });
      EXPECT_TRUE(a.byPod()) << s << " from " << from << ": " << a;
    }
  }
}

}  // namespace
}  // namespace e2e
