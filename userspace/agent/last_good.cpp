#include "agent/last_good.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ferry {

using nlohmann::json;

std::string writeFileAtomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  size_t done = 0;
  bool ok = true;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += size_t(n);
  }
  ok = ok && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return "";
  if (ok) err = errno;
  unlink(tmp.c_str());
  return "cannot write " + path + ": " + std::strerror(err);
}

LastGoodStore::LastGoodStore(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (!j.is_object() || !j.contains("services") || !j["services"].is_object()) return;
  for (const auto& [key, v] : j["services"].items()) {
    if (!v.is_object() || !v.contains("file") || !v["file"].is_string() || !v.contains("object"))
      continue;
    saved_[key] = {v["file"].get<std::string>(), v["object"].dump()};
  }
}

ObjectPtr LastGoodStore::lookup(const ObjectKey& key, const std::string& file) const {
  if (key.kind != ObjectKind::Service) return nullptr;
  auto it = saved_.find(key.nsName());
  if (it == saved_.end() || it->second.first != file) return nullptr;
  Manifests m = parseManifests({{file, it->second.second}});
  if (m.services.size() != 1 || m.services[0].key() != key.nsName()) return nullptr;
  return std::make_shared<const ObjectValue>(std::move(m.services[0]));
}

std::string LastGoodStore::save(const std::map<std::string, ObjectPtr>& held) {
  if (held == written_) return "";
  json services = json::object();
  std::map<std::string, std::pair<std::string, std::string>> next;
  for (const auto& [key, obj] : held) {
    const Service* s = std::get_if<Service>(obj.get());
    if (!s) continue;
    services[key] = {{"file", s->file.str()}, {"object", s->object.get()}};
    next[key] = {s->file.str(), s->object.get().dump()};
  }
  std::string err = writeFileAtomically(path_, json{{"services", services}}.dump() + "\n");
  if (!err.empty()) return err;
  written_ = held;
  saved_ = std::move(next);
  return "";
}

}  // namespace ferry
