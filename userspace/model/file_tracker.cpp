#include "model/file_tracker.h"

#include <algorithm>
#include <tuple>

namespace ferry {

namespace {

uint64_t contentHash(const std::string& s) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ s.size();
}

ObjectKey nsNameKey(ObjectKind kind, const std::string& nsName) {
  ObjectKey k{kind, "", nsName};
  auto slash = nsName.find('/');
  if (slash != std::string::npos) {
    k.ns = nsName.substr(0, slash);
    k.name = nsName.substr(slash + 1);
  }
  return k;
}

template <typename T>
void addGood(std::map<ObjectKey, ObjectPtr>& out, std::vector<T>& objs) {
  for (T& o : objs) {
    auto p = std::make_shared<const ObjectValue>(std::move(o));
    out[keyOf(*p)] = p;
  }
}

}  // namespace

std::vector<std::string> FileTracker::paths() const {
  std::vector<std::string> out;
  for (const auto& [p, f] : files_) out.push_back(p);
  return out;
}

void FileTracker::dropFile(const std::string& path, std::set<ObjectKey>* keys) {
  auto it = files_.find(path);
  if (it == files_.end()) return;
  for (const auto& [key, claim] : it->second.objects) {
    auto& who = claimants_[key];
    std::erase(who, path);
    if (who.empty()) claimants_.erase(key);
    keys->insert(key);
  }
  files_.erase(it);
}

void FileTracker::parseFile(const std::string& path, const std::string& content,
                            const std::string& error, std::set<ObjectKey>* keys) {
  uint64_t h = contentHash(error.empty() ? content : "\0error:" + error);
  auto old = files_.find(path);
  if (old != files_.end() && old->second.hash == h) return;  // touched, not changed
  Manifests m = parseManifests({{path, content, error}});
  std::map<ObjectKey, ObjectPtr> good;
  addGood(good, m.services);
  addGood(good, m.pods);
  addGood(good, m.endpoints);
  addGood(good, m.slices);
  addGood(good, m.nodes);
  addGood(good, m.pools);
  std::set<ObjectKey> invalid;
  for (const auto& k : m.invalidServices) invalid.insert(nsNameKey(ObjectKind::Service, k));
  for (const auto& k : m.invalidPools) invalid.insert({ObjectKind::IPAddressPool, "", k});
  for (const auto& label : m.invalidObjects) {
    ObjectKey k;
    if (ObjectKey::parse(label, &k)) invalid.insert(k);
  }

  FileState next;
  next.hash = h;
  next.parseErrors = std::move(m.errors);
  const FileState* prev = old == files_.end() ? nullptr : &old->second;
  auto prevClaim = [&](const ObjectKey& k) -> const Claim* {
    if (!prev) return nullptr;
    auto it = prev->objects.find(k);
    return it == prev->objects.end() ? nullptr : &it->second;
  };
  for (auto& [k, obj] : good) {
    const Claim* pc = prevClaim(k);
    // Keep the old pointer for an unchanged object: no event downstream.
    next.objects[k].good = pc && pc->good && sameObject(*pc->good, *obj) ? pc->good : obj;
  }
  for (const auto& k : invalid) {
    if (good.count(k)) continue;
    Claim c;
    c.invalid = true;
    const Claim* pc = prevClaim(k);
    if (pc && pc->good)
      c.good = pc->good;
    else if (lastGood_)
      c.good = lastGood_(k, path);
    next.objects[k] = c;
  }
  if (!m.brokenFiles.empty() && prev) {
    for (const auto& [k, c] : prev->objects)
      if (!next.objects.count(k)) next.objects[k] = c;  // mid-edit: keep
  }
  if (prev) {
    for (const auto& [k, c] : prev->objects) {
      keys->insert(k);
      if (next.objects.count(k)) continue;
      auto& who = claimants_[k];
      std::erase(who, path);
      if (who.empty()) claimants_.erase(k);
    }
  }
  for (const auto& [k, c] : next.objects) {
    keys->insert(k);
    if (prev && prev->objects.count(k)) continue;
    claimants_[k].push_back(path);
  }
  files_[path] = std::move(next);
}

