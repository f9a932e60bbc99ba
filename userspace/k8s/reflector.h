// A Reflector keeps one resource's objects in step with the apiserver, as
// client-go's tools/cache Reflector does, on a thread of its own:
//   1. list, paginated (limit/continue), one consistent snapshot;
//   2. diff the snapshot against the objects known so far and emit
//      Added/Modified/Deleted for the difference only (never a flush: after
//      a 410 relist, objects that stayed the same produce no event);
//   3. watch from the list's resourceVersion with allowWatchBookmarks and a
//      timeoutSeconds picked at random in [watchTimeoutMin, watchTimeoutMax];
//      every event and BOOKMARK advances the resourceVersion; a watch that
//      ends or breaks resumes from it;
//   4. 410 Gone (an HTTP 410, or an ERROR event carrying an Expired Status)
//      goes back to 1;
//   5. failures (connection, TLS, 401/403, a stream silent for deadStream)
//      are retried after an exponential backoff with jitter; the error is
//      logged once per change and kept in status().
// Events go to an EventQueue; the reflector marks itself synced on the
// queue after its first complete list. Nothing here blocks the caller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "k8s/client.h"
#include "k8s/event_queue.h"
#include "k8s/http.h"

namespace ferry::k8s {

struct ReflectorOptions {
  std::string ns;              // one namespace, or all when empty
  std::string labelSelector;   // passed through to list and watch
  std::string fieldSelector;
  int pageSize = 500;          // list limit per page
  std::chrono::seconds watchTimeoutMin{300}, watchTimeoutMax{600};  // client-go's 5-10 min
  // A watch with no byte (event or bookmark) for this long is dead. The
  // apiserver sends a bookmark about every minute when asked for them.
  std::chrono::milliseconds deadStream{std::chrono::seconds(120)};
  std::chrono::milliseconds backoffInitial{200}, backoffMax{30000};
  double jitter = 0.5;         // each wait is base * (1 + jitter * U[0,1))
  // Called on each change of error state ("" when recovered) and on relists.
  std::function<void(const std::string&)> log;
};

// What `ferryctl status` shows per resource.
struct ReflectorStatus {
  std::string resource;            // "services", "endpointslices.discovery.k8s.io"
  bool synced = false;             // first list complete
  bool connected = false;          // a watch is open now
  std::string resourceVersion;     // last seen (event, bookmark or list)
  std::chrono::system_clock::time_point watchSince{};  // when the open watch started
  uint64_t events = 0;             // events emitted
  uint64_t lists = 0;              // complete lists (the first one included)
  uint64_t expired = 0;            // 410 Gone relists
  uint64_t watches = 0;            // watch requests answered 200
  uint64_t bookmarks = 0;
  std::string lastError;           // empty when the last attempt succeeded
  size_t objects = 0;              // objects known now
};

class Reflector {
 public:
  Reflector(std::shared_ptr<Client> client, Resource res, EventQueue& queue,
            ReflectorOptions opts = {});
  ~Reflector();  // stop()
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void start();
  // Aborts the open request at once and joins the thread.
  void stop();
  ReflectorStatus status() const;
  const Resource& resource() const { return res_; }

 private:
  enum class WatchEnd { Closed, Expired, Failed, Stopped };
  void run();
  Status list(std::map<std::string, nlohmann::json>* out, std::string* rv);
  void replace(std::map<std::string, nlohmann::json> fresh, const std::string& rv);
  WatchEnd watch(std::string* rv);
  bool handleLine(const std::string& line, std::string* rv, std::vector<ObjectEvent>* out,
                  WatchEnd* end);
  ObjectEvent makeEvent(ObjectEvent::Type t, const nlohmann::json& obj) const;
  std::string query(bool watch, const std::string& rv, const std::string& cont);
  void setError(const std::string& e);
  void clearError();
  bool sleepBackoff();
  void note(const std::string& m);

  std::shared_ptr<Client> client_;
  Resource res_;
  EventQueue& queue_;
  ReflectorOptions opts_;
  int sourceId_;
  std::unique_ptr<HttpSession> session_;
  Canceller cancel_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex waitMu_;
  std::condition_variable waitCv_;
  std::mt19937_64 rng_;
  int failures_ = 0;

  // Owned by the reflector thread.
  std::map<std::string, nlohmann::json> known_;  // "ns/name" -> object

  mutable std::mutex stMu_;
  ReflectorStatus st_;
};

}  // namespace ferry::k8s
