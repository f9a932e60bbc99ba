#include "model/yaml_json.h"

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <regex>
#include <set>
#include <stdexcept>

#include "common/limits.h"

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

// Raised by the conversion when a limit is hit; becomes the document's
// error.
struct LimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// yaml-cpp 0.7 keeps an alias as a shared node, so loading an alias bomb is
// cheap; expanding it here is what would blow up. Every node visited
// (aliases expand) costs one unit of the file's budget.
class Converter {
 public:
  explicit Converter(size_t* budget) : budget_(budget) {}
  json toJson(const YAML::Node& n, size_t depth, bool viaAlias = false) {
    if (*budget_ == 0)
      throw LimitError("more than " + std::to_string(limits::kYamlNodesPerFile) +
                       " YAML nodes after alias expansion (limit kYamlNodesPerFile; an alias bomb?)");
    --*budget_;
    // A collection met a second time (same position in the text) is an
    // alias being expanded; everything under it counts against the alias
    // budget.
    if (!viaAlias && (n.IsMap() || n.IsSequence()) && !n.Mark().is_null())
      viaAlias = !seen_.insert(n.Mark().pos).second;
    if (viaAlias && ++aliasNodes_ > limits::kYamlAliasNodes)
      throw LimitError("more than " + std::to_string(limits::kYamlAliasNodes) +
                       " YAML nodes expanded from aliases (limit kYamlAliasNodes; an alias bomb?)");
    if (depth > limits::kNestingDepth)
      throw LimitError("nested deeper than " + std::to_string(limits::kNestingDepth) +
                       " levels (limit kNestingDepth)");
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        json obj = json::object();
        for (const auto& kv : n) {
          std::string key = kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first);
          if (obj.contains(key))
            throw YAML::Exception(kv.first.Mark(),
                                  "duplicate key \"" + limits::truncate(key, limits::kQuotedValueBytes) +
                                      "\" (keys of a mapping must be unique)");
          obj[key] = toJson(kv.second, depth + 1, viaAlias);
        }
        return obj;
      }
      case YAML::NodeType::Sequence: {
        json arr = json::array();
        for (const auto& item : n) arr.push_back(toJson(item, depth + 1, viaAlias));
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

 private:
  size_t* budget_;
  std::set<int> seen_;  // positions of the collections converted so far
  size_t aliasNodes_ = 0;
};

// An upper bound of the nesting yaml-cpp will recurse through for `text`,
// computed without recursion: on each line, the column where content
// starts after block indicators ("- ", "? ", ": ") plus the flow depth
// ([ and { outside quoted scalars and comments). Block nesting needs one
// more column per level, so the column bounds it. Returns the line (1-based,
// within text) where the bound first passes `max`, or 0.
int deepLine(const std::string& text, size_t max) {
  size_t flow = 0;
  char quote = 0;  // inside a quoted scalar (may span lines)
  int line = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    size_t i = pos;
    size_t base = 0;  // the column where this line's content starts
    if (!quote) {
      while (i < end && (text[i] == ' ' || text[i] == '\t')) ++i;
      while (i + 1 < end && (text[i] == '-' || text[i] == '?' || text[i] == ':') &&
             (text[i + 1] == ' ' || text[i + 1] == '\t')) {
        i += 2;
        while (i < end && (text[i] == ' ' || text[i] == '\t')) ++i;
      }
      base = i - pos;
      if (base + flow > max) return line;
    }
    char prev = ' ';
    for (; i < end; ++i) {
      char ch = text[i];
      if (quote) {
        if (quote == '"' && ch == '\\') ++i;
        else if (ch == quote) quote = 0;
        prev = 'x';
        continue;
      }
      if (ch == '#' && (prev == ' ' || prev == '\t')) break;  // comment
      if ((ch == '"' || ch == '\'') &&
          (prev == ' ' || prev == '\t' || prev == '[' || prev == '{' || prev == ',' || prev == ':'))
        quote = ch;
      else if (ch == '[' || ch == '{') {
        if (++flow + base > max) return line;
      } else if ((ch == ']' || ch == '}') && flow > 0) {
        --flow;
      }
      prev = ch;
    }
    pos = end + 1;
    ++line;
  }
  return 0;
}

// yaml-cpp recurses once or twice per level of the bound above; this many
// levels are safe on the agent's stack. The exact kNestingDepth is checked
// during conversion.
constexpr size_t kYamlScanBound = 1000;

YamlDocument parseChunk(const Chunk& c, int index, size_t* budget) {
  YamlDocument doc;
  doc.index = index;
  doc.firstLine = c.firstLine;
  if (int l = deepLine(c.text, kYamlScanBound)) {
    doc.error = "nested or indented too deep at line " + std::to_string(c.firstLine + l - 1) +
                " (limit kNestingDepth: " + std::to_string(limits::kNestingDepth) + " levels)";
    return doc;
  }
  try {
    doc.value = Converter(budget).toJson(YAML::Load(c.text), 1);
  } catch (const YAML::Exception& e) {
    doc.error = e.mark.is_null() ? "invalid YAML: " + e.msg
                                 : "invalid YAML at line " +
                                       std::to_string(c.firstLine + e.mark.line) + ", column " +
                                       std::to_string(e.mark.column + 1) + ": " + e.msg;
  } catch (const LimitError& e) {
    doc.error = e.what();
  } catch (const std::exception& e) {
    doc.error = std::string("invalid YAML: ") + e.what();
  }
  doc.error = limits::truncate(doc.error);
  if (!doc.error.empty()) doc.value = nullptr;
  return doc;
}