std::vector<ManifestError> FileTracker::errorsOf(const std::string& path) const {
  auto it = files_.find(path);
  if (it == files_.end()) return {};
  std::vector<ManifestError> out = it->second.parseErrors;
  for (const auto& [k, c] : it->second.objects) {
    const auto& who = claimants_.at(k);
    if (who.front() == path) continue;
    std::string label = k.str();
    out.push_back({path, label, "metadata.name",
                   "duplicate " + label + ", already defined in " + who.front() +
                       " (that definition is used)"});
  }
  return out;
}

void FileTracker::emit(const ObjectKey& key, SourceUpdate* out) {
  using T = ObjectEvent::Type;
  ObjectPtr now;
  bool invalid = false;
  auto had = delivered_.find(key);
  auto cl = claimants_.find(key);
  if (cl != claimants_.end()) {
    Claim& c = files_.at(cl->second.front()).objects.at(key);
    // Invalid where it is defined now (moved to another file, or the
    // owner changed): the version in use stays the last good one.
    if (c.invalid && !c.good && had != delivered_.end()) c.good = had->second;
    now = c.good;
    invalid = !c.good;
    if (key.kind == ObjectKind::Service && c.invalid && c.good)
      held_[key.nsName()] = c.good;
    else if (key.kind == ObjectKind::Service)
      held_.erase(key.nsName());
  } else if (key.kind == ObjectKind::Service) {
    held_.erase(key.nsName());
  }
  if (now) {
    deliveredInvalid_.erase(key);
    if (had != delivered_.end() && (had->second == now || sameObject(*had->second, *now))) {
      had->second = now;
      return;
    }
    out->events.push_back({had == delivered_.end() ? T::Added : T::Modified, key, now, ""});
    delivered_[key] = now;
    return;
  }
  if (invalid) {
    if (had != delivered_.end()) delivered_.erase(had);
    else if (deliveredInvalid_.count(key)) return;
    deliveredInvalid_.insert(key);
    out->events.push_back({T::Invalid, key, nullptr, ""});
    return;
  }
  if (had == delivered_.end() && !deliveredInvalid_.count(key)) return;
  if (had != delivered_.end()) delivered_.erase(had);
  deliveredInvalid_.erase(key);
  out->events.push_back({T::Deleted, key, nullptr, ""});
}

SourceUpdate FileTracker::apply(const std::vector<FileChange>& changes) {
  std::vector<const FileChange*> sorted;
  for (const auto& c : changes) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(),
            [](const FileChange* a, const FileChange* b) { return a->path < b->path; });
  std::set<ObjectKey> keys;
  std::set<std::string> origins;
  for (const FileChange* c : sorted) {
    size_t before = keys.size();
    bool known = files_.count(c->path) > 0;
    uint64_t oldHash = known ? files_[c->path].hash : 0;
    if (c->content)
      parseFile(c->path, *c->content, c->error, &keys);
    else
      dropFile(c->path, &keys);
    bool changed = keys.size() != before || known != files_.count(c->path) ||
                   (files_.count(c->path) && files_[c->path].hash != oldHash);
    if (changed) origins.insert(c->path);
  }
  // Files whose duplicate errors may have changed: every claimant of a key touched.
  for (const ObjectKey& k : keys) {
    auto it = claimants_.find(k);
    if (it != claimants_.end()) origins.insert(it->second.begin(), it->second.end());
  }
  // Events by namespace and name, then kind: a Service and its Endpoints /
  // EndpointSlice of the same name travel together (a consumer applying a
  // long update in slices then rarely sees a new service without them).
  std::vector<const ObjectKey*> order;
  for (const ObjectKey& k : keys) order.push_back(&k);
  std::sort(order.begin(), order.end(), [](const ObjectKey* a, const ObjectKey* b) {
    return std::tie(a->ns, a->name, a->kind) < std::tie(b->ns, b->name, b->kind);
  });
  SourceUpdate out;
  for (const ObjectKey* k : order) emit(*k, &out);
  for (const std::string& o : origins) out.errors[o] = errorsOf(o);
  return out;
}

}  // namespace ferry
