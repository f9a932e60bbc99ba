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
