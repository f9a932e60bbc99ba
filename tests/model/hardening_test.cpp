// Hostile manifests at the model level (issue 11): each is a clear error
// naming file, object and field, never a crash; limits name themselves.
#include <gtest/gtest.h>

#include "common/limits.h"
#include "model/builder.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::errorsText;
using test::options;
using test::serviceYaml;

ClusterSnapshot build(const std::vector<SourceFile>& files) {
  MemoryAllocationStore store;
  return buildSnapshot(files, options(), store, nullptr);
}

TEST(Hardening, IpFamiliesIPv6WithOnlyIPv4CidrsIsAnError) {
  auto snap = build({{"lb.yaml", serviceYaml("lb6", "  type: LoadBalancer\n  ipFamilies: [IPv6]\n"
                                                   "  ports: [{port: 80}]\n")}});
  EXPECT_EQ(snap.services.count("default/lb6"), 0u);
  EXPECT_NE(errorsText(snap.errors).find(
                "lb.yaml: Service default/lb6: spec.ipFamilies[0]: IPv6 is not configured on this cluster"),
            std::string::npos)
      << errorsText(snap.errors);
  snap = build({{"f.yaml", serviceYaml("f", "  ipFamilies: [IPv5]\n  ports: [{port: 80}]\n")}});
  EXPECT_NE(errorsText(snap.errors).find("spec.ipFamilies[0]: must be \"IPv4\" or \"IPv6\""),
            std::string::npos)
      << errorsText(snap.errors);
  snap = build({{"ok.yaml", serviceYaml("ok", "  ipFamilies: [IPv4]\n  ports: [{port: 80}]\n")}});
  EXPECT_EQ(snap.services.count("default/ok"), 1u) << errorsText(snap.errors);
}

TEST(Hardening, InvalidUtf8NamesTheFileAndOtherFilesStillWork) {
  auto snap = build({{"bad.yaml", serviceYaml("we\xff", "  ports: [{port: 80}]\n")},
                     {"good.yaml", serviceYaml("good", "  ports: [{port: 80}]\n")}});
  EXPECT_EQ(snap.services.count("default/good"), 1u);
  ASSERT_EQ(snap.errors.size(), 1u) << errorsText(snap.errors);
  EXPECT_EQ(snap.errors[0].file, "bad.yaml");
  EXPECT_NE(snap.errors[0].message.find("not valid UTF-8"), std::string::npos);
}

TEST(Hardening, UnreadableFileIsReportedAndItsObjectsKept) {
  MemoryAllocationStore store;
  auto opts = options();
  ClusterSnapshot first =
      buildSnapshot({{"s.yaml", serviceYaml("s", "  ports: [{port: 80}]\n")}}, opts, store, nullptr);
  ASSERT_EQ(first.services.count("default/s"), 1u);
  SourceFile big{"s.yaml", "", "file is 52428800 bytes, more than the limit of 3145728 (kManifestFileBytes): not read"};
  ClusterSnapshot next = buildSnapshot({big}, opts, store, &first);
  EXPECT_EQ(next.services.count("default/s"), 1u) << "a file that became unreadable keeps its last good objects";
  ASSERT_EQ(next.errors.size(), 1u);
  EXPECT_EQ(next.errors[0].file, "s.yaml");
  EXPECT_NE(next.errors[0].message.find("kManifestFileBytes"), std::string::npos);
}

TEST(Hardening, HugeValuesAreNotQuotedWhole) {
  std::string bigList = "[" + std::string(200000, '1') + "]";
  std::string huge = "[";
  for (int i = 0; i < 100000; ++i) huge += (i ? ",1" : "1");
  huge += "]";
  auto snap = build({{"a.json", huge},
                     {"b.yaml", serviceYaml("b", "  ports: [{port: \"" + std::string(100000, 'x') + "\"}]\n")}});
  ASSERT_FALSE(snap.errors.empty());
  for (const auto& e : snap.errors) EXPECT_LE(e.str().size(), 1000u) << e.str().substr(0, 200);
}

}  // namespace
}  // namespace ferry
