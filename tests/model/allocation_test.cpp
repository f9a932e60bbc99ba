#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "model/allocation.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::cidr;
using test::ip;

const std::string kNow = "2024-05-01T12:00:00Z";

std::map<std::string, AllocationResult> allocate(AllocationRecord& rec,
                                                 const std::vector<AllocationRequest>& reqs,
                                                 const char* range = "198.19.0.0/16") {
  std::set<std::string> live;
  for (const auto& r : reqs) live.insert(r.key);
  return allocateClusterIPs(rec, reqs, live, {cidr(range)}, kNow);
}

AllocationRequest dyn(const std::string& key) { return {key, true, {}}; }
AllocationRequest req(const std::string& key, const char* addr) { return {key, true, {ip(addr)}}; }

std::string fieldError(const AllocationResult& r) { return r.field + ": " + r.error; }

TEST(Allocation, RequestedAddressIsGranted) {
  AllocationRecord rec;
  auto res = allocate(rec, {req("default/web", "198.19.0.20")});
  EXPECT_EQ(res["default/web"].error, "");
  EXPECT_EQ(res["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
  EXPECT_EQ(res["default/web"].created, kNow);
  EXPECT_EQ(rec.services["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
}

TEST(Allocation, RequestedOutsideCidr) {
  AllocationRecord rec;
  auto res = allocate(rec, {req("default/web", "10.0.0.1")});
  EXPECT_EQ(fieldError(res["default/web"]),
            "spec.clusterIP: 10.0.0.1 is not in the service CIDR 198.19.0.0/16");
  EXPECT_TRUE(rec.services.empty());
}

TEST(Allocation, RequestedTakenByRecordedService) {
  AllocationRecord rec;
  allocate(rec, {req("default/other", "198.19.0.20")});
  auto res = allocate(rec, {req("default/other", "198.19.0.20"), req("default/web", "198.19.0.20")});
  EXPECT_EQ(res["default/other"].error, "");
  EXPECT_EQ(fieldError(res["default/web"]),
            "spec.clusterIP: 198.19.0.20 is already allocated to default/other");
}

TEST(Allocation, RequestWinsOverDynamicPickInTheSamePass) {
  AllocationRecord probeRec;
  IpAddr picked = allocate(probeRec, {dyn("default/a")})["default/a"].clusterIPs.at(0);
  AllocationRecord rec;
  auto res = allocate(rec, {dyn("default/a"), {"default/b", true, {picked}}});
  EXPECT_EQ(res["default/b"].clusterIPs, std::vector<IpAddr>{picked});
  ASSERT_EQ(res["default/a"].clusterIPs.size(), 1u);
  EXPECT_NE(res["default/a"].clusterIPs[0], picked);
}

TEST(Allocation, DynamicIsDeterministicAndInTheUpperBand) {
  std::vector<AllocationRequest> reqs = {dyn("default/a"), dyn("default/b"), dyn("kube-system/dns")};
  MemoryAllocationStore s1, s2;
  std::map<std::string, AllocationResult> r1, r2;
  std::string err;
  ASSERT_TRUE(s1.transact([&](AllocationRecord& r) { r1 = allocate(r, reqs); }, &err));
  ASSERT_TRUE(s2.transact([&](AllocationRecord& r) { r2 = allocate(r, reqs); }, &err));
  IpPrefix range = cidr("198.19.0.0/16");
  for (const auto& r : reqs) {
    ASSERT_EQ(r1[r.key].clusterIPs.size(), 1u);
    EXPECT_EQ(r1[r.key].clusterIPs, r2[r.key].clusterIPs) << r.key;
    uint64_t off = range.offsetOf(r1[r.key].clusterIPs[0]);
    EXPECT_GT(off, 256u) << "lower band is for requested addresses";
    EXPECT_LT(off, 65535u);
  }
  EXPECT_NE(r1["default/a"].clusterIPs, r1["default/b"].clusterIPs);
  EXPECT_EQ(s1.record, s2.record);
}

TEST(Allocation, StableWhenOtherServicesComeAndGo) {
  AllocationRecord rec;
  IpAddr web = allocate(rec, {dyn("default/web")})["default/web"].clusterIPs.at(0);
  std::vector<AllocationRequest> many = {dyn("default/web")};
  for (int i = 0; i < 50; ++i) many.push_back(dyn("default/s" + std::to_string(i)));
  auto res = allocate(rec, many);
  EXPECT_EQ(res["default/web"].clusterIPs, std::vector<IpAddr>{web});
  res = allocate(rec, {dyn("default/web")});  // the 50 are deleted
  EXPECT_EQ(res["default/web"].clusterIPs, std::vector<IpAddr>{web});
  EXPECT_EQ(rec.services.size(), 1u);
}

TEST(Allocation, ReleaseOnDeleteFreesTheAddress) {
  AllocationRecord rec;
  allocate(rec, {req("default/old", "198.19.0.20")});
  auto res = allocate(rec, {req("default/new", "198.19.0.20")});  // old is gone
  EXPECT_EQ(res["default/new"].error, "");
  EXPECT_EQ(rec.services.count("default/old"), 0u);
}

TEST(Allocation, InvalidButLiveServiceKeepsItsAddress) {
  AllocationRecord rec;
  allocate(rec, {req("default/web", "198.19.0.20")});
  // web is live (present in the manifests) but not requesting anything.
  auto res = allocateClusterIPs(rec, {req("default/x", "198.19.0.20")}, {"default/web", "default/x"},
                                {cidr("198.19.0.0/16")}, kNow);
  EXPECT_EQ(fieldError(res["default/x"]),
            "spec.clusterIP: 198.19.0.20 is already allocated to default/web");
}

TEST(Allocation, FullRangeAvoidsNetworkAndBroadcast) {
  AllocationRecord rec;
  std::vector<AllocationRequest> reqs;
  for (int i = 0; i < 7; ++i) reqs.push_back(dyn("default/s" + std::to_string(i)));
  auto res = allocate(rec, reqs, "198.19.0.0/29");
  std::set<IpAddr> got;
  int failed = 0;
  for (const auto& r : reqs) {
    if (!res[r.key].error.empty()) {
      ++failed;
      EXPECT_EQ(fieldError(res[r.key]),
                "spec.clusterIP: no free address left in the service CIDR 198.19.0.0/29");
      continue;
    }
    got.insert(res[r.key].clusterIPs.at(0));
  }
  EXPECT_EQ(failed, 1);
  std::set<IpAddr> want;
  for (int i = 1; i <= 6; ++i) want.insert(IpAddr::fromV4((198u << 24) | (19u << 16) | i));
  EXPECT_EQ(got, want);
}

TEST(Allocation, RequestedAddressChangeMovesTheService) {
  AllocationRecord rec;
  allocate(rec, {req("default/web", "198.19.0.20")});
  auto res = allocate(rec, {req("default/web", "198.19.0.21"), req("default/b", "198.19.0.20")});
  EXPECT_EQ(res["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.21")});
  EXPECT_EQ(res["default/b"].error, "");
}

TEST(Allocation, NoAddressServicesStillGetACreationTime) {
  AllocationRecord rec;
  auto res = allocate(rec, {{"default/h", false, {}}});
  EXPECT_TRUE(res["default/h"].clusterIPs.empty());
  EXPECT_EQ(res["default/h"].created, kNow);
  // A service that becomes headless gives its address back.
  allocate(rec, {dyn("default/x")});
  allocate(rec, {{"default/x", false, {}}});
  EXPECT_TRUE(rec.services["default/x"].clusterIPs.empty());
}

TEST(Allocation, RepairsDuplicateAndOutOfRangeRecords) {
  AllocationRecord rec;
  rec.services["default/a"] = {{ip("198.19.0.20")}, "t1"};
  rec.services["default/b"] = {{ip("198.19.0.20")}, "t2"};
  rec.services["default/c"] = {{ip("10.1.2.3")}, "t3"};
  auto res = allocate(rec, {dyn("default/a"), dyn("default/b"), dyn("default/c")});
  EXPECT_EQ(res["default/a"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
  ASSERT_EQ(res["default/b"].clusterIPs.size(), 1u);
  EXPECT_NE(res["default/b"].clusterIPs[0], ip("198.19.0.20"));
  ASSERT_EQ(res["default/c"].clusterIPs.size(), 1u);
  EXPECT_TRUE(cidr("198.19.0.0/16").contains(res["default/c"].clusterIPs[0]));
  EXPECT_EQ(res["default/c"].created, "t3");  // creation time survives
}

TEST(Allocation, SecondFamilyCidr) {
  AllocationRecord rec;
  std::vector<IpPrefix> cidrs = {cidr("198.19.0.0/16"), cidr("fd00:198::/112")};
  std::vector<AllocationRequest> reqs = {{"default/dual", true, {ip("198.19.0.7"), ip("fd00:198::7")}},
                                         {"default/v6", true, {ip("fd00:198::1:1")}},
                                         dyn("default/dyn")};
  auto res = allocateClusterIPs(rec, reqs, {"default/dual", "default/v6", "default/dyn"}, cidrs, kNow);
  EXPECT_EQ(res["default/dual"].clusterIPs, (std::vector<IpAddr>{ip("198.19.0.7"), ip("fd00:198::7")}));
  EXPECT_EQ(fieldError(res["default/v6"]),
            "spec.clusterIP: fd00:198::1:1 is not in the service CIDR 198.19.0.0/16 or fd00:198::/112");
  ASSERT_EQ(res["default/dyn"].clusterIPs.size(), 1u);
  EXPECT_TRUE(res["default/dyn"].clusterIPs[0].isV4());  // first CIDR = primary family
  AllocationRecord v6;
  auto r6 = allocateClusterIPs(v6, {dyn("default/a")}, {"default/a"}, {cidr("fd00::/120")}, kNow);
  ASSERT_EQ(r6["default/a"].clusterIPs.size(), 1u);
  EXPECT_GT(cidr("fd00::/120").offsetOf(r6["default/a"].clusterIPs[0]), 16u);
}

TEST(AllocationRecordJson, RoundTripKeepsUnknownMembers) {
  auto j = nlohmann::json::parse(R"({
    "nodePorts": {"default/web": [30080]},
    "services": {"default/web": {"clusterIPs": ["198.19.0.20"], "created": "t", "lb": "x"}}})");
  AllocationRecord rec;
  std::string err;
  ASSERT_TRUE(AllocationRecord::fromJson(j, &rec, &err)) << err;
  EXPECT_EQ(rec.services["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
  EXPECT_EQ(rec.toJson(), j);
}

TEST(AllocationRecordJson, RejectsMalformedRecords) {
  AllocationRecord rec;
  std::string err;
  EXPECT_FALSE(AllocationRecord::fromJson(
      nlohmann::json::parse(R"({"services": {"a/b": {"clusterIPs": ["nope"]}}})"), &rec, &err));
  EXPECT_EQ(err, "services[\"a/b\"].clusterIPs: not an IP address: \"nope\"");
  EXPECT_FALSE(AllocationRecord::fromJson(nlohmann::json::array(), &rec, &err));
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-alloc-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "sub" / "allocations.json").string(); }
  std::filesystem::path dir_;
};

TEST_F(FileStoreTest, RoundTripAcrossInstances) {
  std::string err;
  {
    FileAllocationStore store(path());  // parent directory is created
    ASSERT_TRUE(store.transact([](AllocationRecord& r) { allocate(r, {req("default/web", "198.19.0.20")}); },
                               &err))
        << err;
  }
  FileAllocationStore again(path());
  AllocationRecord seen;
  ASSERT_TRUE(again.transact([&](AllocationRecord& r) { seen = r; }, &err)) << err;
  EXPECT_EQ(seen.services["default/web"].clusterIPs, std::vector<IpAddr>{ip("198.19.0.20")});
  EXPECT_EQ(seen.services["default/web"].created, kNow);
  EXPECT_TRUE(std::filesystem::exists(path() + ".lock"));
}

TEST_F(FileStoreTest, CorruptFileIsAnErrorAndLeftAlone) {
  std::filesystem::create_directories(dir_ / "sub");
  { std::ofstream(path()) << "{\"services\": [1, 2"; }
  FileAllocationStore store(path());
  std::string err;
  bool ran = false;
  EXPECT_FALSE(store.transact([&](AllocationRecord&) { ran = true; }, &err));
  EXPECT_FALSE(ran);
  EXPECT_EQ(err, path() + ": corrupt allocation record: not valid JSON");
  std::ifstream in(path());
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "{\"services\": [1, 2");
}

TEST_F(FileStoreTest, EmptyFileIsAnEmptyRecord) {
  std::filesystem::create_directories(dir_ / "sub");
  { std::ofstream(path()) << "\n"; }
  FileAllocationStore store(path());
  std::string err;
  EXPECT_TRUE(store.transact([](AllocationRecord& r) { EXPECT_TRUE(r.services.empty()); }, &err));
}

// Separate store objects open separate lock descriptions, so flock
// serialises them like separate agents.
TEST_F(FileStoreTest, TransactionsAreSerialised) {
  auto bump = [this] {
    FileAllocationStore store(path());
    std::string err;
    // A lock held past 100 ms fails the transaction (the agent retries on a
    // timer); here the caller retries at once.
    for (int i = 0; i < 25; ++i)
      for (int tries = 0; tries < 100; ++tries)
        if (store.transact([](AllocationRecord& r) { r.extra["n"] = r.extra.value("n", 0) + 1; }, &err))
          break;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(bump);
  for (auto& t : threads) t.join();
  FileAllocationStore store(path());
  std::string err;
  int n = 0;
  ASSERT_TRUE(store.transact([&](AllocationRecord& r) { n = r.extra.value("n", 0); }, &err));
  EXPECT_EQ(n, 100);
}

// The agent's transactions: run on the record held in memory, saved only
// when the allocators noted an edit, read again when another agent (here
// a second store) replaced the file, dropped when the function throws.
TEST_F(FileStoreTest, TrackedTransactionsSaveOnlyEditsAndSeeOtherAgents) {
  FileAllocationStore a(path()), b(path());
  std::string err;
  auto add = [](const std::string& key, const char* vip) {
    return [=](AllocationRecord& r) { allocate(r, {req(key, vip)}); };
  };
  ASSERT_TRUE(a.transactTracked(add("default/web", "198.19.0.20"), &err)) << err;
  auto mtime = std::filesystem::last_write_time(path());
  // The same request again: no edit, the file is not rewritten.
  ASSERT_TRUE(a.transactTracked(add("default/web", "198.19.0.20"), &err)) << err;
  EXPECT_EQ(std::filesystem::last_write_time(path()), mtime);
  // Another agent adds a service (the file is replaced): a sees it.
  ASSERT_TRUE(b.transactTracked(
      [&](AllocationRecord& r) {
        allocate(r, {req("default/web", "198.19.0.20"), req("default/db", "198.19.0.21")});
      },
      &err))
      << err;
  AllocationRecord seen;
  ASSERT_TRUE(a.transactTracked([&](AllocationRecord& r) { seen = r; }, &err)) << err;
  EXPECT_EQ(seen.services.count("default/db"), 1u);
  // A throwing function leaves the file as it was, and the copy in memory too.
  EXPECT_FALSE(a.transactTracked(
      [](AllocationRecord& r) {
        r.services.erase("default/db");
        r.edits++;
        throw std::runtime_error("boom");
      },
      &err));
  ASSERT_TRUE(a.transactTracked([&](AllocationRecord& r) { seen = r; }, &err)) << err;
  EXPECT_EQ(seen.services.count("default/db"), 1u);
}

TEST(MemoryStore, TrackedTransactionCatchesAChangeWithoutAnEdit) {
  MemoryAllocationStore store;
  std::string err;
  EXPECT_FALSE(store.transactTracked([](AllocationRecord& r) { r.services["x/y"] = {}; }, &err));
  EXPECT_EQ(err, "internal error: the allocation record changed without an edit noted");
  EXPECT_TRUE(store.record.services.empty());
}

TEST(MemoryStore, ThrowingFunctionIsAnErrorAndChangesNothing) {
  MemoryAllocationStore store;
  std::string err;
  EXPECT_FALSE(store.transact(
      [](AllocationRecord& r) {
        r.services["x/y"] = {};
        throw std::runtime_error("boom");
      },
      &err));
  EXPECT_EQ(err, "allocation failed: boom");
  EXPECT_TRUE(store.record.services.empty());
}

}  // namespace
}  // namespace ferry
