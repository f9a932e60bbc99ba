// Every case of the hostile-input catalogue (tests/hostile) through the
// real directory source and the model: the expected error (file, object,
// field, message), bounded messages, and the good service untouched. The
// e2e suite runs the same catalogue against a live agent.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "agent/source.h"
#include "catalogue.h"
#include "model/builder.h"

namespace ferry {
namespace {

const char kGood[] =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: hx-good\nspec:\n  clusterIP: 198.19.7.1\n"
    "  ports: [{port: 80}]\n";

TEST(HostileCatalogue, EveryCaseIsAClearErrorAndHarmsNothingElse) {
  std::string src = std::string(FERRY_SOURCE_DIR) + "/tests/hostile";
  auto cases = hostile::load(src);
  ASSERT_GE(cases.size(), 45u);
  char tmpl[] = "/tmp/ferry-hostile-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  hostile::writeFile(dir + "/aa-hx-good.yaml", kGood);
  // Every manifest file of the directory, read as the directory source
  // reads it (non-blocking, size-checked).
  auto readAll = [&] {
    std::vector<SourceFile> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      std::string name = e.path().filename().string();
      if (!DirectorySource::isManifestName(name)) continue;
      SourceFile f{e.path().string(), ""};
      if (DirectorySource::readManifest(f.path, &f.content, &f.error)) files.push_back(std::move(f));
    }
    return files;
  };
  BuildOptions opts;
  opts.serviceCidrs = {*IpPrefix::parse("198.19.0.0/16")};
  int clear = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    std::string path = dir + "/hx-case-" + c.file;
    ASSERT_TRUE(hostile::materialise(c, src, path)) << "cannot create the case";
    auto t0 = std::chrono::steady_clock::now();
    MemoryAllocationStore store;
    ClusterSnapshot snap = buildSnapshot(readAll(), opts, store, nullptr);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0).count();
    // (under ASan/UBSan, FERRY_SANITIZED from scripts/sanitize.sh, the model
    // is several times slower and runs beside the e2e cases: 4x, as in the
    // e2e HardeningTest)
    EXPECT_LT(ms, std::getenv("FERRY_SANITIZED") ? 12000 : 3000) << "took " << ms << " ms";
    ASSERT_EQ(snap.services.count("default/hx-good"), 1u);
    EXPECT_EQ(snap.services.at("default/hx-good").clusterIPs.at(0).str(), "198.19.7.1");
    std::vector<ManifestError> mine;
    for (const auto& e : snap.errors) {
      EXPECT_LE(e.str().size(), 1200u) << "error quotes too much: " << e.str().substr(0, 200);
      if (e.file == path) mine.push_back(e);
      else ADD_FAILURE() << "error outside the case's file: " << e.str();
    }
    if (!c.expectsError()) {
      EXPECT_TRUE(mine.empty()) << mine[0].str();
    } else {
      bool found = false;
      for (const auto& e : mine)
        found |= e.object == c.object && e.field == c.field &&
                 e.message.find(c.message) != std::string::npos;
      EXPECT_TRUE(found) << "want " << c.object << " | " << c.field << " | " << c.message
                         << "\ngot:\n" << [&] {
                              std::string s;
                              for (const auto& e : mine) s += "  " + e.str().substr(0, 300) + "\n";
                              return s;
                            }();
      clear += found;
    }
    hostile::remove(path);
  }
  std::printf("[ HOSTILE  ] %zu cases, %d with the expected clear error\n", cases.size(), clear);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
