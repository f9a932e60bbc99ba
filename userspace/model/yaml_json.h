// The yaml-cpp boundary: manifest text in, nlohmann::json documents out.
// yaml-cpp throws; nothing thrown here escapes. Each document is parsed on
// its own so that one syntax error cannot hide the other documents.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry {

struct YamlDocument {
  int index = 0;           // 1-based, counting non-empty documents in the file
  int firstLine = 1;       // 1-based line of the document in the file
  nlohmann::json value;    // meaningful only when error is empty
  std::string error;       // "invalid YAML at line 4, column 3: ..."
};

// Splits on `---` / `...` markers and converts every non-empty document.
// Scalars follow the YAML 1.2 core schema: quoted scalars are strings,
// plain ones become null / bool / integer / float when they look like one.
//
// Hostile input is an error document, never a crash or a stall (limits in
// common/limits.h): bytes that are not UTF-8 (the whole file is rejected,
// as the apiserver rejects them), more than kDocumentsPerFile documents,
// nesting deeper than kNestingDepth (checked without recursion before any
// recursive parser runs), more than kYamlNodesPerFile nodes after alias
// expansion, and duplicate mapping keys (the apiserver's strict decoding).
std::vector<YamlDocument> parseYamlDocuments(const std::string& content);

// Strict JSON: a single value nested at most `maxDepth` deep, no duplicate
// keys, valid UTF-8. Iterative (SAX): no input can overflow the stack.
// False with *error set ("line 3, column 7: ...", at most
// limits::kErrorMessageBytes) on any problem.
bool parseJsonStrict(const std::string& text, size_t maxDepth, nlohmann::json* out,
                     std::string* error);

// A JSON `kind: List` (what `kubectl get -o json` and the benchmark write)
// read item by item: `onItem(item)` gets each element of the top-level
// "items" array as soon as it is complete, so the file is never held as
// one tree (building and freeing that tree cost as much as the typed
// parse). The checks are parseJsonStrict's (`maxDepth` counted from the
// root, no duplicate keys). Only the plain shape is taken: a root object
// whose "kind" is "List" and comes before "items", "apiVersion" a string,
// at most `maxItems` items. False on anything else or any problem, after
// which what onItem got must be dropped and the text parsed the ordinary
// way (parseYamlDocuments), whose errors are the ones to report.
bool streamJsonList(const std::string& text, size_t maxDepth, size_t maxItems,
                    const std::function<void(nlohmann::json& item)>& onItem);

// Offset of the first byte of `s` that is not part of a well-formed UTF-8
// sequence (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF), or std::string::npos.
size_t invalidUtf8Offset(std::string_view s);

}  // namespace ferry
