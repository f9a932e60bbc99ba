// The service CIDRs changed while the model runs (Kubernetes mode: the
// ServiceCIDR objects, networking.k8s.io/v1): every live service is checked
// again against them, with the same answer a full build gives.
#include <gtest/gtest.h>

#include "model/cluster_model.h"
#include "model/file_tracker.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::docs;
using test::serviceYaml;

TEST(ServiceCidrChange, ServiceOutsideTheCidrsIsServedOnceACidrCoversIt) {
  MemoryAllocationStore store;
  ClusterModel model(test::options("198.19.0.0/16"), store);
  FileTracker tracker;
  std::string outside = serviceYaml("out", "  clusterIP: 198.18.96.10\n  ports: [{port: 80}]\n");
  std::string inside = serviceYaml("in", "  clusterIP: 198.19.0.10\n  ports: [{port: 80}]\n");
  model.apply(tracker.apply({{"m.yaml", docs({outside, inside})}}));
  EXPECT_FALSE(model.snapshot().services.count("default/out"));
  ASSERT_TRUE(model.snapshot().services.count("default/in"));
  std::string errs = test::errorsText(model.snapshot().errors);
  EXPECT_NE(errs.find("default/out"), std::string::npos) << errs;

  ChangeSet cs = model.setServiceCidrs(
      {*IpPrefix::parse("198.19.0.0/16"), *IpPrefix::parse("198.18.96.0/24")});
  EXPECT_EQ(cs.services, std::set<std::string>{"default/out"});
  ASSERT_TRUE(model.snapshot().services.count("default/out"));
  EXPECT_EQ(model.snapshot().services.at("default/out").clusterIPs.at(0).str(), "198.18.96.10");
  EXPECT_EQ(test::errorsText(model.snapshot().errors), "");
  EXPECT_TRUE(model.verify().empty());

  // The same CIDRs again: nothing to do.
  cs = model.setServiceCidrs(
      {*IpPrefix::parse("198.19.0.0/16"), *IpPrefix::parse("198.18.96.0/24")});
  EXPECT_TRUE(cs.services.empty());
  EXPECT_FALSE(cs.allocated);

  // The CIDR gone again: the service is reported, its last good
  // programming stays (a Kubernetes ServiceCIDR in use cannot be deleted).
  cs = model.setServiceCidrs({*IpPrefix::parse("198.19.0.0/16")});
  ASSERT_TRUE(model.snapshot().services.count("default/out"));
  errs = test::errorsText(model.snapshot().errors);
  EXPECT_NE(errs.find("default/out"), std::string::npos) << errs;
  EXPECT_TRUE(model.verify().empty());
}

}  // namespace
}  // namespace ferry
