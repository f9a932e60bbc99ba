#include <gtest/gtest.h>

#include "model/manifest.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::errorStrings;
using test::errorsText;
using test::ip;
using test::serviceYaml;

Manifests parseOne(const std::string& content, const std::string& path = "m.yaml") {
  return parseManifests({{path, content}});
}

TEST(Manifest, MultiDocumentYamlWithAllKinds) {
  std::string content = R"(apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  creationTimestamp: "2023-01-02T03:04:05Z"
spec:
  type: NodePort
  clusterIP: 198.19.0.5
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: http-alt
    nodePort: 30080
  - name: dns
    protocol: UDP
    port: 53
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  labels: {app: web}
  deletionTimestamp: "2024-01-01T00:00:00Z"
spec:
  nodeName: node-a
  hostNetwork: true
  hostname: h1
  subdomain: web
  containers:
  - name: c
    ports:
    - {name: http-alt, containerPort: 8080}
    - {name: dns, containerPort: 5353, protocol: UDP}
status:
  phase: Running
  podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: shop}
subsets:
- addresses:
  - ip: 10.0.0.2
    nodeName: node-b
    hostname: h2
    targetRef: {kind: Pod, name: web-2}
  notReadyAddresses: [{ip: 10.0.0.3}]
  ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.0.0.4]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-c
  targetRef: {kind: Pod, namespace: shop, name: web-4}
- addresses: [10.0.0.5]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
status:
  addresses:
  - {type: InternalIP, address: 192.168.1.10}
  - {type: Hostname, address: node-a}
  - {type: ExternalIP, address: 203.0.113.10}
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
)";
  Manifests m = parseOne(content);
  EXPECT_EQ(errorsText(m.errors), "");
  ASSERT_EQ(m.services.size(), 1u);
  const Service& s = m.services[0];
  EXPECT_EQ(s.key(), "shop/web");
  EXPECT_EQ(s.type, ServiceType::NodePort);
  EXPECT_EQ(s.clusterIPs, std::vector<IpAddr>{ip("198.19.0.5")});
  EXPECT_EQ(s.creationTimestamp, "2023-01-02T03:04:05Z");
  EXPECT_EQ(s.file, "m.yaml");
  EXPECT_EQ(s.object.get()["metadata"]["name"], "web");
  EXPECT_EQ(s.selector, (std::map<std::string, std::string>{{"app", "web"}}));
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].targetPortName, "http-alt");
  EXPECT_EQ(s.ports[0].nodePort, 30080);
  EXPECT_EQ(s.ports[1].protocol, Protocol::UDP);
  EXPECT_EQ(s.ports[1].targetPortNumber, 53);  // defaults to port

  ASSERT_EQ(m.pods.size(), 1u);
  const Pod& p = m.pods[0];
  EXPECT_EQ(p.key(), "shop/web-1");
  EXPECT_EQ(p.nodeName, "node-a");
  EXPECT_TRUE(p.hostNetwork);
  EXPECT_TRUE(p.ready);
  EXPECT_TRUE(p.deleting);
  EXPECT_EQ(p.phase, "Running");
  EXPECT_EQ(p.hostname, "h1");
  EXPECT_EQ(p.subdomain, "web");
  EXPECT_EQ(p.podIPs, (std::vector<IpAddr>{ip("10.0.0.1"), ip("fd00::1")}));
  ASSERT_EQ(p.ports.size(), 2u);
  EXPECT_EQ(p.ports[1].name, "dns");
  EXPECT_EQ(p.ports[1].containerPort, 5353);
  EXPECT_EQ(p.ports[1].protocol, Protocol::UDP);

  ASSERT_EQ(m.endpoints.size(), 1u);
  ASSERT_EQ(m.endpoints[0].subsets.size(), 1u);
  const EndpointSubset& sub = m.endpoints[0].subsets[0];
  ASSERT_EQ(sub.addresses.size(), 1u);
  EXPECT_EQ(sub.addresses[0].ip, ip("10.0.0.2"));
  EXPECT_EQ(sub.addresses[0].nodeName, "node-b");
  EXPECT_EQ(sub.addresses[0].hostname, "h2");
  EXPECT_EQ(sub.addresses[0].targetRef, "Pod shop/web-2");
  ASSERT_EQ(sub.notReadyAddresses.size(), 1u);
  ASSERT_EQ(sub.ports.size(), 1u);
  EXPECT_EQ(sub.ports[0].port, 8080);

  ASSERT_EQ(m.slices.size(), 1u);
  const EndpointSlice& sl = m.slices[0];
  EXPECT_EQ(sl.serviceName, "web");
  EXPECT_EQ(sl.addressType, "IPv4");
  ASSERT_EQ(sl.endpoints.size(), 2u);
  EXPECT_FALSE(sl.endpoints[0].ready);
  EXPECT_TRUE(sl.endpoints[0].serving);
  EXPECT_TRUE(sl.endpoints[0].terminating);
  EXPECT_EQ(sl.endpoints[0].targetRef, "Pod shop/web-4");
  EXPECT_TRUE(sl.endpoints[1].ready);  // nil conditions
  EXPECT_FALSE(sl.endpoints[1].terminating);
  ASSERT_EQ(sl.ports.size(), 1u);
  EXPECT_EQ(sl.ports[0].name, "http");

  ASSERT_EQ(m.nodes.size(), 1u);
  EXPECT_EQ(m.nodes[0].node.name, "node-a");
  EXPECT_EQ(m.nodes[0].node.addresses,
            (std::vector<IpAddr>{ip("192.168.1.10"), ip("203.0.113.10")}));
  EXPECT_FALSE(m.nodes[0].node.ready);
}

