#include "agent/source.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

// One notified file as a change: content nullopt when it is gone (or not
// a manifest name), an error when it is there but unusable.
FileChange DirectorySource::read(const std::string& name) const {
  FileChange c{(fs::path(dir_) / name).string(), std::nullopt};
  if (!isManifestName(name)) return c;
  std::string content, error;
  if (!readManifest(c.path, &content, &error)) return c;
  c.content = std::move(content);
  c.error = std::move(error);
  return c;
}

std::vector<FileChange> DirectorySource::listAll() const {
  std::vector<FileChange> out;
  std::set<std::string> present;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    FileChange c = read(e.path().filename().string());
    if (!c.content) continue;
    present.insert(c.path);
    out.push_back(std::move(c));
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
        changes.push_back(read(name));
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
        changes.push_back(read(name));
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
