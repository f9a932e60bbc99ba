#include <gtest/gtest.h>

#include "model/yaml_json.h"

namespace ferry {

using nlohmann::json;

TEST(YamlJson, SplitsDocumentsAndSkipsEmptyOnes) {
  auto docs = parseYamlDocuments("# comment\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].index, 1);
  EXPECT_EQ(docs[0].value, json({{"a", 1}}));
  EXPECT_EQ(docs[1].index, 2);
  EXPECT_EQ(docs[1].value, json({{"b", 2}}));
  EXPECT_EQ(docs[1].firstLine, 6);
}

TEST(YamlJson, ScalarTyping) {
  auto docs = parseYamlDocuments(
      "i: 80\nq: \"80\"\ns: '80'\nb: true\nn: ~\ne:\nf: 1.5\nh: 0x10\nw: web\nneg: -3\n"
      "t: !!str 42\nbig: 99999999999999999999\n");
  ASSERT_EQ(docs.size(), 1u);
  const json& v = docs[0].value;
  EXPECT_EQ(v["i"], json(80));
  EXPECT_EQ(v["q"], json("80"));
  EXPECT_EQ(v["s"], json("80"));
  EXPECT_EQ(v["b"], json(true));
  EXPECT_TRUE(v["n"].is_null());
  EXPECT_TRUE(v["e"].is_null());
  EXPECT_EQ(v["f"], json(1.5));
  EXPECT_EQ(v["h"], json(16));
  EXPECT_EQ(v["w"], json("web"));
  EXPECT_EQ(v["neg"], json(-3));
  EXPECT_EQ(v["t"], json("42"));
  EXPECT_TRUE(v["big"].is_string() || v["big"].is_number());
}

TEST(YamlJson, JsonInput) {
  auto docs = parseYamlDocuments(R"({"kind": "Service", "spec": {"ports": [{"port": 80}]}})");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].value["spec"]["ports"][0]["port"], json(80));
  EXPECT_EQ(docs[0].value["kind"], json("Service"));
}

TEST(YamlJson, SyntaxErrorIsLocalToItsDocument) {
  auto docs = parseYamlDocuments("a: 1\n---\nb: [1, 2\n---\nc: 3\n");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_TRUE(docs[0].error.empty());
  EXPECT_EQ(docs[1].error.rfind("invalid YAML at line ", 0), 0u) << docs[1].error;
  EXPECT_TRUE(docs[2].error.empty());
  EXPECT_EQ(docs[2].value, json({{"c", 3}}));
}

TEST(YamlJson, SyntaxErrorLineIsFileRelative) {
  auto docs = parseYamlDocuments("a: 1\n---\nb: 1\nc: : :\n  - x\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_NE(docs[1].error.find("line 4"), std::string::npos) << docs[1].error;
}

}  // namespace ferry

namespace ferry {

// Hostile inputs (issue 11): each is an error document, never a crash.
TEST(YamlJsonLimits, DeepJsonIsRejectedWithoutRecursion) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto docs = parseYamlDocuments(deep);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("limit kNestingDepth"), std::string::npos) << docs[0].error;
  std::string inService = R"({"kind":"Service","spec":)" + std::string(100000, '{') ;
  docs = parseYamlDocuments(inService);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_FALSE(docs[0].error.empty());
}

TEST(YamlJsonLimits, DeepYamlFlowAndBlockAreRejected) {
  for (std::string text : {"a: " + std::string(100000, '['),
                           [] { std::string s; for (int i = 0; i < 50000; ++i) s += "- "; return s + "x\n"; }(),
                           [] { std::string s = "a:\n"; for (int i = 1; i < 2000; ++i) s += std::string(i, ' ') + "b:\n"; return s; }()}) {
    auto docs = parseYamlDocuments(text);
    ASSERT_FALSE(docs.empty());
    EXPECT_FALSE(docs[0].error.empty()) << text.substr(0, 40);
  }
  // Just under the scan's bound: yaml-cpp recurses through it (this must not
  // overflow the stack, also under ASan); it reports an error of its own
  // or the conversion rejects it.
  EXPECT_FALSE(parseYamlDocuments("a: " + std::string(990, '[') + std::string(990, ']'))[0].error.empty());
  // A long flow line is not deep: only its start column and flow depth count.
  auto docs = parseYamlDocuments("a: 1\n");
  std::string wide = "a:\n- addresses: [";
  for (int i = 0; i < 200; ++i) wide += std::string(i ? ", " : "") + "{ip: 198.18.140." + std::to_string(i % 250) + "}";
  docs = parseYamlDocuments(wide + "]\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_TRUE(docs[0].error.empty()) << docs[0].error;
  // 100 levels of flow nesting: past the exact limit, caught in conversion.
  docs = parseYamlDocuments("a: " + std::string(100, '[') + std::string(100, ']') + "\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("limit kNestingDepth"), std::string::npos) << docs[0].error;
}

TEST(YamlJsonLimits, AliasBombStopsAtTheNodeBudget) {
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", " : "") + prev;
    bomb += "]\n";
  }
  ASSERT_LT(bomb.size(), 1100u);
  auto docs = parseYamlDocuments(bomb);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("limit kYamlAliasNodes"), std::string::npos) << docs[0].error;
  // Aliases used as YAML intends (a few shared fragments) are fine.
  docs = parseYamlDocuments("base: &b {app: web}\nx: *b\ny: *b\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_TRUE(docs[0].error.empty()) << docs[0].error;
  EXPECT_EQ(docs[0].value["y"]["app"], "web");
}

