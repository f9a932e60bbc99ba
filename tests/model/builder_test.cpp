#include <gtest/gtest.h>

#include "model/builder.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::docs;
using test::errorStrings;
using test::errorsText;
using test::ip;
using test::options;
using test::podYaml;
using test::serviceYaml;

struct Build {
  MemoryAllocationStore store;
  BuildOptions opts = options();
  ClusterSnapshot snap;
  ClusterSnapshot& run(const std::vector<SourceFile>& files, bool keepPrevious = true) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot(files, opts, store, keepPrevious ? &prev : nullptr);
    return snap;
  }
  ClusterSnapshot& run(const std::string& content) { return run({{"m.yaml", content}}); }
  const Service& svc(const std::string& key) { return snap.services.at(key); }
};

std::vector<std::string> eps(const ServicePort& p) {
  std::vector<std::string> out;
  for (const auto& e : p.endpoints)
    out.push_back(e.ip.str() + ":" + std::to_string(e.port) + (e.ready ? "" : " notready") +
                  (e.terminating ? " terminating" : ""));
  return out;
}

std::string inNamespace(std::string manifest, const std::string& ns) {
  return manifest.replace(manifest.find("metadata:\n") + 10, 0, "  namespace: " + ns + "\n");
}

const std::string kWeb = serviceYaml("web", "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n");