TEST(Manifest, JsonAndList) {
  std::string content = R"({
  "apiVersion": "v1", "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
     "spec": {"ports": [{"port": 80, "targetPort": "web"}]}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {}}
  ]})";
  Manifests m = parseOne(content, "list.json");
  EXPECT_EQ(errorStrings(m.errors),
            std::vector<std::string>{"list.json: document 1: items[2].metadata.name: is required"});
  ASSERT_EQ(m.services.size(), 1u);
  EXPECT_EQ(m.services[0].key(), "default/a");
  EXPECT_EQ(m.services[0].ports[0].targetPortName, "web");
  ASSERT_EQ(m.nodes.size(), 1u);
  EXPECT_TRUE(m.nodes[0].node.ready);  // no conditions = Ready
}

// A JSON List is read item by item (streamJsonList); the result must be
// the ordinary parse's: same objects (manifests included), errors, order,
// and duplicates found across files.
TEST(Manifest, StreamedListEqualsTheOrdinaryParse) {
  std::string items = R"([
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "labels": {"x": "y"}},
     "spec": {"ports": [{"port": 80, "targetPort": "web"}], "publishNotReadyAddresses": true}},
    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a"},
     "subsets": [{"addresses": [{"ip": "198.18.0.1", "nodeName": "n1"}, {"ip": "x"}],
                  "ports": [{"port": 8080}]}]},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "earlier"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}, "spec": {"ports": [{"port": 0}]}},
    5
  ])";
  std::string earlier = R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "earlier"},
                            "spec": {"ports": [{"port": 81}]}})";
  // "kind" after "items" is not streamed: the ordinary parse.
  Manifests streamed = parseManifests(
      {{"a.json", earlier}, {"b.json", R"({"apiVersion": "v1", "kind": "List", "items": )" + items + "}"}});
  Manifests ordinary = parseManifests(
      {{"a.json", earlier}, {"b.json", R"({"apiVersion": "v1", "items": )" + items + R"(, "kind": "List"})"}});
  EXPECT_EQ(errorStrings(streamed.errors), errorStrings(ordinary.errors));
  EXPECT_EQ(streamed.errors.size(), 5u) << errorsText(streamed.errors);
  ASSERT_EQ(streamed.services.size(), 2u);
  EXPECT_EQ(streamed.services, ordinary.services);
  EXPECT_EQ(streamed.services[1].object.get(), ordinary.services[1].object.get());
  EXPECT_TRUE(streamed.services[1].object.get()["spec"]["publishNotReadyAddresses"].get<bool>());
  EXPECT_EQ(streamed.endpoints, ordinary.endpoints);
  EXPECT_EQ(streamed.invalidServices, ordinary.invalidServices);
  EXPECT_EQ(streamed.invalidObjects, ordinary.invalidObjects);
  EXPECT_EQ(streamed.brokenFiles, ordinary.brokenFiles);
}

