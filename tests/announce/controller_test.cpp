// Two agents' controllers sharing one lease store, on fake clocks, no
// devices: lease renewal pace, agreement, failover, clean stop.
#include "announce/controller.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry {
namespace {

using testing::ip;
using namespace std::chrono;

struct MemoryLeases {
  std::map<std::string, Lease> leases;
  int renewals = 0;
  bool failRenew = false;
};

class MemoryLeaseStore : public LeaseStore {
 public:
  explicit MemoryLeaseStore(std::shared_ptr<MemoryLeases> m) : m_(std::move(m)) {}
  Status renew(const std::string& node, WallTime now) override {
    if (m_->failRenew) return Status::error("disk full");
    ++m_->renewals;
    auto it = m_->leases.find(node);
    WallTime acquired =
        it != m_->leases.end() && it->second.liveAt(now) ? it->second.acquireTime : now;
    m_->leases[node] = Lease{node, 2, acquired, now};
    return Status::ok();
  }
  Status release(const std::string& node) override {
    m_->leases.erase(node);
    return Status::ok();
  }
  LeaseRead readAll() override {
    LeaseRead r;
    for (auto& [n, l] : m_->leases) r.leases.push_back(l);
    return r;
  }

 private:
  std::shared_ptr<MemoryLeases> m_;
};

struct FakeTime {
  WallTime wall = WallTime(seconds(1714564800));
  MonoTime mono = MonoTime(seconds(1000));
  void advance(milliseconds d) {
    wall += d;
    mono += d;
  }
  AnnounceClocks clocks() {
    return {[this] { return wall; }, [this] { return mono; }};
  }
};

class ControllerTest : public ::testing::Test {
 protected:
  std::unique_ptr<AnnounceController> make(const std::string& node) {
    return std::make_unique<AnnounceController>(
        node, std::make_unique<MemoryLeaseStore>(shared_), seconds(2), time_.clocks(),
        [this, node](AnnounceController::Level, const std::string& m) {
          logs_.push_back(node + ": " + m);
        });
  }
  // Runs both loops for d, honouring timeoutMs as the agent's poll would.
  void run(std::vector<AnnounceController*> cs, milliseconds d) {
    MonoTime end = time_.mono + d;
    while (time_.mono < end) {
      int t = 1000;
      for (auto* c : cs) {
        c->onTimer();
        int ct = c->timeoutMs();
        if (ct >= 0) t = std::min(t, ct);
      }
      time_.advance(milliseconds(std::max(t, 1)));
    }
  }
  std::shared_ptr<MemoryLeases> shared_ = std::make_shared<MemoryLeases>();
  FakeTime time_;
  std::vector<std::string> logs_;
  const IpAddr a_ = ip("198.18.0.200");
  std::vector<Announceable> addrs_ = {{ip("198.18.0.200"), false, {}, "default/web"}};
};

TEST_F(ControllerTest, RenewsEveryThirdOfTheLease) {
  auto c = make("node1");
  EXPECT_EQ(c->timeoutMs(), 0) << "the first tick is immediate";
  run({c.get()}, milliseconds(1900));
  EXPECT_EQ(shared_->renewals, 3);  // at 0, 0.666, 1.332
  EXPECT_LE(c->timeoutMs(), 667);
}

TEST_F(ControllerTest, OneOwnerAndFailover) {
  auto n1 = make("node1"), n2 = make("node2");
  for (auto* c : {n1.get(), n2.get()}) c->update(addrs_, {});  // no Node objects: leases decide
  // node1's first tick sees only its own lease; one tick later it sees node2's
  run({n1.get(), n2.get()}, milliseconds(800));
  ASSERT_EQ(n1->state().owned().size() + n2->state().owned().size(), 1u);
  AnnounceController* owner = n1->state().owned().count(a_) ? n1.get() : n2.get();
  AnnounceController* other = owner == n1.get() ? n2.get() : n1.get();
  EXPECT_EQ(owner->state().owners(), other->state().owners());

  // the owner hangs (last renewal at 0.666 s): the other takes over within
  // leaseDuration + leaseDuration/3
  run({other}, milliseconds(2700));
  EXPECT_TRUE(other->state().owned().count(a_));

  // the owner comes back and renews: it is the preferred node again
  run({owner, other}, milliseconds(1000));
  EXPECT_TRUE(owner->state().owned().count(a_));
  EXPECT_FALSE(other->state().owned().count(a_));
}

TEST_F(ControllerTest, StatusJson) {
  auto n1 = make("node1");
  n1->update(addrs_, {});
  run({n1.get()}, milliseconds(100));
  EXPECT_EQ(n1->statusJson()["owned"], nlohmann::json::array())
      << "a starting agent holds off for one lease read of the others";
  run({n1.get()}, milliseconds(700));
  nlohmann::json j = n1->statusJson();
  EXPECT_EQ(j["node"], "node1");
  EXPECT_EQ(j["owners"]["198.18.0.200"], "node1");
  EXPECT_EQ(j["owned"], nlohmann::json::array({"198.18.0.200"}));
  EXPECT_EQ(j["leases"][0]["holder"], "node1");
  EXPECT_EQ(j["leases"][0]["live"], true);
}

TEST_F(ControllerTest, AStartingAgentNeverAnswersAlongsideTheOwner) {
  // Whichever node the hash prefers, at no step may both answer ARP.
  for (const char* first : {"node1", "node2"}) {
    shared_ = std::make_shared<MemoryLeases>();
    auto a = make(first), b = make(std::string(first) == "node1" ? "node2" : "node1");
    a->update(addrs_, {});
    run({a.get()}, milliseconds(2000));
    ASSERT_EQ(a->statusJson()["owned"].size(), 1u);
    b->update(addrs_, {});
    MonoTime end = time_.mono + milliseconds(3000);
    while (time_.mono < end) {
      for (auto* c : {a.get(), b.get()}) c->onTimer();
      size_t answering = a->statusJson()["owned"].size() + b->statusJson()["owned"].size();
      ASSERT_LE(answering, 1u) << "two nodes answer ARP at t=" << time_.mono.time_since_epoch().count();
      time_.advance(milliseconds(10));
    }
    EXPECT_EQ(a->statusJson()["owned"].size() + b->statusJson()["owned"].size(), 1u);
  }
}

TEST_F(ControllerTest, CleanStopHandsOverAtTheNextTick) {
  auto n1 = make("node1"), n2 = make("node2");
  for (auto* c : {n1.get(), n2.get()}) c->update(addrs_, {});
  run({n1.get(), n2.get()}, milliseconds(800));
  AnnounceController* owner = n1->state().owned().count(a_) ? n1.get() : n2.get();
  AnnounceController* other = owner == n1.get() ? n2.get() : n1.get();
  owner->stop();
  EXPECT_EQ(shared_->leases.size(), 1u) << "the lease is deleted";
  EXPECT_EQ(owner->timeoutMs(), -1);
  run({other}, milliseconds(700));
  EXPECT_TRUE(other->state().owned().count(a_));
}

TEST_F(ControllerTest, NotReadyNodeObjectWins) {
  auto n1 = make("node1");
  std::map<std::string, Node> nodes = {{"node1", Node{"node1", {}, false}}};
  n1->update(addrs_, nodes);
  run({n1.get()}, milliseconds(100));
  EXPECT_TRUE(n1->state().owned().empty());
  nodes["node1"].ready = true;
  n1->update(addrs_, nodes);
  EXPECT_TRUE(n1->state().owned().count(a_)) << "recomputed at once on update";
}

TEST_F(ControllerTest, FailingRenewalLetsTheLeaseLapse) {
  auto n1 = make("node1");
  n1->update(addrs_, {});
  run({n1.get()}, milliseconds(100));
  EXPECT_TRUE(n1->state().owned().count(a_));
  shared_->failRenew = true;
  run({n1.get()}, milliseconds(2700));
  EXPECT_TRUE(n1->state().owned().empty())
      << "a node that cannot renew stops answering, as others see it";
  int warnings = 0;
  for (const std::string& l : logs_) warnings += l.find("disk full") != std::string::npos;
  EXPECT_EQ(warnings, 1) << "logged once, not at every tick";
}

TEST_F(ControllerTest, MissingDeviceIsRetried) {
  int opens = 0;
  auto c = std::make_unique<AnnounceController>(
      "node1", std::make_unique<MemoryLeaseStore>(shared_), seconds(2), time_.clocks(),
      [this](AnnounceController::Level, const std::string& m) { logs_.push_back(m); },
      [&](const std::string&) -> Expected<std::unique_ptr<L2Announcer>> {
        ++opens;
        return Status::error("eth9: No such device");
      });
  c->setDevices({"eth9"});
  EXPECT_EQ(opens, 1);
  run({c.get()}, milliseconds(1900));
  EXPECT_EQ(opens, 4);  // and at every lease tick
  EXPECT_TRUE(c->pollFds().empty());
  int warnings = 0;
  for (const std::string& l : logs_) warnings += l.find("eth9") != std::string::npos;
  EXPECT_EQ(warnings, 1);
  c->setDevices({});
  run({c.get()}, seconds(1));
  EXPECT_EQ(opens, 4);
}

}  // namespace
}  // namespace ferry
