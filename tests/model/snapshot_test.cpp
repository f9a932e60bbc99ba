#include <gtest/gtest.h>

#include "model/snapshot.h"

namespace ferry {

TEST(Snapshot, Names) {
  EXPECT_STREQ(protocolName(Protocol::TCP), "TCP");
  EXPECT_STREQ(protocolName(Protocol::UDP), "UDP");
  EXPECT_STREQ(protocolName(Protocol::SCTP), "SCTP");
  EXPECT_STREQ(serviceTypeName(ServiceType::ClusterIP), "ClusterIP");
  EXPECT_STREQ(serviceTypeName(ServiceType::NodePort), "NodePort");
  EXPECT_STREQ(serviceTypeName(ServiceType::LoadBalancer), "LoadBalancer");
  EXPECT_STREQ(serviceTypeName(ServiceType::ExternalName), "ExternalName");
}

TEST(Snapshot, ManifestErrorStr) {
  ManifestError e{"a.yaml", "Service default/web", "spec.ports[1].port", "bad"};
  EXPECT_EQ(e.str(), "a.yaml: Service default/web: spec.ports[1].port: bad");
  EXPECT_EQ((ManifestError{"a.yaml", "document 2", "", "bad"}).str(), "a.yaml: document 2: bad");
  EXPECT_EQ((ManifestError{"", "", "", "bad"}).str(), "bad");
}

TEST(Snapshot, ServiceEqualityIgnoresObject) {
  Service a;
  a.ns = "default";
  a.name = "web";
  a.ports.push_back({});
  Service b = a;
  b.object = nlohmann::json{{"x", 1}};
  EXPECT_TRUE(a == b);
  b.ports[0].port = 80;
  EXPECT_FALSE(a == b);
  b = a;
  b.clusterIPs.push_back(IpAddr::fromV4(1));
  EXPECT_FALSE(a == b);
}

}  // namespace ferry
