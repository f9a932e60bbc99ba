// SharedString / SharedList (model/shared_string.h): the compact strings of
// endpoints. Equal texts are one copy, the copy goes with its last holder
// (churn must not grow the intern table), and comparisons and ordering are
// those of std::string (snapshot order and equality must not change).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "model/manifest.h"
#include "model/shared_string.h"

namespace ferry {
namespace {

TEST(SharedString, EqualTextsShareOneCopyReleasedWithTheLastHolder) {
  size_t before = SharedString::internedCount();
  {
    SharedString a("node-with-a-rather-long-name-1");
    SharedString b(std::string("node-with-a-rather-long-name-1"));
    EXPECT_EQ(&a.str(), &b.str());
    EXPECT_EQ(SharedString::internedCount(), before + 1);
    SharedString c = a;
    a = SharedString();
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(c, "node-with-a-rather-long-name-1");
    EXPECT_EQ(SharedString::internedCount(), before + 1);
  }
  EXPECT_EQ(SharedString::internedCount(), before);
  SharedString empty("");
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.str(), "");
  EXPECT_EQ(SharedString::internedCount(), before);
}

TEST(SharedString, ComparesAndOrdersAsStdString) {
  std::vector<std::string> texts = {"", "a", "ab", "b", "B", "node-1", "node-10", "node-2"};
  for (const auto& x : texts)
    for (const auto& y : texts) {
      SharedString sx(x), sy(y);
      EXPECT_EQ(sx == sy, x == y) << x << " " << y;
      EXPECT_EQ(sx < sy, x < y) << x << " " << y;
      EXPECT_EQ(sx == y, x == y);
      EXPECT_EQ(y == sx, x == y);
      EXPECT_EQ(sx == y.c_str(), x == y);
    }
  SharedString n("n1");
  const std::string& ref = n;
  EXPECT_EQ(ref, "n1");
  EXPECT_EQ("Pod " + n, "Pod n1");
  EXPECT_EQ(n + "/x", "n1/x");
}

TEST(SharedList, SharesAndCompares) {
  SharedList<std::string> a{"za", "zb"}, b = a, c{"za"}, e;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(c < a);
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(SharedList<std::string>(std::vector<std::string>{}), e);
  const std::vector<std::string>& v = a;
  EXPECT_EQ(v, (std::vector<std::string>{"za", "zb"}));
}

// The parser thread makes the strings, the loop thread drops them: two
// threads interning and releasing the same texts leave nothing behind.
TEST(SharedString, ConcurrentInternAndReleaseLeaveNothingBehind) {
  size_t before = SharedString::internedCount();
  auto work = [](int seed) {
    std::vector<SharedString> held;
    for (int i = 0; i < 20000; ++i) {
      held.emplace_back("concurrent-text-" + std::to_string((i * 7 + seed) % 50));
      if (held.size() > 16) held.erase(held.begin(), held.begin() + 8);
    }
  };
  std::thread t1(work, 1), t2(work, 2);
  t1.join();
  t2.join();
  EXPECT_EQ(SharedString::internedCount(), before);
}

// Endpoints parsed and dropped (churn): their node names, hostnames and
// target references leave the intern table with them.
TEST(SharedString, ParsedEndpointsReleaseTheirNames) {
  size_t before = SharedString::internedCount();
  {
    Manifests m = parseManifests({{"e.yaml", R"(
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets:
- addresses: [{ip: 10.0.0.1, nodeName: churn-node-a, hostname: churn-h,
               targetRef: {kind: Pod, name: churn-pod-1}}]
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.2]
  nodeName: churn-node-a
  hints: {forZones: [{name: churn-zone}]}
ports: [{port: 80}]
)"}});
    ASSERT_TRUE(m.errors.empty()) << m.errors.front().str();
    ASSERT_EQ(m.endpoints.size(), 1u);
    ASSERT_EQ(m.slices.size(), 1u);
    const EndpointAddress& a = m.endpoints[0].subsets.at(0).addresses.at(0);
    EXPECT_EQ(a.nodeName, "churn-node-a");
    EXPECT_EQ(a.targetRef, "Pod default/churn-pod-1");
    EXPECT_EQ(&a.nodeName.str(), &m.slices[0].endpoints.at(0).nodeName.str());
    EXPECT_EQ(m.slices[0].endpoints[0].zoneHints.vec(), std::vector<std::string>{"churn-zone"});
    EXPECT_GT(SharedString::internedCount(), before);
  }
  EXPECT_EQ(SharedString::internedCount(), before);
}

}  // namespace
}  // namespace ferry