// Builds the DOM iteratively, with the checks the default parser lacks.
class StrictSax : public nlohmann::json_sax<json> {
 public:
  explicit StrictSax(size_t maxDepth) : maxDepth_(maxDepth) {}
  json root;
  std::string error;

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t v, const string_t&) override { return put(v); }
  bool string(string_t& v) override { return put(std::move(v)); }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (stack_.back()->contains(k))
      return fail("duplicate key \"" + limits::truncate(k, limits::kQuotedValueBytes) +
                  "\" (keys of an object must be unique)");
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&,
                   const nlohmann::detail::exception& e) override {
    if (error.empty()) error = "byte " + std::to_string(pos) + ": " + e.what();
    return false;
  }

 private:
  bool fail(std::string why) {
    error = std::move(why);
    return false;
  }
  json* place(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  bool put(json v) {
    place(std::move(v));
    return true;
  }
  bool open(json v) {
    if (stack_.size() >= maxDepth_)
      return fail("nested deeper than " + std::to_string(maxDepth_) +
                  " levels (limit kNestingDepth)");
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  size_t maxDepth_;
  std::vector<json*> stack_;
  std::string key_;
};

// streamJsonList's reader: the root object's members are checked (and
// their values, other than "items", built and dropped); each item is built
// on a stack of its own and handed over when complete. Returning false
// stops the parse.
class ListStreamSax : public nlohmann::json_sax<json> {
 public:
  ListStreamSax(size_t maxDepth, size_t maxItems, const std::function<void(json&)>& onItem)
      : maxDepth_(maxDepth), maxItems_(maxItems), onItem_(onItem) {}
  bool done = false;

  bool null() override { return scalar(nullptr); }
  bool boolean(bool v) override { return scalar(v); }
  bool number_integer(number_integer_t v) override { return scalar(v); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(v); }
  bool number_float(number_float_t v, const string_t&) override { return scalar(v); }
  bool string(string_t& v) override {
    if (stack_.empty() && state_ == State::Root && rootKey_ == "kind") {
      if (v != "List") return false;
      isList_ = true;
      return true;
    }
    if (stack_.empty() && state_ == State::Root && rootKey_ == "apiVersion") return true;
    return scalar(std::move(v));
  }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    if (state_ == State::Start) return state_ = State::Root, true;
    return open(json::object());
  }
  bool start_array(std::size_t) override {
    if (state_ == State::Root && stack_.empty() && rootKey_ == "items") {
      if (!isList_) return false;
      state_ = State::Items;
      return true;
    }
    return open(json::array());
  }
  bool end_object() override {
    if (stack_.empty()) {  // the root
      done = state_ == State::Root;
      state_ = State::End;
      return done;
    }
    return close();
  }
  bool end_array() override {
    if (stack_.empty() && state_ == State::Items) return state_ = State::Root, true;
    return close();
  }
  bool key(string_t& k) override {
    if (stack_.empty()) {
      if (state_ != State::Root || !rootKeys_.insert(k).second) return false;
      rootKey_ = std::move(k);
      return true;
    }
    if (stack_.back()->contains(k)) return false;
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  enum class State { Start, Root, Items, End };
  // Levels above a value: the root object, and the items array for items.
  size_t base() const { return state_ == State::Items ? 2 : 1; }
  // A value outside any container of its own: a root member or an item.
  bool top(json v) {
    if (state_ == State::Items) {
      if (++items_ > maxItems_) return false;
      onItem_(v);
      return true;
    }
    // A root member other than kind, apiVersion (strings, handled above)
    // and items: dropped, unless it is a kind or apiVersion of another
    // type (read, and reported, by the List's ordinary parse).
    if (rootKey_ == "kind" || rootKey_ == "apiVersion") return v.is_null() && rootKey_ != "kind";
    if (rootKey_ == "items") return false;
    return true;
  }
  bool scalar(json v) {
    if (stack_.empty()) return top(std::move(v));
    json& t = *stack_.back();
    if (t.is_array()) t.push_back(std::move(v));
    else t[key_] = std::move(v);
    return true;
  }
  bool open(json v) {
    if (stack_.size() + base() >= maxDepth_) return false;
    if (stack_.empty()) {
      if (state_ == State::Root && (rootKey_ == "kind" || rootKey_ == "apiVersion" || rootKey_ == "items"))
        return false;
      tree_ = std::move(v);
      stack_.push_back(&tree_);
      return true;
    }
    json& t = *stack_.back();
    json* slot;
    if (t.is_array()) {
      t.push_back(std::move(v));
      slot = &t.back();
    } else {
      slot = &(t[key_] = std::move(v));
    }
    stack_.push_back(slot);
    return true;
  }
  bool close() {
    stack_.pop_back();
    if (!stack_.empty()) return true;
    bool ok = top(std::move(tree_));
    tree_ = nullptr;
    return ok;
  }

  size_t maxDepth_, maxItems_;
  const std::function<void(json&)>& onItem_;
  State state_ = State::Start;
  bool isList_ = false;
  std::set<std::string> rootKeys_;
  std::string rootKey_, key_;
  size_t items_ = 0;
  json tree_;                // the value being built
  std::vector<json*> stack_;  // its open containers
};

YamlDocument errorDocument(int firstLine, std::string why) {
  YamlDocument d;
  d.index = 1;
  d.firstLine = firstLine;
  d.error = limits::truncate(why);
  return d;
}

}  // namespace

