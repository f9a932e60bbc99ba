#include "agent/source.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
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
  std::unique_ptr<DirectorySource> src(new DirectorySource(dir, fd, std::move(lg)));
  src->evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  src->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (src->evfd_ < 0 || src->epfd_ < 0) return Status::sys("eventfd/epoll", errno);
  for (int f : {src->fd_, src->evfd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = f;
    if (epoll_ctl(src->epfd_, EPOLL_CTL_ADD, f, &ev) < 0) return Status::sys("epoll_ctl", errno);
  }
  return src;
}

DirectorySource::~DirectorySource() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  for (int f : {fd_, evfd_, epfd_})
    if (f >= 0) close(f);
}

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

SourceUpdate DirectorySource::parse(std::vector<FileChange> changes, bool relist) {
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

void DirectorySource::work() {
  for (;;) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return stop_ || queuedRelist_ || !queued_.empty(); });
    if (stop_) return;
    bool relist = queuedRelist_;
    queuedRelist_ = false;
    std::vector<std::string> names;
    if (relist) {
      queued_.clear();
    } else {
      for (auto it = queued_.begin(); it != queued_.end() && names.size() < kFilesPerCollect;)
        names.push_back(*it), it = queued_.erase(it);
    }
    auto since = queuedSince_;
    busy_ = true;
    lk.unlock();
    std::vector<FileChange> changes;
    if (relist) {
      changes = listAll();
    } else {
      for (const std::string& name : names)
        changes.push_back({(fs::path(dir_) / name).string(), read(name)});
    }
    SourceUpdate u = parse(std::move(changes), relist);
    u.notified = since;
    lk.lock();
    results_.push_back(std::move(u));
    busy_ = false;
    lk.unlock();
    uint64_t one = 1;
    if (::write(evfd_, &one, sizeof one) < 0) {
      // the counter is saturated: the loop is awake anyway
    }
  }
}

SourceUpdate DirectorySource::collect() {
  if (!listed_) {
    // The first list, here and now: the agent plans nothing before it.
    listed_ = true;
    SourceUpdate u = parse(listAll(), true);
    thread_ = std::thread([this] { work(); });
    return u;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (results_.empty()) return {};
  SourceUpdate u = std::move(results_.front());
  results_.pop_front();
  return u;
}

bool DirectorySource::more() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !results_.empty();
}

bool DirectorySource::drain() {
  alignas(inotify_event) char buf[8192];
  std::set<std::string> names;
  bool relist = false;
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW)) relist = true;
      // Not IN_MODIFY: a file being written is read once it is closed
      // (IN_CLOSE_WRITE) or renamed into place, never half-written.
      constexpr uint32_t kDone = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
      if (ev->len && (ev->mask & kDone) && isManifestName(ev->name)) names.insert(ev->name);
      p += sizeof(inotify_event) + ev->len;
    }
  }
  uint64_t count = 0;
  if (::read(evfd_, &count, sizeof count) < 0) count = 0;
  std::lock_guard<std::mutex> lk(mu_);
  // A few small files with the parser idle: parse them here and now (a
  // thread handoff costs more than the parse); large ones go to the thread.
  if (!relist && !names.empty() && !busy_ && queued_.empty() && !queuedRelist_ &&
      names.size() <= kFilesPerCollect) {
    std::vector<FileChange> changes;
    size_t bytes = 0;
    for (const std::string& name : names) {
      std::error_code ec;
      auto size = fs::file_size(fs::path(dir_) / name, ec);
      bytes += ec ? 0 : size;
    }
    if (bytes <= kInlineBytes) {
      auto since = std::chrono::steady_clock::now();
      for (const std::string& name : names)
        changes.push_back({(fs::path(dir_) / name).string(), read(name)});
      SourceUpdate u = parse(std::move(changes), false);  // under mu_: the thread is idle
      u.notified = since;
      results_.push_back(std::move(u));
      return true;
    }
  }
  if (!names.empty() || relist) {
    if (queued_.empty() && !queuedRelist_) queuedSince_ = std::chrono::steady_clock::now();
    queued_.insert(names.begin(), names.end());
    queuedRelist_ |= relist;
    cv_.notify_one();
  }
  return !results_.empty();
}

}  // namespace ferry
