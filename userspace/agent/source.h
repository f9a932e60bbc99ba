// Where Kubernetes object definitions come from. The agent sees only this
// interface: object events (added / modified / deleted, keyed by kind,
// namespace and name, model/object_store.h) into one object store. The
// manifest directory is the built-in source; a Kubernetes API list/watch
// source implements the same: its list is the first collect() (events
// diffed against what was delivered before, never a flush), its watch
// events the later ones, a 410 Gone a re-list that is itself diffed.
#pragma once

#include <memory>
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
  virtual std::string describe() const = 0;
};

// Every *.yaml, *.yml and *.json file directly in a directory, watched
// with inotify. Only files named by notifications are read again, and
// each is diffed against what it held (FileTracker); IN_Q_OVERFLOW (or
// the directory itself moving) re-lists every file, diffed the same way.
// A burst of notified files is read at most kFilesPerCollect at a time,
// so that DNS, health checks and control requests are served between
// slices (each file stays whole: its objects change together).
// Services kept at a last good version while their manifest is invalid
// are persisted in `lastGoodPath` (when not empty) and survive a restart.
class DirectorySource : public DefinitionSource {
 public:
  static Expected<std::unique_ptr<DirectorySource>> open(const std::string& dir,
                                                         const std::string& lastGoodPath = "");
  ~DirectorySource() override;
  int pollFd() const override { return fd_; }
  bool drain() override;
  SourceUpdate collect() override;
  bool more() const override { return !dirty_.empty(); }
  std::string describe() const override { return "manifest directory " + dir_; }
  static bool isManifestName(const std::string& name);
  static constexpr size_t kFilesPerCollect = 64;

 private:
  DirectorySource(std::string dir, int fd, std::unique_ptr<LastGoodStore> lastGood);
  std::optional<std::string> read(const std::string& name) const;
  std::vector<FileChange> listAll() const;

  std::string dir_;
  int fd_;
  std::unique_ptr<LastGoodStore> lastGood_;
  FileTracker tracker_;
  bool listed_ = false, relist_ = false;
  std::set<std::string> dirty_;  // file names notified since the last collect()
};

}  // namespace ferry
