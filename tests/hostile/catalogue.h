// The hostile-input catalogue (tests/hostile/expectations.tsv): loading it
// and putting one case's file in place (copied from cases/, or generated for
// the large and special ones). Shared by the unit test (every case through
// the model) and the e2e test (every case against a live agent).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace hostile {

struct Case {
  std::string file, kind, object, field, message;  // "" where the table says "-"
  bool expectsError() const { return !message.empty(); }
};

inline std::vector<Case> load(const std::string& dir) {
  std::vector<Case> out;
  std::ifstream in(dir + "/expectations.tsv");
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c == "-" ? "" : c);
    if (cols.size() != 5) continue;
    out.push_back({cols[0], cols[1], cols[2], cols[3], cols[4]});
  }
  return out;
}

inline bool writeFile(const std::string& path, const std::string& data) {
  std::ofstream o(path, std::ios::binary);
  o << data;
  return bool(o);
}

inline std::string deep(char open, char close, size_t n) {
  return std::string(n, open) + std::string(n, close);
}

// Writes case `c` at `path` (a file name ending like c.file). False if the
// case is unknown. Special files are created directly (mkfifo, mkdir,
// symlink); regular ones are written whole, so put them in place by a
// rename when an agent watches the directory.
inline bool materialise(const Case& c, const std::string& dir, const std::string& path) {
  const std::string& f = c.file;
  if (f.rfind("gen-", 0) != 0) {
    std::ifstream in(dir + "/cases/" + f, std::ios::binary);
    if (!in) return false;
    std::stringstream ss;
    ss << in.rdbuf();
    return writeFile(path, ss.str());
  }
  if (f == "gen-random-bytes.yaml") {
    std::mt19937 rng(11);
    std::string s(4096, '\0');
    for (char& ch : s) ch = char(rng() & 0xFF);
    return writeFile(path, s);
  }
  if (f == "gen-50mb.yaml") {
    std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: hx-big\n  annotations:\n    a: \"";
    s += std::string(50u << 20, 'x');
    return writeFile(path, s + "\"\n");
  }
  if (f == "gen-big-array.json") {
    std::string s = "[1";
    for (int i = 0; i < 1000000; ++i) s += ",1";
    return writeFile(path, s + "]");
  }
  if (f == "gen-many-docs.yaml") {
    std::string s;
    for (int i = 0; i <= 10000; ++i) s += "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
    return writeFile(path, s);
  }
  if (f == "gen-deep-json.json") return writeFile(path, deep('[', ']', 100000));
  if (f == "gen-deep-in-service.json")
    return writeFile(path, R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hx-deep"},)"
                           R"( "spec": {"ports": [{"port": 80}], "x": )" + deep('[', ']', 100000) + "}}");
  if (f == "gen-deep-yaml.yaml") return writeFile(path, "a: " + deep('[', ']', 100000) + "\n");
  if (f == "gen-deep-block-yaml.yaml") {
    std::string s = "a:\n";
    for (int i = 0; i < 40000; ++i) s += "- ";
    return writeFile(path, s + "x\n");
  }
  if (f == "gen-alias-wide.yaml") {  // one anchor, 20,000 aliases of it
    std::string s = "a: &a {x: 1, y: 2}\nb: [";
    for (int i = 0; i < 20000; ++i) s += i ? ", *a" : "*a";
    return writeFile(path, s + "]\n");
  }
  if (f == "gen-nodes-budget.yaml") {  // 1.1M plain nodes, under the size limit
    std::string s = "a: [";
    for (int i = 0; i < 1100000; ++i) s += i ? ",1" : "1";
    return writeFile(path, s + "]\n");
  }
  if (f == "gen-fifo.yaml") return mkfifo(path.c_str(), 0644) == 0;
  if (f == "gen-dir.yaml") return mkdir(path.c_str(), 0755) == 0;
  if (f == "gen-symlink-loop.yaml") return symlink(path.c_str(), path.c_str()) == 0;
  if (f == "gen-dev-zero.yaml") return symlink("/dev/zero", path.c_str()) == 0;
  if (f == "gen-dangling-symlink.yaml") return symlink("/nonexistent-ferry-target", path.c_str()) == 0;
  return false;
}

// Removes what materialise created (a file, FIFO, symlink or directory).
inline void remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) ::rmdir(path.c_str());
}

}  // namespace hostile