TEST(Builder, SelectorOverPods) {
  Build b;
  b.run(docs({kWeb,
              podYaml("ready", "10.0.0.1", "{app: web}"),
              podYaml("notready", "10.0.0.2", "{app: web}", false),
              podYaml("other-app", "10.0.0.3", "{app: db}"),
              podYaml("failed", "10.0.0.4", "{app: web}", true, "[]", "  phase: Failed\n"),
              podYaml("done", "10.0.0.5", "{app: web, extra: x}", false, "[]", "  phase: Succeeded\n"),
              podYaml("no-ip", "''", "{app: web}"),
              podYaml("extra-labels", "10.0.0.6", "{app: web, tier: fe}"),
              "apiVersion: v1\nkind: Pod\nmetadata: {name: gone, labels: {app: web}, "
              "deletionTimestamp: x}\nstatus: {podIP: 10.0.0.7, conditions: [{type: Ready, status: \"True\"}]}\n",
              inNamespace(podYaml("ns-pod", "10.0.0.8", "{app: web}"), "other")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  const Service& s = b.svc("default/web");
  EXPECT_EQ(eps(s.ports[0]),
            (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080 notready", "10.0.0.6:8080",
                                      "10.0.0.7:8080 notready terminating"}));
  const Endpoint& e = s.ports[0].endpoints[0];
  EXPECT_EQ(e.nodeName, "node-a");
  EXPECT_EQ(e.targetRef, "Pod default/ready");
  EXPECT_TRUE(e.serving);
  EXPECT_TRUE(s.ports[0].endpoints[3].serving);  // terminating but still Ready
}

TEST(Builder, NoSelectorOrEmptySelectorMeansNoEndpointsFromPods) {
  Build b;
  b.run(docs({serviceYaml("a", "  ports: [{port: 80}]\n"),
              serviceYaml("b", "  selector: {}\n  ports: [{port: 80}]\n"),
              podYaml("p", "10.0.0.1", "{app: web}")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_TRUE(b.svc("default/a").ports[0].endpoints.empty());
  EXPECT_TRUE(b.svc("default/b").ports[0].endpoints.empty());
}

TEST(Builder, NamedTargetPortResolvedPerPod) {
  Build b;
  b.run(docs({serviceYaml("web", "  selector: {app: web}\n  ports:\n"
                                 "  - {name: http, port: 80, targetPort: http}\n"
                                 "  - {name: metrics, port: 9090, targetPort: 9100}\n"),
              podYaml("p1", "10.0.0.1", "{app: web}", true, "[{name: http, containerPort: 8080}]"),
              podYaml("p2", "10.0.0.2", "{app: web}", true, "[{name: http, containerPort: 9000}]"),
              podYaml("p3", "10.0.0.3", "{app: web}", true,
                      "[{name: http, containerPort: 7000, protocol: UDP}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{"m.yaml: Service default/web: spec.ports[0].targetPort: named "
                                     "port \"http\" not found on pod default/p3"});
  const Service& s = b.svc("default/web");
  EXPECT_EQ(eps(s.ports[0]), (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:9000"}));
  EXPECT_EQ(eps(s.ports[1]),
            (std::vector<std::string>{"10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"}));
}

TEST(Builder, HostNetworkPodsAreEndpoints) {
  Build b;
  std::string pod = podYaml("hn", "192.168.1.10", "{app: web}");
  pod.replace(pod.find("  nodeName"), 0, "  hostNetwork: true\n");
  b.run(docs({kWeb, pod}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(eps(b.svc("default/web").ports[0]), std::vector<std::string>{"192.168.1.10:8080"});
}

TEST(Builder, HostnameOnlyForMatchingSubdomain) {
  Build b;
  std::string pod = podYaml("p", "10.0.0.1", "{app: web}");
  pod.replace(pod.find("  nodeName"), 0, "  hostname: h\n  subdomain: web\n");
  b.run(docs({kWeb, pod}));
  EXPECT_EQ(b.svc("default/web").ports[0].endpoints.at(0).hostname, "h");
}

const std::string kEndpoints = R"(apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 10.1.0.1, nodeName: n1, targetRef: {kind: Pod, name: e1}}]
  notReadyAddresses: [{ip: 10.1.0.2}]
  ports: [{port: 8081}]
)";

const std::string kSlice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.2.0.1]
  nodeName: n2
  targetRef: {kind: Pod, namespace: default, name: s1}
- addresses: [10.2.0.2]
  conditions: {ready: false}
ports: [{port: 8082}]
)";

TEST(Builder, SourcePriority) {
  std::string pod = podYaml("p", "10.0.0.1", "{app: web}");
  Build b;
  b.run(docs({kWeb, pod}));
  EXPECT_EQ(eps(b.svc("default/web").ports[0]), std::vector<std::string>{"10.0.0.1:8080"});
  b.run(docs({kWeb, pod, kEndpoints}));
  EXPECT_EQ(eps(b.svc("default/web").ports[0]),
            (std::vector<std::string>{"10.1.0.1:8081", "10.1.0.2:8081 notready"}));
  const Endpoint& e = b.svc("default/web").ports[0].endpoints[0];
  EXPECT_EQ(e.nodeName, "n1");
  EXPECT_EQ(e.targetRef, "Pod default/e1");
  b.run(docs({kWeb, pod, kEndpoints, kSlice}));
  EXPECT_EQ(eps(b.svc("default/web").ports[0]),
            (std::vector<std::string>{"10.2.0.1:8082", "10.2.0.2:8082 notready"}));
  EXPECT_EQ(b.svc("default/web").ports[0].endpoints[0].targetRef, "Pod default/s1");
  EXPECT_EQ(b.svc("default/web").ports[0].endpoints[0].nodeName, "n2");
  EXPECT_EQ(errorsText(b.snap.errors), "");
}

TEST(Builder, SlicePortsMatchByNameAndDeduplicate) {
  std::string svc = serviceYaml("web", "  ports:\n  - {name: http, port: 80}\n  - {name: dns, port: 53, protocol: UDP}\n");
  std::string slice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: NAME, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.2.0.1]
- addresses: [10.2.0.2]
  conditions: {ready: READY}
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}, {name: dns, port: 9, protocol: TCP}]
)";
  auto sl = [&](const char* name, const char* ready) {
    std::string s = slice;
    s.replace(s.find("NAME"), 4, name);
    s.replace(s.find("READY"), 5, ready);
    return s;
  };
  Build b;
  b.run(docs({svc, sl("web-a", "false"), sl("web-b", "true")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  const Service& s = b.svc("default/web");
  EXPECT_EQ(eps(s.ports[0]), (std::vector<std::string>{"10.2.0.1:8080", "10.2.0.2:8080"}));
  EXPECT_EQ(eps(s.ports[1]), (std::vector<std::string>{"10.2.0.1:5353", "10.2.0.2:5353"}));
}

TEST(Builder, ClusterIPsAndCreationTimestamps) {
  Build b;
  b.run(docs({serviceYaml("dyn", "  ports: [{port: 80}]\n"),
              serviceYaml("fixed", "  clusterIP: 198.19.0.10\n  ports: [{port: 80}]\n"),
              "apiVersion: v1\nkind: Service\nmetadata: {name: stamped, creationTimestamp: "
              "\"2020-01-01T00:00:00Z\"}\nspec: {ports: [{port: 80}]}\n",
              serviceYaml("headless", "  clusterIP: None\n  ports: [{port: 80}]\n"),
              serviceYaml("ext", "  type: ExternalName\n  externalName: example.com\n")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.svc("default/fixed").clusterIPs, std::vector<IpAddr>{ip("198.19.0.10")});
  ASSERT_EQ(b.svc("default/dyn").clusterIPs.size(), 1u);
  EXPECT_EQ(b.svc("default/dyn").creationTimestamp, "2024-05-01T12:00:00Z");
  EXPECT_EQ(b.svc("default/stamped").creationTimestamp, "2020-01-01T00:00:00Z");
  EXPECT_TRUE(b.svc("default/headless").clusterIPs.empty());
  EXPECT_TRUE(b.svc("default/ext").clusterIPs.empty());
  EXPECT_TRUE(b.svc("default/ext").ports.empty());
  // A later build on another clock keeps both the IP and the creation time.
  IpAddr dyn = b.svc("default/dyn").clusterIPs[0];
  b.opts.now = [] { return std::string("2030-01-01T00:00:00Z"); };
  b.run(docs({serviceYaml("dyn", "  ports: [{port: 80}]\n")}));
  EXPECT_EQ(b.svc("default/dyn").clusterIPs, std::vector<IpAddr>{dyn});
  EXPECT_EQ(b.svc("default/dyn").creationTimestamp, "2024-05-01T12:00:00Z");
  EXPECT_EQ(b.store.record.services.size(), 1u);  // deleted ones released
}

TEST(Builder, SameManifestsSameAddressesOnEveryNode) {
  std::vector<SourceFile> files = {{"a.yaml", serviceYaml("a", "  ports: [{port: 80}]\n")},
                                   {"b.yaml", serviceYaml("b", "  ports: [{port: 80}]\n", "x")}};
  Build node1, node2;
  node1.run(files);
  node2.run({files[1], files[0]});  // the agent's directory order does not matter
  EXPECT_EQ(node1.svc("default/a").clusterIPs, node2.svc("default/a").clusterIPs);
  EXPECT_EQ(node1.svc("x/b").clusterIPs, node2.svc("x/b").clusterIPs);
}

TEST(Builder, AllocationErrors) {
  Build b;
  b.run(docs({serviceYaml("other", "  clusterIP: 198.19.0.20\n  ports: [{port: 80}]\n"),
              serviceYaml("web", "  clusterIP: 198.19.0.20\n  ports: [{port: 80}]\n"),
              serviceYaml("far", "  clusterIP: 10.0.0.1\n  ports: [{port: 80}]\n")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            (std::vector<std::string>{
                "m.yaml: Service default/web: spec.clusterIP: 198.19.0.20 is already allocated to "
                "default/other",
                "m.yaml: Service default/far: spec.clusterIP: 10.0.0.1 is not in the service CIDR "
                "198.19.0.0/16"}));
  EXPECT_EQ(b.snap.services.count("default/web"), 0u);
  EXPECT_EQ(b.snap.services.count("default/far"), 0u);
  EXPECT_EQ(b.svc("default/other").clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
}

TEST(Builder, LastGoodVersionIsKeptWhileInvalid) {
  std::string good = serviceYaml("web", "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n");
  std::string bad = serviceYaml("web", "  selector: {app: web}\n  ports: [{port: 70000}]\n");
  std::string pod1 = podYaml("p1", "10.0.0.1", "{app: web}");
  std::string pod2 = podYaml("p2", "10.0.0.2", "{app: web}");
  Build b;
  b.run(docs({good, pod1}));
  Service before = b.svc("default/web");
  b.run(docs({bad, pod1, pod2}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{"m.yaml: Service default/web: spec.ports[0].port: must be "
                                     "between 1 and 65535, got 70000"});
  const Service& kept = b.svc("default/web");
  EXPECT_EQ(kept.clusterIPs, before.clusterIPs);
  EXPECT_EQ(kept.ports[0].port, 80);
  EXPECT_EQ(eps(kept.ports[0]), (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080"}));
  // While invalid, its address is not given to anybody else.
  std::string thief = serviceYaml("thief", "  clusterIP: " + before.clusterIPs[0].str() +
                                               "\n  ports: [{port: 80}]\n");
  b.run(docs({bad, thief}));
  EXPECT_EQ(b.snap.services.count("default/thief"), 0u);
  EXPECT_EQ(b.svc("default/web").clusterIPs, before.clusterIPs);
  // Deleted: gone.
  b.run(docs({pod1}));
  EXPECT_EQ(b.snap.services.count("default/web"), 0u);
  EXPECT_TRUE(b.store.record.services.empty());
}

TEST(Builder, InvalidWithoutPreviousIsLeftOut) {
  Build b;
  b.run(docs({serviceYaml("web", "  ports: [{port: 70000}]\n")}));
  EXPECT_TRUE(b.snap.services.empty());
  EXPECT_EQ(b.snap.errors.size(), 1u);
}

TEST(Builder, AllocationErrorKeepsLastGood) {
  Build b;
  b.run(docs({serviceYaml("web", "  clusterIP: 198.19.0.5\n  ports: [{port: 80}]\n"),
              serviceYaml("other", "  clusterIP: 198.19.0.6\n  ports: [{port: 80}]\n")}));
  b.run(docs({serviceYaml("web", "  clusterIP: 198.19.0.6\n  ports: [{port: 81}]\n"),
              serviceYaml("other", "  clusterIP: 198.19.0.6\n  ports: [{port: 80}]\n")}));
  ASSERT_EQ(b.snap.errors.size(), 1u);
  EXPECT_EQ(b.snap.errors[0].str(),
            "m.yaml: Service default/web: spec.clusterIP: 198.19.0.6 is already allocated to "
            "default/other");
  EXPECT_EQ(b.svc("default/web").clusterIPs, std::vector<IpAddr>{ip("198.19.0.5")});
  EXPECT_EQ(b.svc("default/web").ports[0].port, 80);
  EXPECT_EQ(b.store.record.services["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.5")});
}

TEST(Builder, BadDocumentDoesNotAffectOthersInTheFile) {
  Build b;
  b.run({{"m.yaml", docs({serviceYaml("a", "  ports: [{port: 80}]\n"), "kind: Service\nmetadata: {name: [\n",
                          serviceYaml("b", "  ports: [{port: 70000}]\n"),
                          serviceYaml("c", "  ports: [{port: 80}]\n")})}});
  ASSERT_EQ(b.snap.errors.size(), 2u);
  EXPECT_EQ(b.snap.errors[0].object, "document 2");
  EXPECT_EQ(b.snap.errors[1].str(),
            "m.yaml: Service default/b: spec.ports[0].port: must be between 1 and 65535, got 70000");
  EXPECT_EQ(b.snap.services.size(), 2u);
  EXPECT_EQ(b.snap.services.count("default/a"), 1u);
  EXPECT_EQ(b.snap.services.count("default/c"), 1u);
}

TEST(Builder, FileMidEditKeepsServicesThatVanishedFromIt) {
  Build b;
  b.run({{"a.yaml", serviceYaml("a", "  ports: [{port: 80}]\n")},
         {"b.yaml", serviceYaml("b", "  ports: [{port: 80}]\n")}});
  IpAddr a = b.svc("default/a").clusterIPs.at(0);
  // a.yaml is half written: its service cannot even be identified.
  b.run({{"a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a\n"},
         {"b.yaml", serviceYaml("b", "  ports: [{port: 80}]\n")}});
  EXPECT_EQ(b.snap.errors.size(), 1u);
  EXPECT_EQ(b.svc("default/a").clusterIPs, std::vector<IpAddr>{a});
  // b.yaml deleted: b is gone for real.
  b.run({{"a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a\n"}});
  EXPECT_EQ(b.snap.services.count("default/b"), 0u);
  EXPECT_EQ(b.snap.services.count("default/a"), 1u);
  // a.yaml fixed with different content: a is gone.
  b.run({{"a.yaml", "# empty now\n"}});
  EXPECT_TRUE(b.snap.services.empty());
}

TEST(Builder, DuplicateAcrossFilesKeepsFirst) {
  Build b;
  b.run({{"b.yaml", serviceYaml("web", "  ports: [{port: 81}]\n")},
         {"a.yaml", serviceYaml("web", "  ports: [{port: 80}]\n")}});
  ASSERT_EQ(b.snap.errors.size(), 1u);
  EXPECT_EQ(b.snap.errors[0].file, "b.yaml");
  EXPECT_NE(b.snap.errors[0].message.find("a.yaml"), std::string::npos);
  EXPECT_EQ(b.svc("default/web").file, "a.yaml");
  EXPECT_EQ(b.svc("default/web").ports[0].port, 80);
}

TEST(Builder, Nodes) {
  Build b;
  b.run("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus:\n  addresses: [{type: "
        "InternalIP, address: 192.168.1.1}]\n");
  ASSERT_EQ(b.snap.nodes.count("n1"), 1u);
  EXPECT_EQ(b.snap.nodes["n1"].addresses, std::vector<IpAddr>{ip("192.168.1.1")});
  EXPECT_TRUE(b.snap.nodes["n1"].ready);
}

class FailingStore : public AllocationStore {
 public:
  bool transact(const std::function<void(AllocationRecord&)>&, std::string* error) override {
    *error = "disk on fire";
    return false;
  }
};

TEST(Builder, UnreadableRecordKeepsKnownAddresses) {
  Build b;
  b.run(docs({serviceYaml("web", "  ports: [{port: 80}]\n")}));
  ClusterSnapshot prev = b.snap;
  FailingStore failing;
  ClusterSnapshot snap = buildSnapshot(
      {{"m.yaml", docs({serviceYaml("web", "  ports: [{port: 8080}]\n"),
                        serviceYaml("new", "  ports: [{port: 80}]\n")})}},
      b.opts, failing, &prev);
  EXPECT_EQ(errorStrings(snap.errors),
            (std::vector<std::string>{
                "ClusterIP allocation record: disk on fire",
                "m.yaml: Service default/new: spec.clusterIP: cannot allocate: disk on fire"}));
  EXPECT_EQ(snap.services.at("default/web").clusterIPs, prev.services.at("default/web").clusterIPs);
  EXPECT_EQ(snap.services.at("default/web").ports[0].port, 8080);
  EXPECT_EQ(snap.services.count("default/new"), 0u);
}

TEST(ServiceJson, AsTheApiWouldReturnIt) {
  Build b;
  b.run(docs({"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: {app: web}\n"
              "spec:\n  clusterIP: 198.19.0.10\n  selector: {app: web}\n  ports:\n"
              "  - {name: http, port: 80, targetPort: http}\n  - {name: dns, port: 53, protocol: UDP}\n",
              serviceYaml("h", "  clusterIP: None\n  ports: [{port: 80}]\n"),
              serviceYaml("e", "  type: ExternalName\n  externalName: example.com\n")}));
  auto j = serviceToJson(b.svc("default/web"));
  EXPECT_EQ(j["apiVersion"], "v1");
  EXPECT_EQ(j["kind"], "Service");
  EXPECT_EQ(j["metadata"]["namespace"], "default");
  EXPECT_EQ(j["metadata"]["labels"]["app"], "web");
  EXPECT_EQ(j["metadata"]["creationTimestamp"], "2024-05-01T12:00:00Z");
  EXPECT_EQ(j["spec"]["clusterIP"], "198.19.0.10");
  EXPECT_EQ(j["spec"]["clusterIPs"], nlohmann::json::array({"198.19.0.10"}));
  EXPECT_EQ(j["spec"]["type"], "ClusterIP");
  EXPECT_EQ(j["spec"]["ports"][0],
            nlohmann::json({{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", "http"}}));
  EXPECT_EQ(j["spec"]["ports"][1],
            nlohmann::json({{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}, {"targetPort", 53}}));
  EXPECT_EQ(j["status"], nlohmann::json({{"loadBalancer", nlohmann::json::object()}}));
  auto h = serviceToJson(b.svc("default/h"));
  EXPECT_EQ(h["spec"]["clusterIP"], "None");
  EXPECT_EQ(h["spec"]["clusterIPs"], nlohmann::json::array({"None"}));
  auto e = serviceToJson(b.svc("default/e"));
  EXPECT_FALSE(e["spec"].contains("clusterIP"));
  EXPECT_EQ(e["spec"]["externalName"], "example.com");
  EXPECT_EQ(e["spec"]["type"], "ExternalName");
}

TEST(ServiceJson, EndpointsGroupAddressesByPorts) {
  Build b;
  b.run(docs({serviceYaml("web", "  selector: {app: web}\n  ports:\n"
                                 "  - {name: http, port: 80, targetPort: http}\n"
                                 "  - {name: dns, port: 53, protocol: UDP}\n"),
              podYaml("p1", "10.0.0.1", "{app: web}", true, "[{name: http, containerPort: 8080}]"),
              podYaml("p2", "10.0.0.2", "{app: web}", false, "[{name: http, containerPort: 8080}]"),
              podYaml("p3", "10.0.0.3", "{app: web}", true, "[{name: http, containerPort: 9000}]")}));
  auto j = endpointsToJson(b.svc("default/web"));
  EXPECT_EQ(j["kind"], "Endpoints");
  EXPECT_EQ(j["metadata"]["name"], "web");
  auto want = nlohmann::json::parse(R"([
    {"addresses": [{"ip": "10.0.0.1", "nodeName": "node-a",
                    "targetRef": {"kind": "Pod", "namespace": "default", "name": "p1"}}],
     "notReadyAddresses": [{"ip": "10.0.0.2", "nodeName": "node-a",
                    "targetRef": {"kind": "Pod", "namespace": "default", "name": "p2"}}],
     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
               {"name": "http", "port": 8080, "protocol": "TCP"}]},
    {"addresses": [{"ip": "10.0.0.3", "nodeName": "node-a",
                    "targetRef": {"kind": "Pod", "namespace": "default", "name": "p3"}}],
     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
               {"name": "http", "port": 9000, "protocol": "TCP"}]}])");
  EXPECT_EQ(j["subsets"], want) << j["subsets"].dump(2);
  Build empty;
  empty.run(serviceYaml("x", "  ports: [{port: 80}]\n"));
  EXPECT_FALSE(endpointsToJson(empty.svc("default/x")).contains("subsets"));
}

}  // namespace
}  // namespace ferry
