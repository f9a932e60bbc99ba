#include "k8s/reflector.h"

#include <curl/curl.h>

#include <cstdio>

namespace ferry::k8s {

namespace {

std::string keyOf(const nlohmann::json& o) {
  const auto& m = o.at("metadata");
  return m.value("namespace", "") + "/" + m.value("name", "");
}

std::string rvOf(const nlohmann::json& o) {
  if (!o.contains("metadata") || !o["metadata"].is_object()) return "";
  return o["metadata"].value("resourceVersion", "");
}

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

Reflector::Reflector(std::shared_ptr<Client> client, Resource res, EventQueue& queue,
                     ReflectorOptions opts)
    : client_(std::move(client)),
      res_(std::move(res)),
      queue_(queue),
      opts_(std::move(opts)),
      sourceId_(queue.registerSource()),
      session_(std::make_unique<HttpSession>(client_->config())),
      rng_(std::random_device{}()) {
  st_.resource = res_.id();
}

Reflector::~Reflector() { stop(); }

void Reflector::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  cancel_.reset();
  thread_ = std::thread([this] { run(); });
}

void Reflector::stop() {
  stopping_ = true;
  cancel_.cancel();
  {
    std::lock_guard lk(waitMu_);
    waitCv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

ReflectorStatus Reflector::status() const {
  std::lock_guard lk(stMu_);
  return st_;
}

void Reflector::note(const std::string& m) {
  if (opts_.log) opts_.log(m);
  else std::fprintf(stderr, "k8s: %s\n", m.c_str());
}

void Reflector::setError(const std::string& e) {
  bool changed;
  {
    std::lock_guard lk(stMu_);
    changed = st_.lastError != e;
    st_.lastError = e;
    st_.connected = false;
  }
  if (changed) note(res_.id() + ": " + e);
}

void Reflector::clearError() {
  bool changed;
  {
    std::lock_guard lk(stMu_);
    changed = !st_.lastError.empty();
    st_.lastError.clear();
  }
  if (changed) note(res_.id() + ": recovered");
}

bool Reflector::sleepBackoff() {
  double base = static_cast<double>(opts_.backoffInitial.count());
  for (int i = 0; i < failures_ && base < static_cast<double>(opts_.backoffMax.count()); ++i) base *= 2;
  base = std::min(base, static_cast<double>(opts_.backoffMax.count()));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto wait = std::chrono::milliseconds(static_cast<long long>(base * (1.0 + opts_.jitter * u(rng_))));
  ++failures_;
  std::unique_lock lk(waitMu_);
  return !waitCv_.wait_for(lk, wait, [this] { return stopping_.load(); });
}

std::string Reflector::query(bool watch, const std::string& rv, const std::string& cont) {
  std::string q;
  auto add = [&q](const std::string& k, const std::string& v) {
    q += (q.empty() ? "?" : "&") + k + "=" + escape(v);
  };
  if (!opts_.labelSelector.empty()) add("labelSelector", opts_.labelSelector);
  if (!opts_.fieldSelector.empty()) add("fieldSelector", opts_.fieldSelector);
  if (watch) {
    add("watch", "1");
    add("allowWatchBookmarks", "true");
    add("resourceVersion", rv);
    auto lo = opts_.watchTimeoutMin.count(), hi = std::max(opts_.watchTimeoutMin, opts_.watchTimeoutMax).count();
    std::uniform_int_distribution<long long> d(lo, hi);
    add("timeoutSeconds", std::to_string(d(rng_)));
  } else {
    if (opts_.pageSize > 0) add("limit", std::to_string(opts_.pageSize));
    if (!cont.empty()) add("continue", cont);
  }
  return q;
}

ObjectEvent Reflector::makeEvent(ObjectEvent::Type t, const nlohmann::json& obj) const {
  ObjectEvent e;
  e.type = t;
  e.object = obj;
  e.apiVersion = obj.value("apiVersion", res_.apiVersion());
  e.kind = obj.value("kind", res_.kind);
  const auto& m = obj.at("metadata");
  e.ns = m.value("namespace", "");
  e.name = m.value("name", "");
  e.resourceVersion = m.value("resourceVersion", "");
  return e;
}

Status Reflector::list(std::map<std::string, nlohmann::json>* out, std::string* rv) {
  std::string cont;
  const std::string base = res_.collectionPath(opts_.ns);
  for (int page = 0; page < 1000000; ++page) {
    HttpRequest req;
    req.path = base + query(false, "", cont);
    req.timeout = std::chrono::seconds(60);
    auto r = session_->perform(req, &cancel_);
    if (!r) return r.status().context("list " + res_.id());
    if (r->code == 410 && !cont.empty()) {
      // The continue token expired (compaction) mid-list: start over, as client-go does.
      out->clear();
      cont.clear();
      note(res_.id() + ": list continue token expired, listing again from the start");
      continue;
    }
    if (r->code != 200) return apiError("list " + res_.id() + " (GET " + base + ")", *r,
                                        client_->config().origin);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(r->body);
    } catch (const nlohmann::json::exception& e) {
      return Status::error("list " + res_.id() + ": the answer is not JSON: " + e.what());
    }
    for (auto& item : j.value("items", nlohmann::json::array())) {
      // The apiserver leaves kind and apiVersion out of list items.
      if (!item.contains("apiVersion")) item["apiVersion"] = res_.apiVersion();
      if (!item.contains("kind")) item["kind"] = res_.kind;
      if (!item.contains("metadata")) continue;
      std::string k = keyOf(item);  // before the move (C++17: the right side goes first)
      (*out)[k] = std::move(item);
    }
    const auto& meta = j.value("metadata", nlohmann::json::object());
    if (page == 0 || cont.empty()) *rv = meta.value("resourceVersion", "");
    cont = meta.value("continue", "");
    if (cont.empty()) return Status::ok();
  }
  return Status::error("list " + res_.id() + ": too many pages");
}

void Reflector::replace(std::map<std::string, nlohmann::json> fresh, const std::string& rv) {
  std::vector<ObjectEvent> evs;
  for (auto& [k, o] : fresh) {
    auto it = known_.find(k);
    if (it == known_.end()) evs.push_back(makeEvent(ObjectEvent::Added, o));
    else if (rvOf(it->second) != rvOf(o)) evs.push_back(makeEvent(ObjectEvent::Modified, o));
  }
  for (auto& [k, o] : known_)
    if (!fresh.count(k)) evs.push_back(makeEvent(ObjectEvent::Deleted, o));
  known_ = std::move(fresh);
  {
    std::lock_guard lk(stMu_);
    st_.events += evs.size();
    st_.lists++;
    st_.resourceVersion = rv;
    st_.objects = known_.size();
    st_.synced = true;
  }
  queue_.push(std::move(evs));
  queue_.markSynced(sourceId_);
}

bool Reflector::handleLine(const std::string& line, std::string* rv, std::vector<ObjectEvent>* out,
                           WatchEnd* end) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    setError("watch: an event is not JSON: " + std::string(e.what()));
    *end = WatchEnd::Failed;
    return false;
  }
  std::string type = j.value("type", "");
  if (!j.contains("object") || !j["object"].is_object()) {
    setError("watch: an event without an object");
    *end = WatchEnd::Failed;
    return false;
  }
  auto& obj = j["object"];
  if (type == "ERROR") {
    int code = obj.value("code", 0);
    if (code == 410) {
      *end = WatchEnd::Expired;
      return false;
    }
    setError("watch: " + std::to_string(code) + " " + obj.value("reason", "") + ": " +
             obj.value("message", ""));
    *end = WatchEnd::Failed;
    return false;
  }
  std::string objRv = rvOf(obj);
  if (type == "BOOKMARK") {
    if (!objRv.empty()) *rv = objRv;
    std::lock_guard lk(stMu_);
    st_.bookmarks++;
    st_.resourceVersion = *rv;
    return true;
  }
  ObjectEvent::Type t;
  if (type == "ADDED") t = ObjectEvent::Added;
  else if (type == "MODIFIED") t = ObjectEvent::Modified;
  else if (type == "DELETED") t = ObjectEvent::Deleted;
  else return true;  // unknown types are skipped, as client-go does
  if (!obj.contains("metadata")) return true;
  if (!obj.contains("apiVersion")) obj["apiVersion"] = res_.apiVersion();
  if (!obj.contains("kind")) obj["kind"] = res_.kind;
  std::string k = keyOf(obj);
  // ADDED for an object already known (a resumed watch can replay) is a modification.
  if (t == ObjectEvent::Added && known_.count(k)) t = ObjectEvent::Modified;
  if (t == ObjectEvent::Deleted) known_.erase(k);
  else known_[k] = obj;
  out->push_back(makeEvent(t, obj));
  if (!objRv.empty()) *rv = objRv;
  return true;
}

