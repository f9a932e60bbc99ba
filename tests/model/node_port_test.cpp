// Node port allocation (through buildSnapshot, as the agent uses it, and
// directly), the record's JSON form and the -o json view.
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
using test::serviceYaml;

struct Build {
  MemoryAllocationStore store;
  BuildOptions opts = options();
  ClusterSnapshot snap;
  ClusterSnapshot& run(const std::string& content) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot({{"m.yaml", content}}, opts, store, &prev);
    return snap;
  }
  const Service& svc(const std::string& key) { return snap.services.at(key); }
  uint16_t port(const std::string& key, size_t i = 0) { return svc(key).ports.at(i).nodePort; }
  const ServiceAllocation& rec(const std::string& key) { return store.record.services.at(key); }
};

std::string nodePort(const std::string& name, const std::string& ports,
                     const std::string& type = "NodePort") {
  return serviceYaml(name, "  type: " + type + "\n  ports: " + ports + "\n");
}

const std::string kErr = "m.yaml: Service default/web: ";

TEST(NodePort, RequestedIsGrantedAndRecorded) {
  Build b;
  b.run(nodePort("web", "[{port: 80, nodePort: 30080}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/web"), 30080);
  EXPECT_EQ(b.rec("default/web").nodePorts, (std::map<std::string, uint16_t>{{"0/TCP", 30080}}));
  EXPECT_EQ(b.svc("default/web").healthCheckNodePort, 0);
}

TEST(NodePort, RequestedOutOfRange) {
  Build b;
  b.run(nodePort("web", "[{port: 80, nodePort: 40000}]"));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: 40000 is not in the node port range 30000-32767"});
  EXPECT_FALSE(b.snap.services.count("default/web"));
  EXPECT_TRUE(b.store.record.services.empty());
}

