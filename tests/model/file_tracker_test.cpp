// FileTracker: per-file diffs into object events, and issue 11's rules
// (the object that was working keeps working; invalid objects are
// excluded whole; the newcomer is the one rejected).
#include <gtest/gtest.h>

#include "model/cluster_model.h"
#include "model/file_tracker.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::docs;
using test::podYaml;
using test::serviceYaml;

std::string events(const SourceUpdate& u) {
  std::string out;
  for (const auto& e : u.events) out += std::string(eventTypeName(e.type)) + " " + e.key.str() + "\n";
  return out;
}

const std::string kWeb80 = serviceYaml("web", "  ports: [{port: 80}]\n");
const std::string kWeb81 = serviceYaml("web", "  ports: [{port: 81}]\n");
const std::string kWebBad = serviceYaml("web", "  ports: [{port: 0}]\n");

TEST(FileTracker, OnlyChangedObjectsMakeEvents) {
  FileTracker t;
  EXPECT_EQ(events(t.apply({{"a.yaml", docs({kWeb80, podYaml("p", "10.0.0.1", "{app: web}")})}})),
            "added Pod default/p\nadded Service default/web\n");  // by ns/name, then kind
  // The same text again (an editor's touch), then one object edited.
  EXPECT_EQ(events(t.apply({{"a.yaml", docs({kWeb80, podYaml("p", "10.0.0.1", "{app: web}")})}})), "");
  EXPECT_EQ(events(t.apply({{"a.yaml", docs({kWeb80, podYaml("p", "10.0.0.2", "{app: web}")})}})),
            "modified Pod default/p\n");
  EXPECT_EQ(events(t.apply({{"a.yaml", std::nullopt}})), "deleted Pod default/p\ndeleted Service default/web\n");
}

TEST(FileTracker, MovedBetweenFilesInOneBatchIsOneModification) {
  FileTracker t;
  t.apply({{"a.yaml", kWeb80}});
  // A rename: the old name goes, the new one comes, in one batch.
  EXPECT_EQ(events(t.apply({{"a.yaml", std::nullopt}, {"b.yaml", kWeb80}})),
            "modified Service default/web\n");  // Service::file changed
  auto pod = podYaml("p", "10.0.0.1", "{app: web}");
  t.apply({{"c.yaml", pod}});
  EXPECT_EQ(events(t.apply({{"c.yaml", std::nullopt}, {"d.yaml", pod}})), "modified Pod default/p\n");
  // Not deleted and added: a service never loses its endpoint in between.
}

TEST(FileTracker, TheFirstDefinitionKeepsWorkingAndTheNewcomerIsRejected) {
  FileTracker t;
  t.apply({{"b.yaml", kWeb80}});
  // A file sorting first redefines the service: it is the one rejected.
  SourceUpdate u = t.apply({{"a.yaml", kWeb81}});
  EXPECT_EQ(events(u), "");
  ASSERT_EQ(u.errors.at("a.yaml").size(), 1u);
  EXPECT_EQ(u.errors.at("a.yaml")[0].str(),
            "a.yaml: Service default/web: metadata.name: duplicate Service default/web, already "
            "defined in b.yaml (that definition is used)");
  // The owner drops it: the other definition takes over, its error clears.
  u = t.apply({{"b.yaml", std::nullopt}});
  EXPECT_EQ(events(u), "modified Service default/web\n");
  EXPECT_TRUE(u.errors.at("a.yaml").empty());
}

TEST(FileTracker, InvalidObjectKeepsItsLastGoodVersion) {
  FileTracker t;
  t.apply({{"a.yaml", kWeb80}});
  SourceUpdate u = t.apply({{"a.yaml", kWebBad}});
  EXPECT_EQ(events(u), "");
  EXPECT_FALSE(u.errors.at("a.yaml").empty());
  EXPECT_EQ(t.heldServices().count("default/web"), 1u);
  EXPECT_EQ(events(t.apply({{"a.yaml", kWeb81}})), "modified Service default/web\n");
  EXPECT_TRUE(t.heldServices().empty());
  // Invalid from the start: its name stays taken, nothing is served.
  FileTracker fresh;
  EXPECT_EQ(events(fresh.apply({{"a.yaml", kWebBad}})), "invalid Service default/web\n");
}

TEST(FileTracker, InvalidSliceDoesNotEmptyAService) {
  std::string slice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.9]}]
ports: [{port: 8080}]
)";
  std::string bad = slice;
  bad.replace(bad.find("10.0.0.9"), 8, "10.0.0.x");
  MemoryAllocationStore store;
  ClusterModel model(test::options(), store);
  FileTracker t;
  model.apply(t.apply({{"svc.yaml", kWeb80}, {"slice.yaml", slice}}));
  ASSERT_EQ(model.snapshot().services.at("default/web").ports[0].endpoints.size(), 1u);
  model.apply(t.apply({{"slice.yaml", bad}}));
  EXPECT_EQ(model.snapshot().services.at("default/web").ports[0].endpoints.size(), 1u);
  EXPECT_EQ(model.snapshot().errors.size(), 1u);
  EXPECT_TRUE(model.verify().empty());
}

TEST(FileTracker, BrokenFileKeepsWhatVanishedFromIt) {
  FileTracker t;
  t.apply({{"a.yaml", docs({kWeb80, podYaml("p", "10.0.0.1", "{app: web}")})}});
  EXPECT_EQ(events(t.apply({{"a.yaml", docs({kWeb80, "kind: [unclosed\n"})}})), "");
  EXPECT_EQ(events(t.apply({{"a.yaml", kWeb80}})), "deleted Pod default/p\n");
}

TEST(FileTracker, LastGoodAfterRestartComesFromTheHook) {
  auto saved = std::make_shared<const ObjectValue>(
      parseManifests({{"a.yaml", kWeb80}}).services.at(0));
  FileTracker t([&](const ObjectKey& k, const std::string& path) -> ObjectPtr {
    return k.str() == "Service default/web" && path == "a.yaml" ? saved : nullptr;
  });
  EXPECT_EQ(events(t.apply({{"a.yaml", kWebBad}})), "added Service default/web\n");
}

}  // namespace
}  // namespace ferry
