// Pinned maps left by another build of ferry (an upgrade that changed a
// layout, or a new --ct-map-size): the load replaces them instead of
// failing, and conntrack keeps its flows when only the capacity changed.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "dataplane/bpf.h"

namespace ferry {
namespace {

class PinnedMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-pintest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(mount("bpf", dir_.c_str(), "bpf", 0, nullptr), 0) << "mount bpffs: " << errno;
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    rmdir(dir_.c_str());
  }

  // Pins a map named `name` of the given shape, as an older ferry would have.
  int pinMap(const std::string& name, bpf_map_type type, uint32_t keySize, uint32_t valueSize,
             uint32_t entries) {
    int fd = bpf_map_create(type, name.c_str(), keySize, valueSize, entries, nullptr);
    EXPECT_GE(fd, 0) << name;
    EXPECT_EQ(bpf_obj_pin(fd, (dir_ + "/" + name).c_str()), 0) << name;
    return fd;
  }

  std::string dir_;
  bool mounted_ = false;
};

const PinnedMapChange* findChange(const Datapath& dp, const std::string& name) {
  for (const auto& c : dp.replacedMaps())
    if (c.name == name) return &c;
  return nullptr;
}

TEST_F(PinnedMapsTest, SameLayoutLoadsWithoutReplacing) {
  DatapathOptions o;
  o.pinDir = dir_;
  o.ctMapSize = 4096;
  {
    auto dp = Datapath::load(o);
    ASSERT_TRUE(dp) << dp.status().message();
    EXPECT_TRUE((*dp)->replacedMaps().empty());
  }
  auto again = Datapath::load(o);
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_TRUE((*again)->replacedMaps().empty());
}

TEST_F(PinnedMapsTest, ConntrackResizedKeepsFlows) {
  int old = pinMap("ferry_ct", BPF_MAP_TYPE_LRU_HASH, sizeof(ferry_ct_key),
                   sizeof(ferry_ct_value), 1024);
  ferry_ct_key k{};
  k.sport = htons(40000);
  k.dport = htons(80);
  k.proto = 6;
  ferry_ct_value v{};
  v.backend_id = 7;
  ASSERT_EQ(bpf_map_update_elem(old, &k, &v, BPF_ANY), 0);
  close(old);

  DatapathOptions o;
  o.pinDir = dir_;
  o.ctMapSize = 4096;
  auto dp = Datapath::load(o);
  ASSERT_TRUE(dp) << dp.status().message();
  const PinnedMapChange* c = findChange(**dp, "ferry_ct");
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->flowsLost);
  EXPECT_EQ(c->flowsKept, 1u);
  ferry_ct_value got{};
  ASSERT_TRUE((*dp)->conntrack().lookup(k, &got));
  EXPECT_EQ(got.backend_id, 7u);
  // the pin now names the new map, with the new capacity
  int pinned = bpf_obj_get((dir_ + "/ferry_ct").c_str());
  ASSERT_GE(pinned, 0);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(pinned, &info, &len), 0);
  EXPECT_EQ(info.max_entries, 4096u);
  close(pinned);
}

// The upgrade that broke a restart once: ferry_stats grew (FERRY_STAT_MAX),
// and the old pinned map made the whole load fail.
TEST_F(PinnedMapsTest, ChangedLayoutIsReplacedNotFatal) {
  close(pinMap("ferry_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 3));
  close(pinMap("ferry_sock_revnat", BPF_MAP_TYPE_LRU_HASH, 8, 8, 128));

  DatapathOptions o;
  o.pinDir = dir_;
  auto dp = Datapath::load(o);
  ASSERT_TRUE(dp) << dp.status().message();
  const PinnedMapChange* stats = findChange(**dp, "ferry_stats");
  ASSERT_NE(stats, nullptr);
  EXPECT_FALSE(stats->flowsLost);
  const PinnedMapChange* revnat = findChange(**dp, "ferry_sock_revnat");
  ASSERT_NE(revnat, nullptr);
  EXPECT_TRUE(revnat->flowsLost);
  EXPECT_EQ(findChange(**dp, "ferry_svc"), nullptr);
  EXPECT_FALSE((*dp)->stats().empty());
}

}  // namespace
}  // namespace ferry
