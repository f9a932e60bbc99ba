// Last good versions of Services whose manifest is invalid now, persisted
// in the agent's state directory so that such a service keeps its
// programming across an agent restart (issue 11 item 11):
//   {"services": {"default/web": {"file": "/m/web.yaml", "object": {...}}}}
// Written crash-safely (temporary file, fsync, rename), and only when the
// set of held services changes.
#pragma once

#include <map>
#include <string>

#include "model/object_store.h"

namespace ferry {

class LastGoodStore {
 public:
  // Reads `path`; a missing or unreadable file is an empty store (the
  // services then wait for a valid manifest, as before).
  explicit LastGoodStore(std::string path);

  // The saved version of `key` from `file`, parsed again; null if none
  // (or no longer valid for this agent's parser).
  ObjectPtr lookup(const ObjectKey& key, const std::string& file) const;
  // Saves `held` (ns/name -> Service) when it differs from what was
  // saved; "" or an error message naming the file.
  std::string save(const std::map<std::string, ObjectPtr>& held);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, std::pair<std::string, std::string>> saved_;  // key -> (file, object JSON)
  std::map<std::string, ObjectPtr> written_;
};

// Writes `data` to `path` via a temporary file in the same directory,
// fsync and rename; "" or an error message naming the file.
std::string writeFileAtomically(const std::string& path, const std::string& data);

}  // namespace ferry
