// Manifest files -> object events: the pure half of the directory source
// (agent/source.h). Each changed file is parsed alone and its objects are
// diffed against what that file held before; only objects whose effective
// definition changed produce an event. No I/O.
//
// Rules (issue 11, "the object that was working keeps working"):
//  * An object defined in several files belongs to the file that defined
//    it first (at start: the first in path order; later: the earliest
//    arrival). The others are reported as duplicates and ignored; when the
//    owner's file drops it, the next claimant in arrival order takes over.
//  * An invalid object is excluded as a whole: the file's last good
//    version of it stays (or, after a restart, the version the LastGood
//    hook returns); with none, an Invalid event keeps its name taken.
//  * A file with a document that cannot be identified (syntax error, no
//    kind or name) is probably mid-edit: objects that vanished from it
//    stay as they were.
//  * A moved object (file renamed, object moved between files) is one
//    Modified event (its `file` changed) when both sides arrive in the
//    same batch, never a deletion and an addition.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/object_store.h"

namespace ferry {

struct FileChange {
  std::string path;
  std::optional<std::string> content;  // nullopt: the file is gone
  // Set when the file is there but unusable (too large, not a regular
  // file): reported as the file's error, its objects left out.
  std::string error{};
};

class FileTracker {
 public:
  // The last good version of an object that is invalid in `path` and had
  // no good version since start (persisted state); null when unknown.
  using LastGood = std::function<ObjectPtr(const ObjectKey& key, const std::string& path)>;

  explicit FileTracker(LastGood lastGood = {}) : lastGood_(std::move(lastGood)) {}

  // Applies file changes (in any order; a path at most once) and returns
  // the resulting events, and the errors of every file they changed.
  SourceUpdate apply(const std::vector<FileChange>& changes);

  // The files known, for a re-list (files gone from the directory).
  std::vector<std::string> paths() const;
  // Services kept at a last good version while their definition is
  // invalid: what must survive a restart (agent/last_good.h).
  const std::map<std::string /*ns/name*/, ObjectPtr>& heldServices() const { return held_; }

 private:
  struct Claim {
    ObjectPtr good;        // the version in use (null: none yet)
    bool invalid = false;  // the file's current text of it is invalid
  };
  struct FileState {
    uint64_t hash = 0;
    std::map<ObjectKey, Claim> objects;
    std::vector<ManifestError> parseErrors;
  };

  void parseFile(const std::string& path, const std::string& content, const std::string& error,
                 std::set<ObjectKey>* keys);
  void dropFile(const std::string& path, std::set<ObjectKey>* keys);
  std::vector<ManifestError> errorsOf(const std::string& path) const;
  void emit(const ObjectKey& key, SourceUpdate* out);

  LastGood lastGood_;
  std::map<std::string, FileState> files_;
  // Paths defining each object, in arrival order (interned: a file's
  // objects share its path).
  std::map<ObjectKey, std::vector<SharedString>> claimants_;
  std::map<ObjectKey, ObjectPtr> delivered_;
  std::set<ObjectKey> deliveredInvalid_;
  std::map<std::string, ObjectPtr> held_;  // kept up to date by emit()
};

}  // namespace ferry
