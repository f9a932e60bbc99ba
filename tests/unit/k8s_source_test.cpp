// KubeObjectTracker: Kubernetes API objects -> object store events (issue 13).
#include <gtest/gtest.h>

#include "agent/k8s_source.h"

namespace ferry {
namespace {

using nlohmann::json;

k8s::ObjectEvent ev(k8s::ObjectEvent::Type t, json obj) {
  k8s::ObjectEvent e;
  e.type = t;
  e.apiVersion = obj["apiVersion"];
  e.kind = obj["kind"];
  e.ns = obj["metadata"].value("namespace", "");
  e.name = obj["metadata"]["name"];
  e.resourceVersion = obj["metadata"].value("resourceVersion", "1");
  e.object = std::move(obj);
  return e;
}

json service(const std::string& name, json labels = json::object(), json extra = json::object()) {
  json s = {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata",
             {{"name", name}, {"namespace", "default"}, {"resourceVersion", "5"},
              {"uid", "u-1"}, {"labels", labels}, {"managedFields", json::array()}}},
            {"spec",
             {{"type", "ClusterIP"},
              {"clusterIP", "198.19.0.20"},
              {"clusterIPs", {"198.19.0.20"}},
              {"ipFamilies", {"IPv4"}},
              {"ipFamilyPolicy", "SingleStack"},
              {"sessionAffinity", "None"},
              {"internalTrafficPolicy", "Cluster"},
              {"selector", {{"app", "web"}}},
              {"ports", {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}}}}}},
            {"status", {{"loadBalancer", json::object()}}}};
  for (auto& [k, v] : extra.items()) s["spec"][k] = v;
  return s;
}

const Service& serviceOf(const ObjectEvent& e) { return std::get<Service>(*e.object); }

TEST(KubeObjectTracker, ServiceAsTheApiserverSendsItBecomesOneAddedEvent) {
  KubeObjectTracker t;
  SourceUpdate u;
  t.apply(ev(k8s::ObjectEvent::Added, service("web")), &u);
  ASSERT_EQ(u.events.size(), 1u) << (u.errors.empty() ? "" : u.errors.begin()->second.front().str());
  EXPECT_EQ(u.events[0].type, ObjectEvent::Type::Added);
  EXPECT_EQ(u.events[0].key.str(), "Service default/web");
  EXPECT_EQ(serviceOf(u.events[0]).clusterIPs.at(0).str(), "198.19.0.20");
  EXPECT_EQ(u.events[0].resourceVersion, "5");
  EXPECT_TRUE(u.errors.empty());
  // The same object again (a relist, a resourceVersion-only change): no event.
  SourceUpdate again;
  json same = service("web");
  same["metadata"]["resourceVersion"] = "9";
  t.apply(ev(k8s::ObjectEvent::Modified, same), &again);
  EXPECT_TRUE(again.events.empty());
  SourceUpdate del;
  t.apply(ev(k8s::ObjectEvent::Deleted, service("web")), &del);
  ASSERT_EQ(del.events.size(), 1u);
  EXPECT_EQ(del.events[0].type, ObjectEvent::Type::Deleted);
}

TEST(KubeObjectTracker, InvalidNewVersionKeepsTheLastGoodAndReportsTheApiPath) {
  KubeObjectTracker t;
  SourceUpdate u;
  t.apply(ev(k8s::ObjectEvent::Added, service("web")), &u);
  json bad = service("web");
  bad["spec"]["ports"][0]["port"] = 70000;
  SourceUpdate b;
  t.apply(ev(k8s::ObjectEvent::Modified, bad), &b);
  EXPECT_TRUE(b.events.empty());  // the last good version stays
  ASSERT_EQ(b.errors.count("/api/v1/namespaces/default/services/web"), 1u);
  EXPECT_FALSE(b.errors.begin()->second.empty());
  SourceUpdate fixed;
  json good = service("web");
  good["spec"]["ports"][0]["port"] = 81;
  t.apply(ev(k8s::ObjectEvent::Modified, good), &fixed);
  ASSERT_EQ(fixed.events.size(), 1u);
  EXPECT_EQ(fixed.events[0].type, ObjectEvent::Type::Modified);
  ASSERT_EQ(fixed.errors.size(), 1u);
  EXPECT_TRUE(fixed.errors.begin()->second.empty());  // cleared
  // A new invalid object keeps its name taken.
  SourceUpdate inv;
  json other = bad;
  other["metadata"]["name"] = "other";
  t.apply(ev(k8s::ObjectEvent::Added, other), &inv);
  ASSERT_EQ(inv.events.size(), 1u);
  EXPECT_EQ(inv.events[0].type, ObjectEvent::Type::Invalid);
}

