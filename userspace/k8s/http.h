// HTTP(S) to the apiserver through libcurl (no hand-written HTTP or TLS).
// One HttpSession is one connection (kept alive between requests) used by
// one thread at a time; a Canceller lets another thread abort its transfer
// at once (curl_multi_wakeup), which is how reflectors stop promptly.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "k8s/config.h"

typedef void CURL;
typedef void CURLM;

namespace ferry::k8s {

struct HttpRequest {
  std::string method = "GET";
  std::string path;          // "/api/v1/services?limit=500", appended to the server URL
  std::string body;
  std::string contentType;   // for bodies: application/json, application/merge-patch+json
  std::chrono::milliseconds timeout{15000};  // whole transfer (perform only)
};

struct HttpResponse {
  long code = 0;
  std::string body;          // for stream(): only non-2xx bodies are kept
};

class Canceller {
 public:
  // Aborts the transfer running now and every later one until reset().
  void cancel();
  void reset();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class HttpSession;
  void attach(CURLM* m);
  void detach();
  std::mutex mu_;
  CURLM* active_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

class HttpSession {
 public:
  explicit HttpSession(const ClientConfig& cfg);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // One request; the error names method, URL and the transport failure
  // ("TLS: the apiserver's certificate is not trusted ..."). Non-2xx codes
  // are not errors here: the caller reads code and body (a Status object).
  Expected<HttpResponse> perform(const HttpRequest& req, Canceller* c = nullptr);

  // A streaming GET (watch): each received piece of a 2xx body goes to
  // onData (return false to stop). Returns when the server ends the body,
  // onData stops it, c is cancelled (error "cancelled"), or no byte came for
  // `deadAfter` (error "no data for N ms: dead stream").
  // onOpen (optional) runs once when a 2xx response's headers are complete.
  Expected<HttpResponse> stream(const HttpRequest& req,
                                const std::function<bool(std::string_view)>& onData,
                                std::chrono::milliseconds deadAfter, Canceller* c = nullptr,
                                const std::function<void()>& onOpen = {});

  const ClientConfig& config() const { return cfg_; }

 private:
  Expected<HttpResponse> run(const HttpRequest& req,
                             const std::function<bool(std::string_view)>* onData,
                             std::chrono::milliseconds deadAfter, Canceller* c,
                             const std::function<void()>* onOpen);
  ClientConfig cfg_;
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
};

}  // namespace ferry::k8s
