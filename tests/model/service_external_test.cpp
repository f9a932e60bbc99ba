// Parsing of the Service fields about external traffic: traffic policy,
// health check node port, external IPs, LoadBalancer settings.
#include <gtest/gtest.h>

#include "model/manifest.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::cidr;
using test::errorStrings;
using test::errorsText;
using test::ip;
using test::serviceYaml;

Manifests parseSpec(const std::string& spec, const std::string& meta = "") {
  std::string yaml = serviceYaml("web", spec);
  if (!meta.empty()) yaml.replace(yaml.find("spec:"), 0, meta);
  return parseManifests({{"m.yaml", yaml}});
}

const Service& only(const Manifests& m) {
  EXPECT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.size(), 1u);
  return m.services.at(0);
}

TEST(ServiceExternal, Defaults) {
  Manifests m = parseSpec("  type: LoadBalancer\n  ports: [{port: 80}]\n");
  const Service& s = only(m);
  EXPECT_FALSE(s.externalTrafficLocal);
  EXPECT_EQ(s.healthCheckNodePort, 0);
  EXPECT_TRUE(s.externalIPs.empty());
  EXPECT_TRUE(s.allocateLoadBalancerNodePorts);
  EXPECT_FALSE(s.loadBalancerIP.has_value());
  EXPECT_TRUE(s.loadBalancerSourceRanges.empty());
  EXPECT_TRUE(s.annotations.empty());
}

TEST(ServiceExternal, NodePortFields) {
  Manifests m = parseSpec(
      "  type: NodePort\n  externalTrafficPolicy: Local\n"
      "  externalIPs: [203.0.113.7, \"2001:db8::7\"]\n"
      "  ports: [{port: 80, nodePort: 30080}]\n",
      "  annotations: {team: shop, note: null}\n");
  const Service& s = only(m);
  EXPECT_TRUE(s.externalTrafficLocal);
  EXPECT_EQ(s.externalIPs, (std::vector<IpAddr>{ip("203.0.113.7"), ip("2001:db8::7")}));
  EXPECT_EQ(s.ports[0].nodePort, 30080);
  EXPECT_EQ(s.annotations, (std::map<std::string, std::string>{{"note", ""}, {"team", "shop"}}));
}

TEST(ServiceExternal, LoadBalancerFields) {
  Manifests m = parseSpec(
      "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 31999\n"
      "  allocateLoadBalancerNodePorts: false\n  loadBalancerIP: 192.0.2.10\n"
      "  loadBalancerSourceRanges: [10.0.0.0/8, \" 192.168.1.7/24 \", \"2001:db8::/32\"]\n"
      "  ports: [{port: 80}]\n");
  const Service& s = only(m);
  EXPECT_TRUE(s.externalTrafficLocal);
  EXPECT_EQ(s.healthCheckNodePort, 31999);
  EXPECT_FALSE(s.allocateLoadBalancerNodePorts);
  EXPECT_EQ(s.loadBalancerIP, ip("192.0.2.10"));
  // Host bits are cleared, as the apiserver's CIDR parsing does.
  EXPECT_EQ(s.loadBalancerSourceRanges,
            (std::vector<IpPrefix>{cidr("10.0.0.0/8"), cidr("192.168.1.0/24"), cidr("2001:db8::/32")}));
}

TEST(ServiceExternal, GlobalIsTheOldNameOfCluster) {
  // The Manifests must outlive the reference (ASan found the temporary).
  Manifests global = parseSpec("  type: NodePort\n  externalTrafficPolicy: Global\n  ports: [{port: 80}]\n");
  EXPECT_FALSE(only(global).externalTrafficLocal);
  Manifests m = parseSpec("  type: NodePort\n  externalTrafficPolicy: Cluster\n  ports: [{port: 80}]\n");
  EXPECT_FALSE(only(m).externalTrafficLocal);
}