TEST(KubeObjectTracker, ServiceProxyNameLabelSkipsOtherProxiesServices) {
  KubeObjectTracker plain;
  SourceUpdate u;
  plain.apply(ev(k8s::ObjectEvent::Added,
                 service("web", {{"service.kubernetes.io/service-proxy-name", "ferry"}})),
              &u);
  EXPECT_TRUE(u.events.empty()) << "kube-proxy's rule: a labelled service is another proxy's";
  KubernetesSourceOptions o;
  o.serviceProxyName = "ferry";
  KubeObjectTracker named(o);
  named.apply(ev(k8s::ObjectEvent::Added,
                 service("web", {{"service.kubernetes.io/service-proxy-name", "ferry"}})),
              &u);
  ASSERT_EQ(u.events.size(), 1u);
  // Relabelled to another proxy: as if deleted.
  SourceUpdate r;
  named.apply(ev(k8s::ObjectEvent::Modified,
                 service("web", {{"service.kubernetes.io/service-proxy-name", "cilium"}})),
              &r);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].type, ObjectEvent::Type::Deleted);
}

TEST(KubeObjectTracker, HeadlessLabelServesTheServiceHeadless) {
  KubeObjectTracker t;
  SourceUpdate u;
  t.apply(ev(k8s::ObjectEvent::Added, service("web", {{"service.kubernetes.io/headless", ""}})), &u);
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_TRUE(serviceOf(u.events[0]).headless);
  EXPECT_TRUE(serviceOf(u.events[0]).clusterIPs.empty());
}

TEST(KubeObjectTracker, LoadBalancerClassOfAnotherImplementationIsLeftAlone) {
  KubeObjectTracker t;
  SourceUpdate u;
  json lb = service("lb", json::object(), {{"type", "LoadBalancer"}, {"loadBalancerClass", "other.io/lb"}});
  lb["spec"]["ports"][0]["nodePort"] = 30080;
  t.apply(ev(k8s::ObjectEvent::Added, lb), &u);
  ASSERT_EQ(u.events.size(), 1u) << (u.errors.empty() ? "" : u.errors.begin()->second.front().str());
  EXPECT_TRUE(serviceOf(u.events[0]).loadBalancerIgnored);
  json mine = service("mine", json::object(), {{"type", "LoadBalancer"}});
  mine["spec"]["ports"][0]["nodePort"] = 30081;
  t.apply(ev(k8s::ObjectEvent::Added, mine), &u);
  ASSERT_EQ(u.events.size(), 2u);
  EXPECT_FALSE(serviceOf(u.events[1]).loadBalancerIgnored);
}

TEST(KubeObjectTracker, EndpointSliceNodeAndServiceCidr) {
  KubeObjectTracker t;
  SourceUpdate u;
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata",
                 {{"name", "web-abc"}, {"namespace", "default"},
                  {"labels", {{"kubernetes.io/service-name", "web"}}}}},
                {"addressType", "IPv4"},
                {"endpoints",
                 {{{"addresses", {"198.18.129.2"}},
                   {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                   {"nodeName", "node1"}}}},
                {"ports", {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}}};
  t.apply(ev(k8s::ObjectEvent::Added, slice), &u);
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", "node1"}}},
               {"status",
                {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                 {"addresses", {{{"type", "InternalIP"}, {"address", "198.18.0.11"}}}}}}};
  t.apply(ev(k8s::ObjectEvent::Added, node), &u);
  ASSERT_EQ(u.events.size(), 2u) << (u.errors.empty() ? "" : u.errors.begin()->second.front().str());
  EXPECT_EQ(u.events[0].key.str(), "EndpointSlice default/web-abc");
  EXPECT_EQ(u.events[1].key.str(), "Node node1");
  json cidr = {{"apiVersion", "networking.k8s.io/v1"},
               {"kind", "ServiceCIDR"},
               {"metadata", {{"name", "kubernetes"}}},
               {"spec", {{"cidrs", {"198.19.0.0/16", "2001:db8:ffff::/112"}}}}};
  t.apply(ev(k8s::ObjectEvent::Added, cidr), &u);
  EXPECT_EQ(u.events.size(), 2u);  // not a store object
  ASSERT_EQ(t.serviceCidrs().at("kubernetes").size(), 2u);
  EXPECT_EQ(t.serviceCidrs().at("kubernetes")[0].str(), "198.19.0.0/16");
}

}  // namespace
}  // namespace ferry
