// Where Kubernetes object definitions come from. The agent sees only this
// interface: object events (added / modified / deleted, keyed by kind,
// namespace and name, model/object_store.h) into one object store. The
// manifest directory is the built-in source; a Kubernetes API list/watch
// source implements the same: its list is the first collect() (events
// diffed against what was delivered before, never a flush), its watch
// events the later ones, a 410 Gone a re-list that is itself diffed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <set>
#include <string>
#include <vector>

#include "agent/last_good.h"
#include "common/status.h"
#include "model/file_tracker.h"
#include "model/object_store.h"

namespace ferry {

class DefinitionSource {
 public:
  virtual ~DefinitionSource() = default;
  // A descriptor that becomes readable when definitions may have changed.
  virtual int pollFd() const = 0;
  // Drains pending notifications; true if collect() has work.
  virtual bool drain() = 0;
  // The events since the last call; the first call lists everything. A
  // source may hand a large backlog over in slices: more() is then true
  // and the caller collects again after serving its other clients.
  virtual SourceUpdate collect() = 0;
  virtual bool more() const { return false; }
  // False while the source's first complete list is not in yet (the
  // Kubernetes source until every initial list is synced): the agent
  // plans nothing before, so the dataplane never sees half a cluster.
  virtual bool ready() const { return true; }
  virtual std::string describe() const = 0;
};

// Every *.yaml, *.yml and *.json file directly in a directory, watched
// with inotify. Only files named by notifications are read again, and
// each is diffed against what it held (FileTracker); IN_Q_OVERFLOW (or
// the directory itself moving) re-lists every file, diffed the same way.
// Files are read and parsed on a thread of the source's own (the first
// list excepted: it is read by the first collect(), before anything is
// planned); a burst of notified files is handed over kFilesPerCollect at a
// time, one slice per collect(), each file whole.
// Services kept at a last good version while their manifest is invalid
// are persisted in `lastGoodPath` (when not empty) and survive a restart.
class DirectorySource : public DefinitionSource {
 public:
  static Expected<std::unique_ptr<DirectorySource>> open(const std::string& dir,
                                                         const std::string& lastGoodPath = "");
  ~DirectorySource() override;
  // Readable on inotify events and when the parser thread has results.
  int pollFd() const override { return epfd_; }
  bool drain() override;
  SourceUpdate collect() override;
  bool more() const override;
  std::string describe() const override { return "manifest directory " + dir_; }
  static bool isManifestName(const std::string& name);
  static constexpr size_t kFilesPerCollect = 64;
  // Notified files totalling at most this many bytes are parsed on the
  // calling thread when the parser thread is idle (a single edit).
  static constexpr size_t kInlineBytes = 256 * 1024;
  // One file's content, read without blocking and at most
  // limits::kManifestFileBytes; see source.cpp.
  static bool readManifest(const std::string& path, std::string* content, std::string* error);

 private:
  DirectorySource(std::string dir, int fd, std::unique_ptr<LastGoodStore> lastGood);
  FileChange read(const std::string& name) const;
  std::vector<FileChange> listAll() const;
  SourceUpdate parse(std::vector<FileChange> changes, bool relist);
  void work();  // the parser thread

  std::string dir_;
  int fd_;        // inotify
  int epfd_ = -1;  // epoll over fd_ and evfd_
  int evfd_ = -1;  // eventfd: the parser thread has results
  // Owned by the parser thread once it runs (by collect() before that).
  std::unique_ptr<LastGoodStore> lastGood_;
  FileTracker tracker_;
  bool listed_ = false;
  // Reading and parsing happen on a thread of their own, so the event
  // loop keeps serving DNS, health checks and control requests while a
  // large manifest is parsed. Shared with it, under mu_:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> queued_;  // file names notified, not parsed yet
  bool queuedRelist_ = false, stop_ = false;
  bool busy_ = false;  // the thread is parsing (outside mu_)
  std::chrono::steady_clock::time_point queuedSince_{};
  std::deque<SourceUpdate> results_;  // parsed, in order
  std::thread thread_;
};

}  // namespace ferry
