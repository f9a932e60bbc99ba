#include "agent/source.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry {

namespace fs = std::filesystem;

bool DirectorySource::isManifestName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;  // editors' temp files, our own state
  auto ends = [&](const std::string& suf) {
    return name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends(".yaml") || ends(".yml") || ends(".json");
}

Expected<std::unique_ptr<DirectorySource>> DirectorySource::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error("--manifests " + dir + " is not a directory");
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return Status::sys("inotify_init1", errno);
  uint32_t mask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY |
                  IN_DELETE_SELF | IN_MOVE_SELF;
  if (inotify_add_watch(fd, dir.c_str(), mask) < 0) {
    int err = errno;
    close(fd);
    return Status::sys("watch " + dir, err);
  }
  return std::unique_ptr<DirectorySource>(new DirectorySource(dir, fd));
}

DirectorySource::~DirectorySource() { close(fd_); }

std::vector<SourceFile> DirectorySource::readAll() {
  std::vector<SourceFile> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!isManifestName(name) || !e.is_regular_file(ec)) continue;
    std::ifstream in(e.path());
    if (!in) continue;  // deleted under us: the next event re-reads
    std::ostringstream ss;
    ss << in.rdbuf();
    files.push_back(SourceFile{e.path().string(), ss.str()});
  }
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return files;
}

bool DirectorySource::drain() {
  alignas(inotify_event) char buf[8192];
  bool relevant = false;
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW)) relevant = true;
      if (ev->len && isManifestName(ev->name)) relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  return relevant;
}

}  // namespace ferry
