// Where Kubernetes object definitions come from. The agent sees only this
// interface: the manifest directory is the built-in source; a Kubernetes
// API list/watch source will implement the same.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "model/manifest.h"

namespace ferry {

class DefinitionSource {
 public:
  virtual ~DefinitionSource() = default;
  // Everything currently defined.
  virtual std::vector<SourceFile> readAll() = 0;
  // A descriptor that becomes readable when definitions may have changed.
  virtual int pollFd() const = 0;
  // Drains pending notifications; true if anything relevant changed.
  virtual bool drain() = 0;
  virtual std::string describe() const = 0;
};

// Every *.yaml, *.yml and *.json file directly in a directory, watched
// with inotify.
class DirectorySource : public DefinitionSource {
 public:
  static Expected<std::unique_ptr<DirectorySource>> open(const std::string& dir);
  ~DirectorySource() override;
  std::vector<SourceFile> readAll() override;
  int pollFd() const override { return fd_; }
  bool drain() override;
  std::string describe() const override { return "manifest directory " + dir_; }
  static bool isManifestName(const std::string& name);
  // One file's content, read without blocking and at most
  // limits::kManifestFileBytes; see source.cpp.
  static bool readManifest(const std::string& path, std::string* content, std::string* error);

 private:
  DirectorySource(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_;
};

}  // namespace ferry
