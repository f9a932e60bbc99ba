#include "agent/source.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/limits.h"

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

// Reads one manifest without ever blocking or reading without bound:
// O_NONBLOCK so that a FIFO named *.yaml cannot stall the loop, fstat on
// the opened file (no race with a rename) for its type and size. False
// when the file vanished; *error set for a file that is there but unusable.
bool DirectorySource::readManifest(const std::string& path, std::string* content,
                                   std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    *error = std::string("cannot open: ") + std::strerror(errno);
    return true;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    *error = S_ISDIR(st.st_mode) ? "is a directory, not a manifest file"
                                 : "not a regular file (a FIFO, socket or device): not read";
    return true;
  }
  if (size_t(st.st_size) > limits::kManifestFileBytes) {
    close(fd);
    *error = "file is " + std::to_string(st.st_size) + " bytes, more than the limit of " +
             std::to_string(limits::kManifestFileBytes) + " (kManifestFileBytes): not read";
    return true;
  }
  content->resize(size_t(st.st_size));
  size_t got = 0;
  while (got < content->size()) {
    ssize_t n = ::read(fd, content->data() + got, content->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shrank under us: the next event re-reads
    got += size_t(n);
  }
  content->resize(got);
  close(fd);
  return true;
}

std::vector<SourceFile> DirectorySource::readAll() {
  std::vector<SourceFile> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!isManifestName(name)) continue;
    SourceFile f{e.path().string(), ""};
    if (!readManifest(f.path, &f.content, &f.error)) continue;  // gone: the next event re-reads
    files.push_back(std::move(f));
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
