#include "model/yaml_json.h"

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <regex>

namespace ferry {

namespace {

using nlohmann::json;

struct Chunk {
  std::string text;
  int firstLine = 1;
};

bool isMarker(const std::string& line, const char* marker) {
  if (line.compare(0, 3, marker) != 0) return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

// Only blank lines and comments: not a document.
bool isBlank(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    size_t first = text.find_first_not_of(" \t\r", pos);
    if (first < end && text[first] != '#') return false;
    pos = end + 1;
  }
  return true;
}

// A `---` at column 0 always starts a document in YAML (even inside a
// block scalar), so splitting by lines is exact.
std::vector<Chunk> splitChunks(const std::string& content) {
  std::vector<Chunk> chunks(1);
  size_t pos = content.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // UTF-8 BOM
  int lineNo = 1;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(pos, end - pos);
    if (line.rfind('%', 0) == 0) {
      // Directives (%YAML, %TAG) carry nothing we use; dropping them keeps
      // the per-document split simple.
    } else if (isMarker(line, "---")) {
      chunks.push_back({line.substr(3) + "\n", lineNo});
    } else if (isMarker(line, "...")) {
      chunks.push_back({"", lineNo + 1});
    } else {
      chunks.back().text += line + "\n";
    }
    pos = end + 1;
    ++lineNo;
  }
  return chunks;
}

std::optional<json> parseInteger(const std::string& s) {
  std::string_view v = s;
  bool neg = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  int base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
    base = v[1] == 'x' ? 16 : 8;
    v.remove_prefix(2);
  }
  if (v.empty()) return std::nullopt;
  uint64_t u = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), u, base);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  if (!neg) return u <= uint64_t(INT64_MAX) ? json(int64_t(u)) : json(u);
  if (u > uint64_t(INT64_MAX) + 1) return std::nullopt;
  return json(int64_t(0 - u));
}

json resolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (auto i = parseInteger(s)) return *i;
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  return s;  // .inf / .nan have no JSON form; keep them as text
}

json toJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : n) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first);
        obj[key] = toJson(kv.second);
      }
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : n) arr.push_back(toJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      // "!" is yaml-cpp's tag for quoted scalars: always strings.
      if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return n.Scalar();
      return resolvePlain(n.Scalar());
    default:
      return nullptr;
  }
}

YamlDocument parseChunk(const Chunk& c, int index) {
  YamlDocument doc;
  doc.index = index;
  doc.firstLine = c.firstLine;
  try {
    doc.value = toJson(YAML::Load(c.text));
  } catch (const YAML::Exception& e) {
    doc.error = e.mark.is_null() ? "invalid YAML: " + e.msg
                                 : "invalid YAML at line " +
                                       std::to_string(c.firstLine + e.mark.line) + ", column " +
                                       std::to_string(e.mark.column + 1) + ": " + e.msg;
  } catch (const std::exception& e) {
    doc.error = std::string("invalid YAML: ") + e.what();
  }
  return doc;
}

}  // namespace

// A JSON file (what the Kubernetes API and `kubectl -o json` produce) is
// valid YAML, but yaml-cpp takes seconds for megabytes of it; a JSON
// parser takes milliseconds. Anything that is not strict JSON (YAML flow
// style like `{a: b}`) falls through to yaml-cpp.
static bool parseAsJson(const std::string& content, std::vector<YamlDocument>* docs) {
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (content[first] != '{' && content[first] != '[')) return false;
  nlohmann::json v = nlohmann::json::parse(content, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return false;
  YamlDocument d;
  d.index = 1;
  d.firstLine = 1 + static_cast<int>(std::count(content.begin(), content.begin() + first, '\n'));
  d.value = std::move(v);
  docs->push_back(std::move(d));
  return true;
}

std::vector<YamlDocument> parseYamlDocuments(const std::string& content) {
  std::vector<YamlDocument> docs;
  if (parseAsJson(content, &docs)) return docs;
  for (const Chunk& c : splitChunks(content)) {
    if (isBlank(c.text)) continue;
    docs.push_back(parseChunk(c, int(docs.size()) + 1));
  }
  return docs;
}

}  // namespace ferry
