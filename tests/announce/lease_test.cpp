#include "announce/lease.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace ferry {
namespace {

using namespace std::chrono;
namespace fs = std::filesystem;

// 2024-05-01T12:00:00Z
const WallTime kT0 = WallTime(seconds(1714564800));

TEST(MicroTimeTest, FormatsLikeKubernetes) {
  EXPECT_EQ(formatMicroTime(kT0), "2024-05-01T12:00:00.000000Z");
  EXPECT_EQ(formatMicroTime(kT0 + microseconds(123456)), "2024-05-01T12:00:00.123456Z");
  EXPECT_EQ(formatMicroTime(kT0 + nanoseconds(999)), "2024-05-01T12:00:00.000000Z") << "truncated";
  EXPECT_EQ(formatMicroTime(WallTime(seconds(0))), "1970-01-01T00:00:00.000000Z");
}

TEST(MicroTimeTest, ParsesRfc3339) {
  EXPECT_EQ(parseMicroTime("2024-05-01T12:00:00.123456Z"), kT0 + microseconds(123456));
  EXPECT_EQ(parseMicroTime("2024-05-01T12:00:00Z"), kT0);
  EXPECT_EQ(parseMicroTime("2024-05-01T12:00:00.5Z"), kT0 + milliseconds(500));
  EXPECT_EQ(parseMicroTime("2024-05-01T12:00:00.123456789Z"), kT0 + microseconds(123456));
  EXPECT_EQ(parseMicroTime("2024-05-01T14:30:00+02:30"), kT0);
  EXPECT_EQ(parseMicroTime("2024-05-01T10:00:00.000001-02:00"), kT0 + microseconds(1));
  for (const char* bad : {"", "2024-05-01", "2024-05-01T12:00:00", "2024-02-30T12:00:00Z",
                          "2024-05-01T24:00:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zx",
                          "2024-05-01 12:00:00Z", "2024-05-01T12:00:00+0200"})
    EXPECT_FALSE(parseMicroTime(bad)) << bad;
  for (int us : {0, 1, 999999}) {
    WallTime t = kT0 + microseconds(us);
    EXPECT_EQ(parseMicroTime(formatMicroTime(t)), t);
  }
}

TEST(LeaseTest, LiveUntilRenewPlusDuration) {
  Lease l{"node1", 2, kT0, kT0};
  EXPECT_TRUE(l.liveAt(kT0));
  EXPECT_TRUE(l.liveAt(kT0 + milliseconds(1999)));
  EXPECT_FALSE(l.liveAt(kT0 + seconds(2)));
  EXPECT_FALSE(l.liveAt(kT0 + seconds(10)));
}

TEST(LeaseTest, JsonIsAKubernetesLease) {
  Lease l{"node1", 2, kT0, kT0 + microseconds(250000)};
  nlohmann::json j = l.toJson();
  EXPECT_EQ(j["apiVersion"], "coordination.k8s.io/v1");
  EXPECT_EQ(j["kind"], "Lease");
  EXPECT_EQ(j["metadata"]["name"], "node1");
  EXPECT_EQ(j["spec"]["holderIdentity"], "node1");
  EXPECT_EQ(j["spec"]["leaseDurationSeconds"], 2);
  EXPECT_EQ(j["spec"]["acquireTime"], "2024-05-01T12:00:00.000000Z");
  EXPECT_EQ(j["spec"]["renewTime"], "2024-05-01T12:00:00.250000Z");
  std::string err;
  EXPECT_EQ(Lease::fromJson(j, &err), l) << err;
}

TEST(LeaseTest, FromJsonRejectsBrokenLeases) {
  Lease l{"node1", 2, kT0, kT0};
  auto without = [&](const char* field) {
    nlohmann::json j = l.toJson();
    j["spec"].erase(field);
    return j;
  };
  std::string err;
  EXPECT_FALSE(Lease::fromJson(without("holderIdentity"), &err));
  EXPECT_FALSE(Lease::fromJson(without("renewTime"), &err));
  EXPECT_TRUE(Lease::fromJson(without("leaseDurationSeconds"), &err)) << "defaults";
  EXPECT_TRUE(Lease::fromJson(without("acquireTime"), &err)) << "optional in the API";
  nlohmann::json j = l.toJson();
  j["spec"]["leaseDurationSeconds"] = 0;
  EXPECT_FALSE(Lease::fromJson(j, &err));
  j = l.toJson();
  j["spec"]["renewTime"] = "yesterday";
  EXPECT_FALSE(Lease::fromJson(j, &err));
  EXPECT_NE(err.find("renewTime"), std::string::npos) << err;
  EXPECT_FALSE(Lease::fromJson(nlohmann::json::array(), &err));
}

TEST(LeaseTest, NodeNamesSafeAsFileNames) {
  for (const char* ok : {"node1", "a", "worker-1.example.com", "0"})
    EXPECT_TRUE(isValidLeaseName(ok)) << ok;
  for (const char* bad :
       {"", "..", ".", "a/b", "../x", "Node1", "-a", "a-", "a..b", ".hidden", "a.-b"})
    EXPECT_FALSE(isValidLeaseName(bad)) << bad;
}

class DirectoryLeaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ferry-lease-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/leases";  // created by the first renew
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_, dir_;
};