Reflector::WatchEnd Reflector::watch(std::string* rv) {
  HttpRequest req;
  req.path = res_.collectionPath(opts_.ns) + query(true, *rv, "");
  std::string buf;
  WatchEnd end = WatchEnd::Closed;
  bool opened = false;
  auto onOpen = [&] {
    opened = true;
    failures_ = 0;
    clearError();
    std::lock_guard lk(stMu_);
    st_.connected = true;
    st_.watches++;
    st_.watchSince = std::chrono::system_clock::now();
  };
  auto onData = [&](std::string_view d) -> bool {
    if (!opened) onOpen();
    buf.append(d);
    std::vector<ObjectEvent> evs;
    bool go = true;
    size_t pos;
    while (go && (pos = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, pos);
      buf.erase(0, pos + 1);
      if (line.empty()) continue;
      go = handleLine(line, rv, &evs, &end);
    }
    if (!evs.empty()) {
      {
        std::lock_guard lk(stMu_);
        st_.events += evs.size();
        st_.resourceVersion = *rv;
        st_.objects = known_.size();
      }
      queue_.push(std::move(evs));
    }
    return go;
  };
  auto started = std::chrono::steady_clock::now();
  auto r = session_->stream(req, onData, opts_.deadStream, &cancel_, onOpen);
  {
    std::lock_guard lk(stMu_);
    st_.connected = false;
  }
  if (stopping_) return WatchEnd::Stopped;
  if (!r) {
    setError(r.status().context("watch " + res_.id() + " from resourceVersion " + *rv).message());
    return WatchEnd::Failed;
  }
  if (r->code == 410) return WatchEnd::Expired;
  if (r->code != 200) {
    setError(apiError("watch " + res_.id(), *r, client_->config().origin).message());
    return WatchEnd::Failed;
  }
  if (end == WatchEnd::Closed && !opened &&
      std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
    // Closed at once without a byte: do not spin on a server that does this.
    setError("watch " + res_.id() + ": the apiserver closed the watch at once");
    return WatchEnd::Failed;
  }
  {
    std::lock_guard lk(stMu_);
    st_.watchSince = {};
  }
  return end;
}

void Reflector::run() {
  while (!stopping_) {
    std::map<std::string, nlohmann::json> fresh;
    std::string rv;
    Status s = list(&fresh, &rv);
    if (stopping_) return;
    if (!s) {
      setError(s.message());
      if (!sleepBackoff()) return;
      continue;
    }
    clearError();
    failures_ = 0;
    replace(std::move(fresh), rv);
    auto listed = std::chrono::steady_clock::now();
    while (!stopping_) {
      WatchEnd e = watch(&rv);
      if (e == WatchEnd::Stopped) return;
      if (e == WatchEnd::Expired) {
        {
          std::lock_guard lk(stMu_);
          st_.expired++;
        }
        note(res_.id() + ": resourceVersion " + rv + " expired (410 Gone): listing again");
        // a server that expires a fresh list's resourceVersion at once must not
        // make us list in a tight loop
        if (std::chrono::steady_clock::now() - listed < std::chrono::seconds(1) && !sleepBackoff())
          return;
        break;
      }
      if (e == WatchEnd::Failed && !sleepBackoff()) return;
    }
  }
}

}  // namespace ferry::k8s