TEST(Manifest, NumericAndStringTargetPort) {
  Manifests m = parseOne(serviceYaml("a", "  ports:\n  - {name: x, port: 80, targetPort: 8080}\n"
                                          "  - {name: y, port: 81, targetPort: 0}\n"));
  EXPECT_EQ(errorsText(m.errors), "");
  ASSERT_EQ(m.services.size(), 1u);
  EXPECT_EQ(m.services[0].ports[0].targetPortNumber, 8080);
  EXPECT_EQ(m.services[0].ports[1].targetPortNumber, 81);
}

TEST(Manifest, SamePortDifferentProtocolIsFine) {
  Manifests m = parseOne(serviceYaml(
      "dns", "  ports:\n  - {name: a, port: 53}\n  - {name: b, port: 53, protocol: UDP}\n"));
  EXPECT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.size(), 1u);
}

TEST(Manifest, HeadlessAndExternalName) {
  Manifests m = parseManifests(
      {{"a.yaml", serviceYaml("h", "  clusterIP: None\n")},
       {"b.yaml", serviceYaml("e", "  type: ExternalName\n  externalName: db.example.com.\n")}});
  EXPECT_EQ(errorsText(m.errors), "");
  ASSERT_EQ(m.services.size(), 2u);
  EXPECT_TRUE(m.services[0].headless);
  EXPECT_TRUE(m.services[0].clusterIPs.empty());
  EXPECT_EQ(m.services[1].type, ServiceType::ExternalName);
  EXPECT_EQ(m.services[1].externalName, "db.example.com.");
}

struct ServiceErrorCase {
  const char* name;
  std::string spec;
  std::vector<std::string> errors;  // after "svc.yaml: Service default/web: "
};

class ServiceErrors : public ::testing::TestWithParam<ServiceErrorCase> {};

TEST_P(ServiceErrors, NameFileObjectAndField) {
  const auto& c = GetParam();
  Manifests m = parseOne(serviceYaml("web", c.spec), "svc.yaml");
  std::vector<std::string> want;
  for (const auto& e : c.errors) want.push_back("svc.yaml: Service default/web: " + e);
  EXPECT_EQ(errorStrings(m.errors), want);
  EXPECT_TRUE(m.services.empty());
  EXPECT_EQ(m.invalidServices, std::set<std::string>{"default/web"});
}