TEST_F(DirectoryLeaseStoreTest, RoundTrip) {
  DirectoryLeaseStore store(dir_);
  EXPECT_TRUE(store.readAll().leases.empty());
  EXPECT_TRUE(store.readAll().errors.empty()) << "a missing directory is no error";
  ASSERT_TRUE(store.renew("node1", kT0));
  ASSERT_TRUE(store.renew("node2", kT0 + milliseconds(10)));
  EXPECT_TRUE(fs::exists(dir_ + "/node1.json"));
  LeaseRead r = store.readAll();
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.leases.size(), 2u);
  EXPECT_EQ(r.leases[0], (Lease{"node1", 2, kT0, kT0}));
  EXPECT_EQ(r.leases[1], (Lease{"node2", 2, kT0 + milliseconds(10), kT0 + milliseconds(10)}));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_NE(e.path().filename().string()[0], '.') << "temp file left: " << e.path();
}

TEST_F(DirectoryLeaseStoreTest, RenewKeepsAcquireTimeWhileLive) {
  DirectoryLeaseStore store(dir_, seconds(2));
  ASSERT_TRUE(store.renew("node1", kT0));
  ASSERT_TRUE(store.renew("node1", kT0 + milliseconds(1500)));
  LeaseRead r = store.readAll();
  ASSERT_EQ(r.leases.size(), 1u);
  EXPECT_EQ(r.leases[0].acquireTime, kT0);
  EXPECT_EQ(r.leases[0].renewTime, kT0 + milliseconds(1500));
  // after a gap longer than the lease, it is a new acquisition
  ASSERT_TRUE(store.renew("node1", kT0 + seconds(10)));
  r = store.readAll();
  EXPECT_EQ(r.leases[0].acquireTime, kT0 + seconds(10));
  EXPECT_FALSE(r.leases[0].liveAt(kT0 + seconds(12)));
}

TEST_F(DirectoryLeaseStoreTest, ReleaseDeletesTheLease) {
  DirectoryLeaseStore store(dir_);
  ASSERT_TRUE(store.renew("node1", kT0));
  ASSERT_TRUE(store.renew("node2", kT0));
  ASSERT_TRUE(store.release("node1"));
  EXPECT_FALSE(fs::exists(dir_ + "/node1.json"));
  LeaseRead r = store.readAll();
  ASSERT_EQ(r.leases.size(), 1u);
  EXPECT_EQ(r.leases[0].holder, "node2");
  EXPECT_TRUE(store.release("node1")) << "releasing twice is fine";
}

TEST_F(DirectoryLeaseStoreTest, SkipsAndReportsBadFiles) {
  DirectoryLeaseStore store(dir_);
  ASSERT_TRUE(store.renew("node1", kT0));
  std::ofstream(dir_ + "/broken.json") << "{not json";
  std::ofstream(dir_ + "/.node3.json.tmp") << "{half";  // someone's write in progress
  std::ofstream(dir_ + "/README") << "not a lease";
  Lease other{"node9", 2, kT0, kT0};
  std::ofstream(dir_ + "/node4.json") << other.toJson().dump();  // holder != file name
  LeaseRead r = store.readAll();
  ASSERT_EQ(r.leases.size(), 1u);
  EXPECT_EQ(r.leases[0].holder, "node1");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].find("broken.json"), std::string::npos);
  EXPECT_NE(r.errors[1].find("node4.json"), std::string::npos);
}

TEST_F(DirectoryLeaseStoreTest, RejectsUnsafeNodeNames) {
  DirectoryLeaseStore store(dir_);
  EXPECT_FALSE(store.renew("../escape", kT0));
  EXPECT_FALSE(store.release("a/b"));
  EXPECT_FALSE(fs::exists(root_ + "/escape.json"));
}

}  // namespace
}  // namespace ferry