TEST(YamlJsonLimits, InvalidUtf8RejectsTheFileNamingThePlace) {
  auto docs = parseYamlDocuments("kind: Service\nmetadata:\n  name: we\xff" "b\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("not valid UTF-8 at line 3, column 11"), std::string::npos)
      << docs[0].error;
  EXPECT_EQ(invalidUtf8Offset("ok \xC3\xA9 \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(invalidUtf8Offset("\xC0\x80"), 0u);          // overlong
  EXPECT_EQ(invalidUtf8Offset("a\xED\xA0\x80"), 1u);     // surrogate
  EXPECT_EQ(invalidUtf8Offset("ab\xE2\x82"), 2u);        // cut short
}

TEST(YamlJsonLimits, DuplicateKeysAreErrors) {
  auto docs = parseYamlDocuments("kind: Service\nkind: Pod\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("duplicate key \"kind\""), std::string::npos) << docs[0].error;
  EXPECT_NE(docs[0].error.find("line 2"), std::string::npos) << docs[0].error;
  docs = parseYamlDocuments(R"({"kind": "Service", "kind": "Pod"})");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_NE(docs[0].error.find("duplicate key \"kind\""), std::string::npos) << docs[0].error;
}

TEST(YamlJsonLimits, ErrorsNeverQuoteMuchInput) {
  std::string big = "[" + std::string(1 << 20, '1') + "]";  // one huge number: a syntax error in YAML too
  auto docs = parseYamlDocuments("a: b\n---\n" + std::string(200000, 'x') + ": : :\n");
  for (const auto& d : docs) EXPECT_LE(d.error.size(), 600u);
}

TEST(YamlJsonLimits, StrictJsonParser) {
  nlohmann::json v;
  std::string err;
  EXPECT_TRUE(parseJsonStrict(R"({"cmd": "snapshot"})", 8, &v, &err));
  EXPECT_EQ(v["cmd"], "snapshot");
  EXPECT_FALSE(parseJsonStrict("[[[[1]]]]", 3, &v, &err));
  EXPECT_NE(err.find("limit"), std::string::npos);
  EXPECT_FALSE(parseJsonStrict("{\"a\": \"\xff\"}", 8, &v, &err));
  EXPECT_FALSE(parseJsonStrict("{} {}", 8, &v, &err));
}

TEST(YamlJsonStream, ListItemsAreHandedOverOneByOne) {
  std::vector<json> got;
  auto keep = [&](json& item) { got.push_back(std::move(item)); };
  EXPECT_TRUE(streamJsonList(R"({"apiVersion": "v1", "kind": "List", "metadata": {"x": [1, {"y": 2}]},
                                "items": [{"a": [1, {"b": null}]}, 7, "s", [], {}]})",
                             8, 10, keep));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], json::parse(R"({"a": [1, {"b": null}]})"));
  EXPECT_EQ(got[1], 7);
  EXPECT_EQ(got[2], "s");
  EXPECT_EQ(got[3], json::array());
  EXPECT_EQ(got[4], json::object());
  got.clear();
  EXPECT_TRUE(streamJsonList(R"({"kind": "List", "apiVersion": null, "items": []})", 8, 10, keep));
  EXPECT_TRUE(got.empty());
}

// Anything but the plain shape is refused: the caller then parses the
// text the ordinary way, which reports what is wrong.
TEST(YamlJsonStream, RefusesAllButThePlainShape) {
  auto drop = [](json&) {};
  for (const char* text : {
           R"({"items": [{}], "kind": "List"})",                 // kind after items
           R"({"kind": "Service", "items": []})",                // not a List
           R"({"kind": 5, "items": []})",
           R"({"kind": "List", "apiVersion": 1, "items": []})",  // read by the List's parse
           R"({"kind": "List", "kind": "List", "items": []})",   // duplicate keys
           R"({"kind": "List", "items": [{"a": 1, "a": 2}]})",
           R"({"kind": "List", "metadata": {"a": 1, "a": 2}, "items": []})",
           R"({"kind": "List", "items": {}})",                   // items not a list
           R"({"kind": "List", "items": []} x)",                 // trailing text
           R"({"kind": "List", "items": [{"a": {"b": {}}}]})",   // deeper than 4
           R"({"kind": "List", "items": [1, 2, 3, 4]})",         // more than 3 items
           "{\"kind\": \"List\", \"items\": [\"\xff\"]}",            // not UTF-8
           R"([{"kind": "List", "items": []}])",
           R"({"kind": "List", "items": [)",
       })
    EXPECT_FALSE(streamJsonList(text, 4, 3, drop)) << text;
  EXPECT_TRUE(streamJsonList(R"({"kind": "List", "items": [{"a": {"b": 1}}, 2, 3]})", 4, 3, drop));
}

}  // namespace ferry