bool parseJsonStrict(const std::string& text, size_t maxDepth, json* out, std::string* error) {
  StrictSax sax(maxDepth);
  bool ok = false;
  try {
    ok = json::sax_parse(text, &sax, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {  // nothing is expected to throw; stay total
    sax.error = e.what();
  }
  if (!ok) {
    *error = limits::truncate(sax.error.empty() ? "not valid JSON" : sax.error);
    return false;
  }
  *out = std::move(sax.root);
  return true;
}

bool streamJsonList(const std::string& text, size_t maxDepth, size_t maxItems,
                    const std::function<void(json& item)>& onItem) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') return false;
  ListStreamSax sax(maxDepth, maxItems, onItem);
  try {
    return json::sax_parse(text, &sax, json::input_format_t::json, /*strict=*/true) && sax.done;
  } catch (const std::exception&) {  // nothing is expected to throw; stay total
    return false;
  }
}

size_t invalidUtf8Offset(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;  // <= U+10FFFF
    else return i;
    if (i + len > n || b[i + 1] < lo || b[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((b[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string::npos;
}

namespace {

// A JSON file (what the Kubernetes API and `kubectl -o json` produce) is
// valid YAML, but yaml-cpp takes seconds for megabytes of it; a JSON
// parser takes milliseconds. A syntax error falls through to yaml-cpp
// (YAML flow style like `{a: b}`); a limit or a duplicate key is final.
bool parseAsJson(const std::string& content, std::vector<YamlDocument>* docs) {
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (content[first] != '{' && content[first] != '[')) return false;
  int firstLine = 1 + static_cast<int>(std::count(content.begin(), content.begin() + first, '\n'));
  json v;
  std::string why;
  if (!parseJsonStrict(content, limits::kNestingDepth, &v, &why)) {
    if (why.find("(limit ") != std::string::npos || why.rfind("duplicate key", 0) == 0) {
      docs->push_back(errorDocument(firstLine, "invalid JSON: " + why));
      return true;
    }
    return false;
  }
  YamlDocument d;
  d.index = 1;
  d.firstLine = firstLine;
  d.value = std::move(v);
  docs->push_back(std::move(d));
  return true;
}

// "line 3, column 5" of a byte offset.
std::string lineColumn(const std::string& s, size_t off) {
  size_t line = 1 + std::count(s.begin(), s.begin() + off, '\n');
  size_t bol = off == 0 ? std::string::npos : s.rfind('\n', off - 1);
  size_t col = off - (bol == std::string::npos ? 0 : bol + 1) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace

std::vector<YamlDocument> parseYamlDocuments(const std::string& content) {
  std::vector<YamlDocument> docs;
  if (size_t bad = invalidUtf8Offset(content); bad != std::string::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(content[bad]));
    docs.push_back(errorDocument(1, "not valid UTF-8 at " + lineColumn(content, bad) + " (byte " +
                                        hex + "): manifests must be UTF-8"));
    return docs;
  }
  if (parseAsJson(content, &docs)) return docs;
  // Every YAML node needs a line or a flow separator of its own.
  size_t items = 0;
  for (char ch : content) items += ch == '\n' || ch == ',' || ch == '[' || ch == '{';
  if (items > limits::kYamlNodesPerFile) {
    docs.push_back(errorDocument(1, "more than " + std::to_string(limits::kYamlNodesPerFile) +
                                        " YAML lines and flow items (limit kYamlNodesPerFile): not parsed"));
    return docs;
  }
  size_t budget = limits::kYamlNodesPerFile;
  for (const Chunk& c : splitChunks(content)) {
    if (isBlank(c.text)) continue;
    if (docs.size() >= limits::kDocumentsPerFile) {
      docs.push_back(errorDocument(
          c.firstLine, "more than " + std::to_string(limits::kDocumentsPerFile) +
                           " documents in one file (limit kDocumentsPerFile); the rest are ignored"));
      docs.back().index = int(docs.size());
      break;
    }
    docs.push_back(parseChunk(c, int(docs.size()) + 1, &budget));
  }
  return docs;
}

}  // namespace ferry
