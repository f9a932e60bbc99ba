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

DirectorySource::DirectorySource(std::string dir, int fd, std::unique_ptr<LastGoodStore> lastGood)
    : dir_(std::move(dir)),
      fd_(fd),
      lastGood_(std::move(lastGood)),
      tracker_([this](const ObjectKey& k, const std::string& path) -> ObjectPtr {
        return lastGood_ ? lastGood_->lookup(k, path) : nullptr;
      }) {}

Expected<std::unique_ptr<DirectorySource>> DirectorySource::open(const std::string& dir,
                                                                 const std::string& lastGoodPath) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error("--manifests " + dir + " is not a directory");
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return Status::sys("inotify_init1", errno);
  uint32_t mask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                  IN_DELETE_SELF | IN_MOVE_SELF;
  if (inotify_add_watch(fd, dir.c_str(), mask) < 0) {
    int err = errno;
    close(fd);
    return Status::sys("watch " + dir, err);
  }
  std::unique_ptr<LastGoodStore> lg;
  if (!lastGoodPath.empty()) lg = std::make_unique<LastGoodStore>(lastGoodPath);
  return std::unique_ptr<DirectorySource>(new DirectorySource(dir, fd, std::move(lg)));
}

DirectorySource::~DirectorySource() { close(fd_); }

// The content of a manifest file, nullopt when it is gone (or not a
// regular file): deleted under us, the next event tells.
std::optional<std::string> DirectorySource::read(const std::string& name) const {
  std::error_code ec;
  fs::path p = fs::path(dir_) / name;
  if (!isManifestName(name) || !fs::is_regular_file(p, ec)) return std::nullopt;
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<FileChange> DirectorySource::listAll() const {
  std::vector<FileChange> out;
  std::set<std::string> present;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    auto content = read(name);
    if (!content) continue;
    present.insert(e.path().string());
    out.push_back({e.path().string(), std::move(*content)});
  }
  for (const std::string& p : tracker_.paths())
    if (!present.count(p)) out.push_back({p, std::nullopt});
  return out;
}

SourceUpdate DirectorySource::collect() {
  std::vector<FileChange> changes;
  bool relist = !listed_ || relist_;
  if (relist) {
    changes = listAll();
    listed_ = true;
    relist_ = false;
    dirty_.clear();
  } else {
    for (auto it = dirty_.begin(); it != dirty_.end() && changes.size() < kFilesPerCollect;) {
      changes.push_back({(fs::path(dir_) / *it).string(), read(*it)});
      it = dirty_.erase(it);
    }
  }
  SourceUpdate u = tracker_.apply(changes);
  u.relist = relist;
  if (lastGood_) {
    std::string err = lastGood_->save(tracker_.heldServices());
    u.errors[lastGood_->path()] =
        err.empty() ? std::vector<ManifestError>{}
                    : std::vector<ManifestError>{{lastGood_->path(), "", "", err}};
  }
  return u;
}

bool DirectorySource::drain() {
  alignas(inotify_event) char buf[8192];
  bool relevant = false;
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW)) relist_ = relevant = true;
      // Not IN_MODIFY: a file being written is read once it is closed
      // (IN_CLOSE_WRITE) or renamed into place, never half-written.
      constexpr uint32_t kDone = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
      if (ev->len && (ev->mask & kDone) && isManifestName(ev->name)) {
        dirty_.insert(ev->name);
        relevant = true;
      }
      p += sizeof(inotify_event) + ev->len;
    }
  }
  return relevant;
}

}  // namespace ferry
