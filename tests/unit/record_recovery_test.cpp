// Rebuilding a corrupt allocation record from the pinned maps (issue 11).
#include <gtest/gtest.h>

#include <fstream>

#include "agent/record_recovery.h"

namespace ferry {
namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

Service svc(const std::string& name, std::vector<uint16_t> ports, const char* requested = nullptr) {
  Service s;
  s.ns = "default";
  s.name = name;
  for (uint16_t p : ports) s.ports.push_back(ServicePort{.port = p});
  if (requested) s.clusterIPs = {ip(requested)};
  return s;
}

void pin(ProgrammedState& st, const char* addr, uint16_t port) {
  st.frontends[FrontendKey{ip(addr), port, 6, FERRY_SCOPE_CLUSTER}] = {};
}

TEST(RecordRecovery, PinnedClusterIPsGoBackToTheirServices) {
  std::vector<IpPrefix> cidrs = {*IpPrefix::parse("198.19.0.0/16")};
  ProgrammedState pinned;
  pin(pinned, "198.19.0.10", 53);      // explicit (kube-dns)
  pin(pinned, "198.19.200.7", 8443);   // dynamic, unique port set
  pin(pinned, "198.19.201.1", 80);     // two dynamic services with port 80
  pin(pinned, "198.19.202.2", 80);
  pin(pinned, "10.0.0.1", 80);         // outside the CIDRs: ignored
  std::vector<Service> services = {svc("dns", {53}, "198.19.0.10"), svc("api", {8443}),
                                   svc("web1", {80}), svc("web2", {80}), svc("new", {9999})};
  AllocationRecord rec = recoverRecord(pinned, services, cidrs, "2024-05-01T12:00:00Z");
  EXPECT_EQ(rec.services.at("default/dns").clusterIPs, std::vector<IpAddr>{ip("198.19.0.10")});
  EXPECT_EQ(rec.services.at("default/api").clusterIPs, std::vector<IpAddr>{ip("198.19.200.7")});
  std::set<IpAddr> webs = {rec.services.at("default/web1").clusterIPs.at(0),
                           rec.services.at("default/web2").clusterIPs.at(0)};
  EXPECT_EQ(webs, (std::set<IpAddr>{ip("198.19.201.1"), ip("198.19.202.2")}));
  EXPECT_TRUE(rec.services.at("default/new").clusterIPs.empty()) << "left to the allocator";
  // Deterministic: the same input gives the same record.
  EXPECT_EQ(recoverRecord(pinned, services, cidrs, "2024-05-01T12:00:00Z"), rec);
}

TEST(RecordRecovery, FileStoreMovesACorruptRecordAsideAndUsesTheRecovery) {
  char tmpl[] = "/tmp/ferry-record-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/allocations.json";
  std::ofstream(path) << "{\"services\": {\"default/a\": {\"clusterIPs\": [\"198.19";  // truncated
  FileAllocationStore store(path);
  std::string err;
  EXPECT_FALSE(store.transact([](AllocationRecord&) {}, &err)) << "no recovery: an error";
  EXPECT_NE(err.find("corrupt allocation record"), std::string::npos) << err;
  store.setRecovery([] {
    AllocationRecord r;
    r.services["default/a"].clusterIPs = {ip("198.19.3.3")};
    return r;
  });
  AllocationRecord seen;
  ASSERT_TRUE(store.transact([&](AllocationRecord& r) { seen = r; }, &err)) << err;
  EXPECT_EQ(seen.services.at("default/a").clusterIPs, std::vector<IpAddr>{ip("198.19.3.3")});
  EXPECT_NE(store.takeNotice().find("record rebuilt"), std::string::npos);
  // The new record is on disk; the corrupt one is kept beside it.
  FileAllocationStore again(path);
  ASSERT_TRUE(again.transact([&](AllocationRecord& r) { seen = r; }, &err)) << err;
  EXPECT_EQ(seen.services.count("default/a"), 1u);
  EXPECT_EQ(std::system(("ls " + dir + "/allocations.json.corrupt-* >/dev/null").c_str()), 0);
  std::system(("rm -rf " + dir).c_str());
}

TEST(RecordRecovery, LockHeldByAnotherProcessFailsFastInsteadOfFreezing) {
  char tmpl[] = "/tmp/ferry-record-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/allocations.json";
  // flock(1) holds the lock for 3 s in another process.
  ASSERT_EQ(std::system(("touch " + path + ".lock; flock " + path + ".lock sleep 3 & sleep 0.3").c_str()), 0);
  FileAllocationStore store(path);
  std::string err;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(store.transact([](AllocationRecord&) {}, &err));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  EXPECT_NE(err.find("locked by another process"), std::string::npos) << err;
  std::system(("sleep 3; rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace ferry