// As after a type change in the apiserver, the policy of a service that is
// not externally accessible is dropped rather than rejected.
TEST(ServiceExternal, TrafficPolicyAppliesOnlyToExternallyAccessibleServices) {
  Manifests plain = parseSpec("  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n");
  EXPECT_FALSE(only(plain).externalTrafficLocal);
  EXPECT_FALSE(only(plain).externallyAccessible());
  Manifests withIPs = parseSpec(
      "  externalTrafficPolicy: Local\n  externalIPs: [203.0.113.7]\n  ports: [{port: 80}]\n");
  EXPECT_TRUE(only(withIPs).externalTrafficLocal);
  EXPECT_TRUE(only(withIPs).externallyAccessible());
}

TEST(ServiceExternal, SameNodePortForTcpAndUdp) {
  Manifests m = parseSpec(
      "  type: NodePort\n  ports:\n  - {name: dns-tcp, port: 53, nodePort: 30053}\n"
      "  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}\n");
  const Service& s = only(m);
  EXPECT_EQ(s.ports[0].nodePort, 30053);
  EXPECT_EQ(s.ports[1].nodePort, 30053);
}

TEST(ServiceExternal, NodePortZeroMeansDynamic) {
  Manifests m = parseSpec("  type: NodePort\n  ports: [{port: 80, nodePort: 0}]\n");
  EXPECT_EQ(only(m).ports[0].nodePort, 0);
}

TEST(ServiceExternal, NewFieldsTakePartInEquality) {
  Service a = only(parseSpec("  type: NodePort\n  ports: [{port: 80}]\n"));
  for (const char* spec :
       {"  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
        "  type: NodePort\n  externalIPs: [203.0.113.7]\n  ports: [{port: 80}]\n"}) {
    Service b = only(parseSpec(spec));
    EXPECT_FALSE(a == b) << spec;
  }
  Service b = a;
  b.healthCheckNodePort = 31000;
  EXPECT_FALSE(a == b);
  b = a;
  b.annotations["x"] = "y";
  EXPECT_FALSE(a == b);
  b = a;
  b.loadBalancerSourceRanges.push_back(cidr("10.0.0.0/8"));
  EXPECT_FALSE(a == b);
  b = a;
  b.loadBalancerIP = ip("192.0.2.1");
  EXPECT_FALSE(a == b);
  b = a;
  b.allocateLoadBalancerNodePorts = false;
  EXPECT_FALSE(a == b);
}

struct ErrorCase {
  const char* name;
  std::string spec;
  std::vector<std::string> errors;  // without "m.yaml: Service default/web: "
  std::string meta = "";
};

class ExternalErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ExternalErrors, Reported) {
  const ErrorCase& c = GetParam();
  Manifests m = parseSpec(c.spec, c.meta);
  std::vector<std::string> want;
  for (const auto& e : c.errors) want.push_back("m.yaml: Service default/web: " + e);
  EXPECT_EQ(errorStrings(m.errors), want);
  EXPECT_TRUE(m.services.empty());
  EXPECT_EQ(m.invalidServices, std::set<std::string>{"default/web"});
}

const std::string kNp = "  type: NodePort\n  ports: [{port: 80}]\n";
const std::string kLb = "  type: LoadBalancer\n  ports: [{port: 80}]\n";

