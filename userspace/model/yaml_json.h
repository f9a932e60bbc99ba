// The yaml-cpp boundary: manifest text in, nlohmann::json documents out.
// yaml-cpp throws; nothing thrown here escapes. Each document is parsed on
// its own so that one syntax error cannot hide the other documents.
#pragma once

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
std::vector<YamlDocument> parseYamlDocuments(const std::string& content);

}  // namespace ferry
