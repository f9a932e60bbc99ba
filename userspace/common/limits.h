// The agent's input limits, in one place (README, "Limits"). Each one
// bounds memory, stack or time an input can cost; exceeding one is an error
// that names the file (or client) and the limit, never a crash or a stall.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ferry::limits {

// A manifest file larger than this is not read (checked with fstat before
// reading). The largest real manifests (a List of a few thousand objects)
// stay well under it.
constexpr size_t kManifestFileBytes = 3u << 20;  // 3 MiB, the apiserver's request body limit
// Documents (`---`) in one file, and objects in one file's `kind: List`s.
constexpr size_t kDocumentsPerFile = 10000;
// Nesting of mappings/sequences in one document. Kubernetes objects nest
// about 10 deep; the parsers (yaml-cpp, the JSON tree's destructor) recurse,
// so the depth is checked before they run.
constexpr size_t kNestingDepth = 64;
// YAML nodes per file. yaml-cpp needs about 1.5 us per node and runs in
// the agent's loop, so this bounds one file's parse to a few hundred ms:
// checked before parsing (lines plus flow items, which bound the nodes)
// and while converting (aliases count every node they expand to).
constexpr size_t kYamlNodesPerFile = 200000;
// Nodes reached through aliases of collections (an alias to a mapping or
// sequence expands to a copy of it) per file. Manifests rarely use aliases;
// a billion-laughs bomb stops here after a few milliseconds.
constexpr size_t kYamlAliasNodes = 10000;
// A control request line (ferryctl sends ~30 bytes).
constexpr size_t kControlRequestBytes = 64u << 10;
// Control clients served at once; more wait in the listen backlog.
constexpr size_t kControlClients = 64;
// A control client must send its request, and read its reply, within this.
constexpr int kControlClientMs = 5000;
// Longest error message (and longest quote of input in one); longer ones are
// cut with "...".
constexpr size_t kErrorMessageBytes = 512;
// Longest quote of an input value inside an error message.
constexpr size_t kQuotedValueBytes = 120;

// `s` cut to at most `max` bytes at a UTF-8 character boundary, with "..."
// appended when cut.
inline std::string truncate(std::string_view s, size_t max = kErrorMessageBytes) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not mid-character
  return std::string(s.substr(0, n)) + "...";
}

// JSON text of `v` for messages and replies: invalid UTF-8 replaced by
// U+FFFD (never throws type_error 316), cut to `max` bytes.
inline std::string dumpSafe(const nlohmann::json& v, size_t max = kQuotedValueBytes) {
  return truncate(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max);
}

}  // namespace ferry::limits
