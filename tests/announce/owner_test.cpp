#include "announce/owner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "test_util.h"

namespace ferry {
namespace {

using testing::ip;
using namespace std::chrono;

NodeCandidate live(const std::string& n) { return {n, true, true}; }

std::vector<Announceable> pool(int n) {
  std::vector<Announceable> out;
  for (int i = 0; i < n; ++i) out.push_back({IpAddr::fromV4(0xc6120000u + 200 + i), false, {}, ""});
  return out;
}

TEST(OwnerTest, ExactlyOneOwnerPerAddress) {
  auto owners = chooseOwners(pool(10), {live("node1"), live("node2"), live("node3")});
  EXPECT_EQ(owners.size(), 10u);
  for (const auto& [addr, node] : owners)
    EXPECT_TRUE(node == "node1" || node == "node2" || node == "node3");
}

TEST(OwnerTest, TheRuleIsSmallestScore) {
  IpAddr a = ip("198.18.0.200");
  std::vector<std::string> names = {"node1", "node2", "node3", "node4"};
  std::string want = *std::min_element(names.begin(), names.end(), [&](auto& x, auto& y) {
    return ownerScore(x, a) < ownerScore(y, a);
  });
  std::vector<NodeCandidate> nodes;
  for (auto& n : names) nodes.push_back(live(n));
  EXPECT_EQ(chooseOwners({{a, false, {}, ""}}, nodes).at(a), want);
  // pinned: the score is a protocol between agents and must not drift
  EXPECT_EQ(ownerScore("node1", a), ownerScore("node1", ip("198.18.0.200")));
  EXPECT_NE(ownerScore("node1", a), ownerScore("node2", a));
  EXPECT_NE(ownerScore("node1", a), ownerScore("node1", ip("198.18.0.201")));
}

TEST(OwnerTest, DeterministicWhateverTheOrder) {
  std::vector<NodeCandidate> nodes = {live("a"), live("b"), live("c"), live("d"), live("e")};
  auto want = chooseOwners(pool(50), nodes);
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(nodes.begin(), nodes.end(), rng);
    auto addrs = pool(50);
    std::shuffle(addrs.begin(), addrs.end(), rng);
    EXPECT_EQ(chooseOwners(addrs, nodes), want);
  }
}

TEST(OwnerTest, SpreadsAddressesOverNodes) {
  std::vector<NodeCandidate> nodes = {live("node1"), live("node2"), live("node3"), live("node4")};
  std::map<std::string, int> count;
  for (const auto& [addr, node] : chooseOwners(pool(400), nodes)) ++count[node];
  ASSERT_EQ(count.size(), 4u);
  for (const auto& [node, n] : count) {
    EXPECT_GT(n, 60) << node;  // 100 expected each
    EXPECT_LT(n, 140) << node;
  }
}

TEST(OwnerTest, OnlyReadyNodesWithLiveLeases) {
  auto addrs = pool(30);
  std::vector<NodeCandidate> nodes = {
      live("ok"), {"notready", false, true}, {"expired", true, false}};
  for (const auto& [addr, node] : chooseOwners(addrs, nodes)) EXPECT_EQ(node, "ok");
  EXPECT_TRUE(chooseOwners(addrs, {{"notready", false, true}, {"expired", true, false}}).empty())
      << "no candidate, no owner";
  EXPECT_TRUE(chooseOwners(addrs, {}).empty());
}

TEST(OwnerTest, LocalPolicyNeedsALocalEndpoint) {
  IpAddr a = ip("2001:db8::200");
  std::vector<NodeCandidate> nodes = {live("node1"), live("node2"), live("node3")};
  for (std::string only : {"node1", "node2", "node3"})
    EXPECT_EQ(chooseOwners({{a, true, {only}, ""}}, nodes).at(a), only);
  EXPECT_TRUE(chooseOwners({{a, true, {}, ""}}, nodes).empty()) << "no ready endpoint anywhere";
  EXPECT_TRUE(chooseOwners({{a, true, {"node4"}, ""}}, nodes).empty())
      << "endpoint on a node without a lease";
  // the local endpoint's node must itself be eligible
  EXPECT_EQ(
      chooseOwners({{a, true, {"node1", "node2"}, ""}}, {{"node1", false, true}, live("node2")})
          .at(a),
      "node2");
}

TEST(OwnerTest, SharedAddressNeedsANodeGoodForEveryService) {
  IpAddr a = ip("198.18.0.210");
  std::vector<NodeCandidate> nodes = {live("node1"), live("node2"), live("node3")};
  std::vector<Announceable> shared = {{a, false, {}, "default/cluster"},
                                      {a, true, {"node2", "node3"}, "default/l1"},
                                      {a, true, {"node3"}, "default/l2"}};
  EXPECT_EQ(chooseOwners(shared, nodes).at(a), "node3");
  shared.push_back({a, true, {"node1"}, "default/l3"});
  EXPECT_TRUE(chooseOwners(shared, nodes).empty());
}

TEST(OwnerTest, UnrelatedNodeChangesMoveNothing) {
  auto addrs = pool(200);
  std::vector<NodeCandidate> nodes = {live("node1"), live("node2"), live("node3"), live("node4")};
  auto before = chooseOwners(addrs, nodes);

  // node4 leaves: only its addresses move
  auto without = nodes;
  without.pop_back();
  auto after = chooseOwners(addrs, without);
  int moved = 0;
  for (const auto& [addr, node] : before) {
    if (node != "node4")
      EXPECT_EQ(after.at(addr), node) << addr.str();
    else
      ++moved;
  }
  EXPECT_GT(moved, 0);

  // node5 joins: addresses move only to node5
  auto with = nodes;
  with.push_back(live("node5"));
  auto joined = chooseOwners(addrs, with);
  int gained = 0;
  for (const auto& [addr, node] : joined) {
    if (node == "node5")
      ++gained;
    else
      EXPECT_EQ(node, before.at(addr)) << addr.str();
  }
  EXPECT_GT(gained, 0);
}

TEST(CandidatesTest, FromNodesAndLeases) {
  WallTime t0 = WallTime(seconds(1714564800));
  std::map<std::string, Node> nodes;
  nodes["ready"] = Node{"ready", {}, true};
  nodes["notready"] = Node{"notready", {}, false};
  nodes["nolease"] = Node{"nolease", {}, true};
  std::vector<Lease> leases = {{"ready", 2, t0, t0},
                               {"notready", 2, t0, t0},
                               {"expired", 2, t0 - seconds(5), t0 - seconds(5)},
                               {"nomanifest", 2, t0, t0}};
  auto c = nodeCandidates(nodes, leases, t0 + seconds(1));
  std::vector<NodeCandidate> want = {
      {"expired", false, false},
      {"nolease", true, false},
      {"nomanifest", true, true},  // no Node object: ready if its lease is live
      {"notready", false, true},
      {"ready", true, true}};
  EXPECT_EQ(c, want);
  auto later = nodeCandidates(nodes, leases, t0 + seconds(2));
  EXPECT_FALSE(later[2].leaseLive);
  EXPECT_FALSE(later[2].ready);
}

}  // namespace
}  // namespace ferry
