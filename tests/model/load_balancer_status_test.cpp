// LoadBalancer addresses seeded from the stored status.loadBalancer.ingress
// (Kubernetes mode, load_balancer.h step 2b): a node whose record starts
// empty (a restart) arrives at the assignment the long-running nodes hold,
// even after deletions changed the ns/name order; status conflicts resolve
// by creationTimestamp, then ns/name, and are reported.
#include <gtest/gtest.h>

#include "lb_test_util.h"
#include "model/cluster_model.h"
#include "model/file_tracker.h"
#include "model/load_balancer.h"

namespace ferry {
namespace {

using test::docs;
using test::errorsText;
using test::poolYaml;

const std::string kPool = poolYaml("default-pool", "[198.18.0.200/29]");

// A LoadBalancer service created at `created` whose stored status names
// `status` (a YAML flow list of addresses, "" = no status).
std::string lbWithStatus(const std::string& name, const std::string& created,
                         const std::string& status, const std::string& extra = "") {
  std::string out = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                    "\n  creationTimestamp: \"" + created +
                    "\"\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n" + extra;
  if (!status.empty()) out += "status:\n  loadBalancer:\n    ingress: " + status + "\n";
  return out;
}

struct Node {
  MemoryAllocationStore store;
  BuildOptions opts = test::options();
  ClusterSnapshot snap;
  explicit Node(bool fromStatus = true) { opts.loadBalancerFromStatus = fromStatus; }
  ClusterSnapshot& run(const std::vector<std::string>& objects) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot({{"m.yaml", docs(objects)}}, opts, store, &prev);
    return snap;
  }
  std::string lb(const std::string& name) const {
    const Service& s = snap.services.at("default/" + name);
    if (!s.loadBalancerPending.empty()) return "pending: " + s.loadBalancerPending;
    std::string out;
    for (const auto& a : s.loadBalancerIngress) out += (out.empty() ? "" : ",") + a.str();
    return out;
  }
};

const char kT1[] = "2026-11-30T01:00:00Z";
const char kT2[] = "2026-11-30T02:00:00Z";
const char kT3[] = "2026-11-30T03:00:00Z";

TEST(LoadBalancerStatus, RestartedNodeKeepsStoredAddressAfterDeletion) {
  // The long-running node: a, b, c get .200, .201, .202, which the status
  // writer stores; then a is deleted.
  Node longRunning;
  longRunning.run({kPool, lbWithStatus("a", kT1, ""), lbWithStatus("b", kT2, ""),
                   lbWithStatus("c", kT3, "")});
  ASSERT_EQ(longRunning.lb("a"), "198.18.0.200");
  ASSERT_EQ(longRunning.lb("b"), "198.18.0.201");
  ASSERT_EQ(longRunning.lb("c"), "198.18.0.202");
  std::vector<std::string> after = {kPool, lbWithStatus("b", kT2, "[{ip: 198.18.0.201}]"),
                                    lbWithStatus("c", kT3, "[{ip: 198.18.0.202}]")};
  longRunning.run(after);
  EXPECT_EQ(longRunning.lb("b"), "198.18.0.201");
  EXPECT_EQ(longRunning.lb("c"), "198.18.0.202");

  // A restarted node (empty record) agrees: without the status, b would
  // get .200 (the first free address in ns/name order).
  Node restarted;
  restarted.run(after);
  EXPECT_EQ(errorsText(restarted.snap.errors), "");
  EXPECT_EQ(restarted.lb("b"), "198.18.0.201");
  EXPECT_EQ(restarted.lb("c"), "198.18.0.202");
  EXPECT_EQ(restarted.store.record, longRunning.store.record);

  // The directory mode reads its record file, never the status.
  Node directory(false);
  directory.run(after);
  EXPECT_EQ(directory.lb("b"), "198.18.0.200");
}

TEST(LoadBalancerStatus, ConflictGoesToTheOlderServiceAndIsReported) {
  // z is older than a: it keeps .203 although a sorts first by name.
  std::vector<std::string> objs = {kPool, lbWithStatus("a", kT2, "[{ip: 198.18.0.203}]"),
                                   lbWithStatus("z", kT1, "[{ip: 198.18.0.203}]")};
  Node n;
  n.run(objs);
  EXPECT_EQ(n.lb("z"), "198.18.0.203");
  EXPECT_EQ(n.lb("a"), "198.18.0.200");
  std::string errs = errorsText(n.snap.errors);
  EXPECT_NE(errs.find("Service default/a: status.loadBalancer.ingress: 198.18.0.203 is also "
                      "claimed by another service: 198.18.0.203 is already assigned to "
                      "default/z"),
            std::string::npos)
      << errs;
  EXPECT_NE(errs.find("warning"), std::string::npos) << errs;
  EXPECT_EQ(errs.find("default/z:"), std::string::npos) << errs;

  // The same age: ns/name decides.
  Node same;
  same.run({kPool, lbWithStatus("a", kT1, "[{ip: 198.18.0.203}]"),
            lbWithStatus("z", kT1, "[{ip: 198.18.0.203}]")});
  EXPECT_EQ(same.lb("a"), "198.18.0.203");
  EXPECT_EQ(same.lb("z"), "198.18.0.200");

  // A status seed wins over a record entry of another service: a node
  // that had assigned .203 to a (its record) follows the status.
  Node recorded;
  recorded.run({kPool, lbWithStatus("a", kT2, "", "  loadBalancerIP: 198.18.0.203\n")});
  ASSERT_EQ(recorded.lb("a"), "198.18.0.203");
  recorded.run(objs);
  EXPECT_EQ(recorded.lb("z"), "198.18.0.203");
  EXPECT_EQ(recorded.lb("a"), "198.18.0.200");
}

TEST(LoadBalancerStatus, StoredAddressMustStillFit) {
  Node n;
  n.run({kPool, poolYaml("other", "[198.18.1.0/30]", "  autoAssign: false\n"),
         // outside every pool: assigned anew
         lbWithStatus("a", kT1, "[{ip: 198.18.9.9}]"),
         // a hostname-only entry: ignored
         lbWithStatus("b", kT1, "[{hostname: lb.example}]"),
         // not the requested address: the request wins
         lbWithStatus("c", kT1, "[{ip: 198.18.0.205}]", "  loadBalancerIP: 198.18.0.206\n"),
         lbWithStatus("d", kT1, "[{ip: 198.18.0.204}]"),
         lbWithStatus("e", kT1, "[{ip: 198.18.0.207}]")});
  EXPECT_EQ(n.lb("a"), "198.18.0.200");
  EXPECT_EQ(n.lb("b"), "198.18.0.201");
  EXPECT_EQ(n.lb("c"), "198.18.0.206");
  EXPECT_EQ(n.lb("d"), "198.18.0.204");
  EXPECT_EQ(n.lb("e"), "198.18.0.207");
  EXPECT_EQ(errorsText(n.snap.errors), "");

  Node pooled;
  pooled.run({kPool, poolYaml("other", "[198.18.1.0/30]", "  autoAssign: false\n"),
              "apiVersion: v1\nkind: Service\nmetadata:\n  name: d\n  annotations: "
              "{metallb.universe.tf/address-pool: other}\nspec:\n  type: LoadBalancer\n"
              "  ports: [{port: 80}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: "
              "198.18.0.204}]\n"});
  EXPECT_EQ(pooled.lb("d"), "198.18.1.0");
}

TEST(LoadBalancerStatus, SharedStoredAddressIsKeptByEveryShareHolder) {
  std::string shared = "  annotations: {metallb.universe.tf/allow-shared-ip: k}\n";
  auto svc = [&](const std::string& name, const std::string& port) {
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n" + shared +
           "spec:\n  type: LoadBalancer\n  ports: [{port: " + port +
           "}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 198.18.0.206}]\n";
  };
  Node n;
  n.run({kPool, svc("a", "80"), svc("b", "443")});
  EXPECT_EQ(n.lb("a"), "198.18.0.206");
  EXPECT_EQ(n.lb("b"), "198.18.0.206");
  EXPECT_EQ(errorsText(n.snap.errors), "");
}

// The incremental model seeds as the full build does (ClusterModel::verify).
TEST(LoadBalancerStatus, IncrementalModelEqualsFullBuild) {
  MemoryAllocationStore store;
  BuildOptions opts = test::options();
  opts.loadBalancerFromStatus = true;
  ClusterModel model(opts, store);
  FileTracker tracker;
  auto step = [&](const std::vector<std::string>& objs) {
    model.apply(tracker.apply({{"m.yaml", docs(objs)}}));
    std::vector<std::string> diffs = model.verify();
    std::string text;
    for (const auto& d : diffs) text += d + "\n";
    EXPECT_TRUE(diffs.empty()) << text;
  };
  step({kPool, lbWithStatus("a", kT1, ""), lbWithStatus("b", kT2, "")});
  EXPECT_EQ(model.snapshot().services.at("default/b").loadBalancerIngress.at(0).str(),
            "198.18.0.201");
  // Another node's writer stored .205 for b: b follows it.
  step({kPool, lbWithStatus("a", kT1, "[{ip: 198.18.0.200}]"),
        lbWithStatus("b", kT2, "[{ip: 198.18.0.205}]")});
  EXPECT_EQ(model.snapshot().services.at("default/b").loadBalancerIngress.at(0).str(),
            "198.18.0.205");
  // a deleted, c created with a stale claim on b's address: c loses.
  step({kPool, lbWithStatus("b", kT2, "[{ip: 198.18.0.205}]"),
        lbWithStatus("c", kT3, "[{ip: 198.18.0.205}]")});
  EXPECT_EQ(model.snapshot().services.at("default/b").loadBalancerIngress.at(0).str(),
            "198.18.0.205");
  EXPECT_EQ(model.snapshot().services.at("default/c").loadBalancerIngress.at(0).str(),
            "198.18.0.200");
}

TEST(LoadBalancerStatus, StatusIngressIPsParsing) {
  auto j = nlohmann::json::parse(
      R"({"status":{"loadBalancer":{"ingress":[{"ip":"198.18.0.1"},{"hostname":"x"},
          {"ip":"2001:db8::1","ipMode":"VIP"},{"ip":"bad"},{"ip":5},"str"]}}})");
  std::vector<IpAddr> ips = statusIngressIPs(j);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0].str(), "198.18.0.1");
  EXPECT_EQ(ips[1].str(), "2001:db8::1");
  EXPECT_TRUE(statusIngressIPs(nlohmann::json::parse(R"({"status":{"loadBalancer":{}}})")).empty());
  EXPECT_TRUE(statusIngressIPs(nlohmann::json::parse(R"({"status":[]})")).empty());
  EXPECT_TRUE(statusIngressIPs(nlohmann::json()).empty());
}

}  // namespace
}  // namespace ferry