// Fields ferry does not implement yet are warnings naming file, object
// and field; the service is still used (without them).
TEST(ServiceWarnings, UnsupportedFieldsAreReportedNotSilent) {
  Manifests m = parseOne(serviceYaml("web",
                                     "  internalTrafficPolicy: Local\n"
                                     "  trafficDistribution: PreferFar\n"
                                     "  ipFamilies: [IPv4, IPv6]\n"
                                     "  ports:\n  - {name: a, port: 80}\n"
                                     "  - {name: s, port: 81, protocol: SCTP}\n"),
                         "svc.yaml");
  // ipFamilies [IPv4, IPv6] draws no warning: both families are served.
  std::vector<std::string> want = {
      "warning: svc.yaml: Service default/web: spec.ports[1].protocol: SCTP is not supported by "
      "ferry: port 81 (s)/SCTP is rejected and not served; the service's TCP and UDP ports are",
      "warning: svc.yaml: Service default/web: spec.trafficDistribution: unknown value "
      "\"PreferFar\" is ignored: must be PreferClose, PreferSameZone or PreferSameNode",
  };
  EXPECT_EQ(errorStrings(m.errors), want);
  for (const auto& e : m.errors) EXPECT_TRUE(e.warning()) << e.str();
  ASSERT_EQ(m.services.size(), 1u) << "the service is still programmed";
  EXPECT_TRUE(m.invalidServices.empty());
  ASSERT_EQ(m.services[0].ports.size(), 1u);
  EXPECT_EQ(m.services[0].ports[0].port, 80);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ServiceErrors,
    ::testing::Values(
        ServiceErrorCase{"PortRange", "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 70000}\n",
                         {"spec.ports[1].port: must be between 1 and 65535, got 70000"}},
        ServiceErrorCase{"PortMissing", "  ports:\n  - {name: a}\n",
                         {"spec.ports[0].port: is required"}},
        ServiceErrorCase{"PortString", "  ports:\n  - port: \"80\"\n",
                         {"spec.ports[0].port: must be an integer, got a string \"80\""}},
        ServiceErrorCase{"UnknownProtocol", "  ports:\n  - {port: 80, protocol: HTTP}\n",
                         {"spec.ports[0].protocol: unsupported protocol \"HTTP\": must be TCP or UDP"}},
        ServiceErrorCase{"UnnamedMultiPort", "  ports:\n  - {name: a, port: 80}\n  - {port: 81}\n",
                         {"spec.ports[1].name: is required when the service has more than one port"}},
        ServiceErrorCase{"DuplicateName", "  ports:\n  - {name: a, port: 80}\n  - {name: a, port: 81}\n",
                         {"spec.ports[1].name: duplicate port name \"a\" (also spec.ports[0])"}},
        ServiceErrorCase{"DuplicatePort", "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n",
                         {"spec.ports[1]: duplicate port 80/TCP (also spec.ports[0])"}},
        ServiceErrorCase{"BadTargetPortName", "  ports:\n  - {port: 80, targetPort: \"8080\"}\n",
                         {"spec.ports[0].targetPort: must contain at least one letter, got \"8080\""}},
        ServiceErrorCase{"TargetPortRange", "  ports:\n  - {port: 80, targetPort: 65536}\n",
                         {"spec.ports[0].targetPort: must be between 1 and 65535, got 65536"}},
        ServiceErrorCase{"BadType", "  type: Foo\n  ports: [{port: 80}]\n",
                         {"spec.type: unsupported type \"Foo\": must be ClusterIP, NodePort, "
                          "LoadBalancer or ExternalName"}},
        ServiceErrorCase{"BadClusterIP", "  clusterIP: 10.0.0.300\n  ports: [{port: 80}]\n",
                         {"spec.clusterIP: must be a valid IP address or \"None\", got \"10.0.0.300\""}},
        ServiceErrorCase{"ClusterIPsMismatch",
                         "  clusterIP: 198.19.0.1\n  clusterIPs: [198.19.0.2]\n  ports: [{port: 80}]\n",
                         {"spec.clusterIPs[0]: must match spec.clusterIP \"198.19.0.1\", got \"198.19.0.2\""}},
        ServiceErrorCase{"NoExternalName", "  type: ExternalName\n",
                         {"spec.externalName: is required for type ExternalName"}},
        ServiceErrorCase{"NodePortOnClusterIP", "  ports:\n  - {port: 80, nodePort: 30000}\n",
                         {"spec.ports[0].nodePort: may not be used when type is 'ClusterIP'"}},
        ServiceErrorCase{"HeadlessNodePort", "  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n",
                         {"spec.clusterIP: may not be \"None\" for type NodePort"}},
        ServiceErrorCase{"NoPorts", "  selector: {app: web}\n",
                         {"spec.ports: must have at least one port"}},
        ServiceErrorCase{"SelectorNotString", "  selector: {app: 1}\n  ports: [{port: 80}]\n",
                         {"spec.selector.app: must be a string (quote it), got 1"}},
        ServiceErrorCase{"PortsNotAList", "  ports: 80\n",
                         {"spec.ports: must be a list, got a number 80",
                          "spec.ports: must have at least one port"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Manifest, IdentityErrors) {
  std::string content = "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 80}]}\n"
                        "---\napiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n"
                        "---\nkind: Pod\nmetadata: {name: p}\n"
                        "---\napiVersion: v1\nmetadata: {name: p}\n"
                        "---\n- just\n- a list\n"
                        "---\napiVersion: v2\nkind: Service\nmetadata: {name: web}\n"
                        "---\napiVersion: v1\nkind: Service\nmetadata: {name: Web}\nspec: {ports: [{port: 80}]}\n";
  Manifests m = parseOne(content, "f.yaml");
  EXPECT_EQ(errorStrings(m.errors),
            (std::vector<std::string>{
                "f.yaml: document 2: metadata.name: is required",
                "f.yaml: document 3: apiVersion: is required",
                "f.yaml: document 4: kind: is required",
                "f.yaml: document 5: must be a Kubernetes object (a mapping), got [\"just\",\"a list\"]",
                "f.yaml: Service default/web: apiVersion: unsupported apiVersion \"v2\" for kind "
                "Service: must be v1",
                "f.yaml: Service default/Web: metadata.name: must consist of lower case "
                "alphanumeric characters or '-', got \"Web\"",
            }));
  ASSERT_EQ(m.services.size(), 1u);
  EXPECT_EQ(m.services[0].name, "ok");
  EXPECT_EQ(m.invalidServices, (std::set<std::string>{"default/Web", "default/web"}));
  EXPECT_EQ(m.brokenFiles, std::set<std::string>{"f.yaml"});
}

TEST(Manifest, BadDocumentNextToGoodOnes) {
  std::string content = serviceYaml("a", "  ports: [{port: 80}]\n") + "---\nkind: [unclosed\n---\n" +
                        serviceYaml("b", "  ports: [{port: 81}]\n");
  Manifests m = parseOne(content, "f.yaml");
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_EQ(m.errors[0].file, "f.yaml");
  EXPECT_EQ(m.errors[0].object, "document 2");
  EXPECT_EQ(m.errors[0].message.rfind("invalid YAML at line 10", 0), 0u) << m.errors[0].message;
  ASSERT_EQ(m.services.size(), 2u);
  EXPECT_EQ(m.services[0].name, "a");
  EXPECT_EQ(m.services[1].name, "b");
}

TEST(Manifest, DuplicateObjectKeepsFirstFileByPath) {
  Manifests m = parseManifests({{"b.yaml", serviceYaml("web", "  ports: [{port: 81}]\n")},
                                {"a.yaml", serviceYaml("web", "  ports: [{port: 80}]\n")}});
  EXPECT_EQ(errorStrings(m.errors),
            std::vector<std::string>{"b.yaml: Service default/web: metadata.name: duplicate "
                                     "Service default/web, already defined in a.yaml (that "
                                     "definition is used)"});
  ASSERT_EQ(m.services.size(), 1u);
  EXPECT_EQ(m.services[0].file, "a.yaml");
  EXPECT_EQ(m.services[0].ports[0].port, 80);
}

TEST(Manifest, SameNameDifferentKindOrNamespaceIsNotADuplicate) {
  Manifests m = parseOne(serviceYaml("web", "  ports: [{port: 80}]\n") + "---\n" +
                         serviceYaml("web", "  ports: [{port: 80}]\n", "other") +
                         "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n");
  EXPECT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.size(), 2u);
  EXPECT_EQ(m.endpoints.size(), 1u);
}

// Issue 11: an invalid object is excluded as a whole, never half-applied
// (its last good version is the object store's business, file_tracker.h).
TEST(Manifest, InvalidEndpointObjectsAreExcludedWhole) {
  std::string content = R"(apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: bogus}, {nodeName: x}]
  ports: [{port: 80}, {port: 0}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: ["fd00::1"]
- addresses: [10.0.0.9]
  conditions: {ready: "yes"}
ports: [{port: 80, protocol: SCTP}]
)";
  Manifests m = parseOne(content, "e.yaml");
  EXPECT_EQ(errorStrings(m.errors),
            (std::vector<std::string>{
                "e.yaml: Endpoints default/web: subsets[0].addresses[1].ip: must be a valid IP "
                "address, got \"bogus\"",
                "e.yaml: Endpoints default/web: subsets[0].addresses[2].ip: is required",
                "e.yaml: Endpoints default/web: subsets[0].ports[1].port: must be between 1 and "
                "65535, got 0",
                "e.yaml: EndpointSlice default/web-1: ports[0].protocol: protocol SCTP is not "
                "supported by ferry",
                "e.yaml: EndpointSlice default/web-1: endpoints[0].addresses[0]: must be an IPv4 "
                "address (addressType), got \"fd00::1\"",
                "e.yaml: EndpointSlice default/web-1: endpoints[1].conditions.ready: must be true "
                "or false, got a string \"yes\"",
            }));
  EXPECT_TRUE(m.endpoints.empty());
  EXPECT_TRUE(m.slices.empty());
  EXPECT_EQ(m.invalidObjects,
            (std::set<std::string>{"Endpoints default/web", "EndpointSlice default/web-1"}));
}

TEST(Manifest, ExampleFilesParseCleanly) {
  for (const char* name : {"web.yaml", "endpoints.json"}) {
    std::string path = std::string(FERRY_SOURCE_DIR) + "/tests/model/testdata/" + name;
    FILE* f = fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr) << path;
    std::string content;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) content.append(buf, n);
    fclose(f);
    Manifests m = parseOne(content, name);
    EXPECT_EQ(errorsText(m.errors), "") << name;
    EXPECT_FALSE(m.services.empty()) << name;
  }
}

}  // namespace
}  // namespace ferry