TEST(NodePort, ConfiguredRange) {
  Build b;
  b.opts.nodePortMin = 20000;
  b.opts.nodePortMax = 20010;
  b.run(docs({nodePort("a", "[{port: 80, nodePort: 20010}]"), nodePort("b", "[{port: 80}]"),
              nodePort("web", "[{port: 80, nodePort: 30080}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: 30080 is not in the node port range 20000-20010"});
  EXPECT_EQ(b.port("default/a"), 20010);
  EXPECT_GE(b.port("default/b"), 20000);
  EXPECT_LT(b.port("default/b"), 20010);
}

TEST(NodePort, CollisionNamesBothServices) {
  Build b;
  b.run(docs({nodePort("other", "[{port: 80, nodePort: 32618}]"),
              nodePort("web", "[{port: 8080, nodePort: 32618}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: 32618 is already allocated to default/other"});
  EXPECT_EQ(b.port("default/other"), 32618);
  EXPECT_FALSE(b.snap.services.count("default/web"));
  EXPECT_FALSE(b.store.record.services.count("default/web"));
}

TEST(NodePort, CollisionWithAnotherProtocolOfAnotherService) {
  Build b;
  b.run(docs({nodePort("other", "[{port: 53, protocol: UDP, nodePort: 30053}]"),
              nodePort("web", "[{port: 53, nodePort: 30053}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: 30053 is already allocated to default/other"});
}

TEST(NodePort, OneServiceMayUseANumberForTcpAndUdp) {
  Build b;
  b.run(nodePort("dns", "[{name: tcp, port: 53, nodePort: 30053}, "
                        "{name: udp, port: 53, protocol: UDP, nodePort: 30053}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/dns", 0), 30053);
  EXPECT_EQ(b.port("default/dns", 1), 30053);
  EXPECT_EQ(b.rec("default/dns").nodePorts,
            (std::map<std::string, uint16_t>{{"tcp/TCP", 30053}, {"udp/UDP", 30053}}));
}

// Like kube-apiserver: ports of one port number share their node port.
TEST(NodePort, DynamicTcpAndUdpOfOnePortShareANumber) {
  Build b;
  b.run(nodePort("dns", "[{name: tcp, port: 53}, {name: udp, port: 53, protocol: UDP}, "
                        "{name: metrics, port: 9153}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_NE(b.port("default/dns", 0), 0);
  EXPECT_EQ(b.port("default/dns", 0), b.port("default/dns", 1));
  EXPECT_NE(b.port("default/dns", 2), b.port("default/dns", 0));
  Build req;  // a requested one is shared too
  req.run(nodePort("dns", "[{name: tcp, port: 53}, {name: udp, port: 53, protocol: UDP, nodePort: 30053}]"));
  EXPECT_EQ(req.port("default/dns", 0), 30053);
  EXPECT_EQ(req.port("default/dns", 1), 30053);
}

std::string manyServices(int n) {
  std::vector<std::string> parts;
  for (int i = 0; i < n; ++i) parts.push_back(nodePort("svc-" + std::to_string(i), "[{port: 80}]"));
  return docs(parts);
}

TEST(NodePort, DynamicIsDeterministicAndInTheUpperBand) {
  std::string content = manyServices(20);
  Build b1, b2;
  b1.run(content);
  b2.run(content);
  EXPECT_EQ(errorsText(b1.snap.errors), "");
  EXPECT_EQ(b1.store.record, b2.store.record);
  std::set<uint16_t> seen;
  for (const auto& [key, s] : b1.snap.services) {
    uint16_t p = s.ports[0].nodePort;
    EXPECT_EQ(p, b2.port(key)) << key;
    // 2768 ports: the lower band of 2768/32 = 86 is kept for requests.
    EXPECT_GE(p, 30086) << key;
    EXPECT_LE(p, 32767) << key;
    EXPECT_TRUE(seen.insert(p).second) << key;
  }
}

TEST(NodePort, RequestWinsOverADynamicPickInTheSamePass) {
  Build probe;
  probe.run(nodePort("a", "[{port: 80}]"));
  uint16_t picked = probe.port("default/a");
  Build b;
  b.run(docs({nodePort("a", "[{port: 80}]"),
              nodePort("b", "[{port: 80, nodePort: " + std::to_string(picked) + "}]")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/b"), picked);
  EXPECT_NE(b.port("default/a"), picked);
}

TEST(NodePort, StableWhenOtherServicesComeAndGo) {
  Build b;
  std::string web = nodePort("web", "[{name: http, port: 80}, {name: https, port: 443}]");
  b.run(web);
  uint16_t http = b.port("default/web", 0), https = b.port("default/web", 1);
  EXPECT_NE(http, https);
  b.run(docs({manyServices(30), web}));
  EXPECT_EQ(b.port("default/web", 0), http);
  EXPECT_EQ(b.port("default/web", 1), https);
  b.run(web);
  EXPECT_EQ(b.port("default/web", 0), http);
  EXPECT_EQ(b.port("default/web", 1), https);
  EXPECT_EQ(b.store.record.services.size(), 1u);
  // Removing the request keeps the number; removing a port releases it.
  b.run(nodePort("web", "[{name: http, port: 80}]"));
  EXPECT_EQ(b.port("default/web", 0), http);
  EXPECT_EQ(b.rec("default/web").nodePorts, (std::map<std::string, uint16_t>{{"http/TCP", http}}));
}

TEST(NodePort, ReleasedOnDelete) {
  Build b;
  b.run(nodePort("other", "[{port: 80, nodePort: 32618}]"));
  b.run(nodePort("web", "[{port: 80, nodePort: 32618}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/web"), 32618);
  EXPECT_FALSE(b.store.record.services.count("default/other"));
}

TEST(NodePort, ReleasedOnTypeChangeToClusterIP) {
  Build b;
  b.run(nodePort("other", "[{port: 80, nodePort: 32618}]"));
  b.run(serviceYaml("other", "  ports: [{port: 80}]\n"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/other"), 0);
  EXPECT_TRUE(b.rec("default/other").nodePorts.empty());
  EXPECT_EQ(serviceToJson(b.svc("default/other"))["spec"]["ports"][0].count("nodePort"), 0u);
  b.run(docs({serviceYaml("other", "  ports: [{port: 80}]\n"),
              nodePort("web", "[{port: 80, nodePort: 32618}]")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/web"), 32618);
}

TEST(NodePort, ReleasedPortCanBeTakenInTheSamePass) {
  Build b;
  b.run(nodePort("z-old", "[{port: 80, nodePort: 32618}]"));
  b.run(docs({serviceYaml("z-old", "  ports: [{port: 80}]\n"),
              nodePort("a-new", "[{port: 80, nodePort: 32618}]")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/a-new"), 32618);
}

TEST(NodePort, ErrorKeepsTheLastGoodVersion) {
  Build b;
  b.run(docs({nodePort("other", "[{port: 80, nodePort: 31000}]"),
              nodePort("web", "[{port: 80, nodePort: 30080}]")}));
  b.run(docs({nodePort("other", "[{port: 80, nodePort: 31000}]"),
              nodePort("web", "[{port: 80, nodePort: 31000}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: 31000 is already allocated to default/other"});
  EXPECT_EQ(b.port("default/web"), 30080);
  EXPECT_EQ(b.rec("default/web").nodePorts.at("0/TCP"), 30080);  // still reserved
}

TEST(NodePort, InvalidServiceKeepsItsPorts) {
  Build b;
  b.run(nodePort("web", "[{port: 80, nodePort: 30080}]"));
  b.run(docs({nodePort("web", "[{port: 80, protocol: HTTP}]"),
              nodePort("other", "[{port: 80, nodePort: 30080}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            (std::vector<std::string>{
                kErr + "spec.ports[0].protocol: unsupported protocol \"HTTP\": must be TCP or UDP",
                "m.yaml: Service default/other: spec.ports[0].nodePort: 30080 is already allocated "
                "to default/web"}));
  EXPECT_EQ(b.port("default/web"), 30080);
}

TEST(NodePort, LoadBalancerGetsNodePorts) {
  Build b;
  b.run(nodePort("lb", "[{name: a, port: 80}, {name: b, port: 81, nodePort: 30081}]", "LoadBalancer"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_NE(b.port("default/lb", 0), 0);
  EXPECT_EQ(b.port("default/lb", 1), 30081);
  EXPECT_EQ(b.svc("default/lb").healthCheckNodePort, 0);  // policy Cluster
}

TEST(NodePort, LoadBalancerWithoutNodePortAllocation) {
  Build b;
  std::string ports = "[{name: a, port: 80}, {name: b, port: 81, nodePort: 30081}]";
  b.run(nodePort("lb", ports, "LoadBalancer"));
  uint16_t dynamicPort = b.port("default/lb", 0);
  b.run(serviceYaml("lb", "  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: " +
                              ports + "\n"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/lb", 0), 0);
  EXPECT_EQ(b.port("default/lb", 1), 30081);
  EXPECT_EQ(b.rec("default/lb").nodePorts, (std::map<std::string, uint16_t>{{"b/TCP", 30081}}));
  b.run(nodePort("other", "[{port: 80, nodePort: " + std::to_string(dynamicPort) + "}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
}

const std::string kLocalLb =
    "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n";

TEST(NodePort, HealthCheckNodePort) {
  Build b;
  b.run(serviceYaml("lb", kLocalLb));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  uint16_t hc = b.svc("default/lb").healthCheckNodePort;
  EXPECT_GE(hc, 30000);
  EXPECT_LE(hc, 32767);
  EXPECT_NE(hc, b.port("default/lb"));
  EXPECT_EQ(b.rec("default/lb").healthCheckNodePort, hc);
  b.run(docs({serviceYaml("lb", kLocalLb), manyServices(10)}));
  EXPECT_EQ(b.svc("default/lb").healthCheckNodePort, hc);  // stable
  // Another service cannot take it.
  b.run(docs({serviceYaml("lb", kLocalLb),
              nodePort("web", "[{port: 80, nodePort: " + std::to_string(hc) + "}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{kErr + "spec.ports[0].nodePort: " + std::to_string(hc) +
                                     " is already allocated to default/lb"});
}

TEST(NodePort, HealthCheckNodePortRequested) {
  Build b;
  b.run(serviceYaml("lb", kLocalLb + "  healthCheckNodePort: 31999\n"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.svc("default/lb").healthCheckNodePort, 31999);
  b.run(docs({serviceYaml("lb", kLocalLb + "  healthCheckNodePort: 31999\n"),
              serviceYaml("web", kLocalLb + "  healthCheckNodePort: 31999\n")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.healthCheckNodePort: 31999 is already allocated to default/lb"});
  b.run(serviceYaml("web", kLocalLb + "  healthCheckNodePort: 40000\n"));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.healthCheckNodePort: 40000 is not in the node port range 30000-32767"});
  b.run(serviceYaml("web", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n"
                           "  healthCheckNodePort: 30080\n  ports: [{port: 80, nodePort: 30080}]\n"));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.healthCheckNodePort: 30080 is already used by spec.ports[0].nodePort"});
}

TEST(NodePort, HealthCheckNodePortReleased) {
  Build b;
  b.run(serviceYaml("lb", kLocalLb + "  healthCheckNodePort: 31999\n"));
  // Policy back to Cluster: released.
  b.run(serviceYaml("lb", "  type: LoadBalancer\n  ports: [{port: 80}]\n"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.svc("default/lb").healthCheckNodePort, 0);
  EXPECT_EQ(b.rec("default/lb").healthCheckNodePort, 0);
  b.run(nodePort("web", "[{port: 80, nodePort: 31999}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  // Type NodePort (policy Local kept): no health check port.
  Build t;
  t.run(serviceYaml("lb", kLocalLb));
  uint16_t nodePortBefore = t.port("default/lb");
  t.run(serviceYaml("lb", "  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n"));
  EXPECT_EQ(errorsText(t.snap.errors), "");
  EXPECT_TRUE(t.svc("default/lb").externalTrafficLocal);
  EXPECT_EQ(t.svc("default/lb").healthCheckNodePort, 0);
  EXPECT_EQ(t.rec("default/lb").healthCheckNodePort, 0);
  EXPECT_EQ(t.port("default/lb"), nodePortBefore);  // node ports stay
}

TEST(NodePort, FullRange) {
  Build b;
  b.opts.nodePortMin = 30000;
  b.opts.nodePortMax = 30001;
  b.run(docs({nodePort("a", "[{port: 80}]"), nodePort("b", "[{port: 80}]"),
              nodePort("web", "[{port: 80}]")}));
  EXPECT_EQ(errorStrings(b.snap.errors),
            std::vector<std::string>{
                kErr + "spec.ports[0].nodePort: no free node port left in the range 30000-30001"});
  EXPECT_EQ(b.snap.services.size(), 2u);
}

TEST(NodePort, RecordedPortsOutsideANewRangeAreReallocated) {
  Build b;
  b.run(nodePort("web", "[{port: 80}]"));
  b.opts.nodePortMin = 20000;
  b.opts.nodePortMax = 20999;
  b.run(nodePort("web", "[{port: 80}]"));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_GE(b.port("default/web"), 20000);
  EXPECT_LE(b.port("default/web"), 20999);
}

TEST(NodePort, RecordedTwiceGoesToTheFirstOwner) {
  Build b;
  b.run(docs({nodePort("a", "[{port: 80}]"), nodePort("b", "[{port: 80}]")}));
  uint16_t p = b.port("default/a");
  b.store.record.services["default/b"].nodePorts["0/TCP"] = p;  // corrupted by hand
  b.run(docs({nodePort("a", "[{port: 80}]"), nodePort("b", "[{port: 80}]")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.port("default/a"), p);
  EXPECT_NE(b.port("default/b"), p);
  EXPECT_NE(b.port("default/b"), 0);
}

// Without the record, services keep the node ports they had.
class BrokenStore : public AllocationStore {
 public:
  bool transact(const std::function<void(AllocationRecord&)>&, std::string* error) override {
    *error = "disk on fire";
    return false;
  }
};

TEST(NodePort, FallbackKeepsPreviousPorts) {
  Build b;
  std::string lb = serviceYaml("lb", kLocalLb);
  b.run(lb);
  ClusterSnapshot prev = b.snap;
  BrokenStore broken;
  ClusterSnapshot snap = buildSnapshot({{"m.yaml", lb}}, b.opts, broken, &prev);
  EXPECT_EQ(snap.services.at("default/lb"), prev.services.at("default/lb"));
  std::string moved = serviceYaml("lb", kLocalLb + "  healthCheckNodePort: 31999\n");
  snap = buildSnapshot({{"m.yaml", moved}}, b.opts, broken, &prev);
  EXPECT_EQ(errorStrings(snap.errors),
            (std::vector<std::string>{
                "ClusterIP allocation record: disk on fire",
                "m.yaml: Service default/lb: spec.clusterIP: cannot allocate: disk on fire"}));
}

TEST(NodePort, DirectAllocationApi) {
  AllocationRecord rec;
  AllocationRequest r;
  r.key = "default/web";
  r.nodePorts = {{"http/TCP", "spec.ports[0].nodePort", 80, Protocol::TCP, 31080},
                 {"dns/UDP", "spec.ports[1].nodePort", 53, Protocol::UDP, 0}};
  r.needsHealthCheckNodePort = true;
  auto res = allocateClusterIPs(rec, {r}, {"default/web"}, {test::cidr("198.19.0.0/16")},
                                "2024-05-01T12:00:00Z", {31000, 31999});
  const AllocationResult& w = res["default/web"];
  EXPECT_EQ(w.error, "");
  EXPECT_EQ(w.nodePorts.at("http/TCP"), 31080);
  EXPECT_EQ(w.nodePorts.size(), 2u);
  EXPECT_EQ(w.nodePorts.at("dns/UDP") / 1000, 31);
  EXPECT_EQ(w.healthCheckNodePort / 1000, 31);
  EXPECT_EQ(w.nodePorts, rec.services["default/web"].nodePorts);
  EXPECT_EQ(nodePortKey("", 0, Protocol::UDP), "0/UDP");
  EXPECT_EQ(nodePortKey("http", 3, Protocol::TCP), "http/TCP");
}

// The dataplane tells local endpoints (externalTrafficPolicy Local) by
// Endpoint::nodeName, from whichever source the endpoints came.
TEST(EndpointLocality, NodeNameFromEverySource) {
  std::string slice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: from-slice-1, labels: {kubernetes.io/service-name: from-slice}}
addressType: IPv4
ports: [{port: 8080}]
endpoints:
- {addresses: [10.0.0.1], nodeName: node-a}
- {addresses: [10.0.0.2]}
)";
  std::string endpoints = R"(apiVersion: v1
kind: Endpoints
metadata: {name: from-endpoints}
subsets:
- addresses: [{ip: 10.0.1.1, nodeName: node-b}, {ip: 10.0.1.2}]
  notReadyAddresses: [{ip: 10.0.1.3, nodeName: node-c}]
  ports: [{port: 8080}]
)";
  Build b;
  b.run(docs({nodePort("from-slice", "[{port: 80}]"), slice,
              nodePort("from-endpoints", "[{port: 80}]"), endpoints,
              serviceYaml("from-pods", "  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80}]\n"),
              test::podYaml("p1", "10.0.2.1", "{app: web}", true, "[]", "", "node-d")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  auto nodes = [&](const std::string& key) {
    std::vector<std::string> out;
    for (const auto& e : b.svc(key).ports.at(0).endpoints) out.push_back(e.ip.str() + "@" + e.nodeName);
    return out;
  };
  EXPECT_EQ(nodes("default/from-slice"), (std::vector<std::string>{"10.0.0.1@node-a", "10.0.0.2@"}));
  EXPECT_EQ(nodes("default/from-endpoints"),
            (std::vector<std::string>{"10.0.1.1@node-b", "10.0.1.2@", "10.0.1.3@node-c"}));
  EXPECT_EQ(nodes("default/from-pods"), (std::vector<std::string>{"10.0.2.1@node-d"}));
}

TEST(NodePortRecordJson, RoundTripWithNodePorts) {
  auto j = nlohmann::json::parse(R"({"services": {
    "default/lb": {"clusterIPs": ["198.19.0.20"], "created": "t",
                   "nodePorts": {"http/TCP": 30080, "dns/UDP": 30053},
                   "healthCheckNodePort": 31999, "future": 1}}})");
  AllocationRecord rec;
  std::string err;
  ASSERT_TRUE(AllocationRecord::fromJson(j, &rec, &err)) << err;
  const ServiceAllocation& a = rec.services["default/lb"];
  EXPECT_EQ(a.nodePorts, (std::map<std::string, uint16_t>{{"dns/UDP", 30053}, {"http/TCP", 30080}}));
  EXPECT_EQ(a.healthCheckNodePort, 31999);
  EXPECT_EQ(rec.toJson(), j);
}

TEST(NodePortRecordJson, OldRecordWithoutNodePortsLoads) {
  auto j = nlohmann::json::parse(
      R"({"services": {"default/web": {"clusterIPs": ["198.19.0.20"], "created": "t"}}})");
  AllocationRecord rec;
  std::string err;
  ASSERT_TRUE(AllocationRecord::fromJson(j, &rec, &err)) << err;
  EXPECT_TRUE(rec.services["default/web"].nodePorts.empty());
  EXPECT_EQ(rec.services["default/web"].healthCheckNodePort, 0);
  EXPECT_EQ(rec.toJson(), j);  // nothing added: older agents read it unchanged
}

TEST(NodePortRecordJson, RejectsMalformedNodePorts) {
  AllocationRecord rec;
  std::string err;
  EXPECT_FALSE(AllocationRecord::fromJson(
      nlohmann::json::parse(R"({"services": {"a/b": {"nodePorts": {"x/TCP": 70000}}}})"), &rec, &err));
  EXPECT_EQ(err, "services[\"a/b\"].nodePorts[\"x/TCP\"]: not a port number: 70000");
  EXPECT_FALSE(AllocationRecord::fromJson(
      nlohmann::json::parse(R"({"services": {"a/b": {"nodePorts": [30000]}}})"), &rec, &err));
  EXPECT_EQ(err, "services[\"a/b\"].nodePorts must be an object");
  EXPECT_FALSE(AllocationRecord::fromJson(
      nlohmann::json::parse(R"({"services": {"a/b": {"healthCheckNodePort": "x"}}})"), &rec, &err));
  EXPECT_EQ(err, "services[\"a/b\"].healthCheckNodePort: not a port number: \"x\"");
}

TEST(NodePortJson, ServiceToJson) {
  Build b;
  b.run(docs({serviceYaml("np", "  type: NodePort\n  externalTrafficPolicy: Local\n"
                                "  externalIPs: [203.0.113.7]\n  ports: [{port: 80, nodePort: 30080}]\n"),
              serviceYaml("lb", kLocalLb + "  healthCheckNodePort: 31999\n"),
              serviceYaml("cip", "  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n"),
              serviceYaml("eip", "  externalIPs: [203.0.113.8]\n  ports: [{port: 80}]\n")}));
  EXPECT_EQ(errorsText(b.snap.errors), "");
  nlohmann::json np = serviceToJson(b.svc("default/np"))["spec"];
  EXPECT_EQ(np["externalTrafficPolicy"], "Local");
  EXPECT_EQ(np["externalIPs"], nlohmann::json::array({"203.0.113.7"}));
  EXPECT_EQ(np["ports"][0]["nodePort"], 30080);
  EXPECT_FALSE(np.contains("healthCheckNodePort"));
  EXPECT_FALSE(np.contains("allocateLoadBalancerNodePorts"));
  nlohmann::json lb = serviceToJson(b.svc("default/lb"))["spec"];
  EXPECT_EQ(lb["type"], "LoadBalancer");
  EXPECT_EQ(lb["externalTrafficPolicy"], "Local");
  EXPECT_EQ(lb["healthCheckNodePort"], 31999);
  EXPECT_EQ(lb["ports"][0]["nodePort"], b.port("default/lb"));
  EXPECT_EQ(lb["allocateLoadBalancerNodePorts"], true);
  nlohmann::json cip = serviceToJson(b.svc("default/cip"))["spec"];
  EXPECT_FALSE(cip.contains("externalTrafficPolicy"));
  EXPECT_FALSE(cip["ports"][0].contains("nodePort"));
  nlohmann::json eip = serviceToJson(b.svc("default/eip"))["spec"];
  EXPECT_EQ(eip["externalTrafficPolicy"], "Cluster");
  EXPECT_EQ(eip["externalIPs"], nlohmann::json::array({"203.0.113.8"}));
}

}  // namespace
}  // namespace ferry