INSTANTIATE_TEST_SUITE_P(
    Table, ExternalErrors,
    ::testing::Values(
        ErrorCase{"BadPolicy", kNp + "  externalTrafficPolicy: Foo\n",
                  {"spec.externalTrafficPolicy: unsupported value \"Foo\": must be Cluster or Local"}},
        ErrorCase{"PolicyNotString", kNp + "  externalTrafficPolicy: 1\n",
                  {"spec.externalTrafficPolicy: must be a string, got a number 1"}},
        ErrorCase{"HealthCheckOnNodePort", kNp + "  externalTrafficPolicy: Local\n  healthCheckNodePort: 31000\n",
                  {"spec.healthCheckNodePort: may only be set when type is 'LoadBalancer' and "
                   "externalTrafficPolicy is 'Local'"}},
        ErrorCase{"HealthCheckWithClusterPolicy", kLb + "  healthCheckNodePort: 31000\n",
                  {"spec.healthCheckNodePort: may only be set when type is 'LoadBalancer' and "
                   "externalTrafficPolicy is 'Local'"}},
        ErrorCase{"HealthCheckRange", kLb + "  externalTrafficPolicy: Local\n  healthCheckNodePort: 70000\n",
                  {"spec.healthCheckNodePort: must be between 1 and 65535, got 70000"}},
        ErrorCase{"HealthCheckNotInt", kLb + "  externalTrafficPolicy: Local\n  healthCheckNodePort: x\n",
                  {"spec.healthCheckNodePort: must be an integer, got a string \"x\""}},
        ErrorCase{"BadExternalIP", kNp + "  externalIPs: [203.0.113.7, 1.2.3]\n",
                  {"spec.externalIPs[1]: must be a valid IP address, got \"1.2.3\""}},
        ErrorCase{"ExternalIPNotString", kNp + "  externalIPs: [5]\n",
                  {"spec.externalIPs[0]: must be a valid IP address, got 5"}},
        ErrorCase{"ExternalIPsNotList", kNp + "  externalIPs: 203.0.113.7\n",
                  {"spec.externalIPs: must be a list, got a string \"203.0.113.7\""}},
        ErrorCase{"ExternalIPLoopback", kNp + "  externalIPs: [127.0.0.1, \"::1\"]\n",
                  {"spec.externalIPs[0]: may not be in the loopback range (127.0.0.0/8, ::1/128), got \"127.0.0.1\"",
                   "spec.externalIPs[1]: may not be in the loopback range (127.0.0.0/8, ::1/128), got \"::1\""}},
        ErrorCase{"ExternalIPSpecial", kNp + "  externalIPs: [0.0.0.0, 169.254.1.1, 224.0.0.5]\n",
                  {"spec.externalIPs[0]: may not be unspecified (0.0.0.0, ::), got \"0.0.0.0\"",
                   "spec.externalIPs[1]: may not be in the link-local range (169.254.0.0/16, fe80::/10), "
                   "got \"169.254.1.1\"",
                   "spec.externalIPs[2]: may not be in the link-local multicast range (224.0.0.0/24, "
                   "ff02::/16), got \"224.0.0.5\""}},
        ErrorCase{"AllocateOnNodePort", kNp + "  allocateLoadBalancerNodePorts: false\n",
                  {"spec.allocateLoadBalancerNodePorts: may only be used when type is 'LoadBalancer'"}},
        ErrorCase{"AllocateNotBool", kLb + "  allocateLoadBalancerNodePorts: \"no\"\n",
                  {"spec.allocateLoadBalancerNodePorts: must be true or false, got a string \"no\""}},
        ErrorCase{"BadLoadBalancerIP", kLb + "  loadBalancerIP: 1.2.3.400\n",
                  {"spec.loadBalancerIP: must be a valid IP address, got \"1.2.3.400\""}},
        ErrorCase{"BadSourceRange", kLb + "  loadBalancerSourceRanges: [10.0.0.0/8, 10.0.0.0, 7]\n",
                  {"spec.loadBalancerSourceRanges[1]: must be a CIDR such as 10.240.0.0/24, got \"10.0.0.0\"",
                   "spec.loadBalancerSourceRanges[2]: must be a CIDR such as 10.240.0.0/24, got 7"}},
        ErrorCase{"SourceRangesOnNodePort", kNp + "  loadBalancerSourceRanges: [10.0.0.0/8]\n",
                  {"spec.loadBalancerSourceRanges: may only be used when type is 'LoadBalancer'"}},
        ErrorCase{"DuplicateNodePort",
                  "  type: NodePort\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n"
                  "  - {name: b, port: 81, nodePort: 30080}\n",
                  {"spec.ports[1].nodePort: duplicate nodePort 30080/TCP (also spec.ports[0].nodePort)"}},
        ErrorCase{"NodePortRange", "  type: NodePort\n  ports: [{port: 80, nodePort: 65536}]\n",
                  {"spec.ports[0].nodePort: must be between 1 and 65535, got 65536"}},
        ErrorCase{"AnnotationNotString", kNp, {"metadata.annotations.replicas: must be a string (quote it), got 3"},
                  "  annotations: {replicas: 3}\n"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ferry
