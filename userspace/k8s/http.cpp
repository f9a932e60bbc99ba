#include "k8s/http.h"

#include <curl/curl.h>

namespace ferry::k8s {

namespace {

std::once_flag curlInit;

struct Transfer {
  CURL* easy = nullptr;
  const std::function<bool(std::string_view)>* onData = nullptr;
  const std::function<void()>* onOpen = nullptr;
  bool opened = false;
  HttpResponse* resp = nullptr;
  bool stoppedByCallback = false;
  std::chrono::steady_clock::time_point lastByte;
};

size_t onWrite(char* ptr, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  t->lastByte = std::chrono::steady_clock::now();
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  if (t->onData && code >= 200 && code < 300) {
    if (!(*t->onData)(std::string_view(ptr, len))) {
      t->stoppedByCallback = true;
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() < (64u << 20)) t->resp->body.append(ptr, len);
  return len;
}

size_t onHeader(char* ptr, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  t->lastByte = std::chrono::steady_clock::now();
  if (len == 2 && ptr[0] == '\r' && ptr[1] == '\n' && !t->opened && t->onOpen && *t->onOpen) {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
      t->opened = true;
      (*t->onOpen)();
    }
  }
  return len;
}

std::string transportError(CURLcode rc, const char* detail) {
  std::string d = detail && *detail ? detail : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS: the apiserver's certificate is not trusted by the configured CA or does not "
             "name the server (" + d + ")";
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS handshake failed (" + d + ")";
    case CURLE_SSL_CERTPROBLEM:
      return "TLS: the client certificate or key cannot be used (" + d + ")";
    case CURLE_SSL_CACERT_BADFILE:
      return "TLS: the CA bundle cannot be read (" + d + ")";
    case CURLE_COULDNT_CONNECT:
      return "cannot connect (" + d + ")";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot resolve the server's name (" + d + ")";
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out (" + d + ")";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
      return "connection lost (" + d + ")";
    default:
      return d;
  }
}

}  // namespace

void Canceller::cancel() {
  cancelled_ = true;
  std::lock_guard lk(mu_);
  if (active_) curl_multi_wakeup(active_);
}

void Canceller::reset() { cancelled_ = false; }

void Canceller::attach(CURLM* m) {
  std::lock_guard lk(mu_);
  active_ = m;
}

void Canceller::detach() {
  std::lock_guard lk(mu_);
  active_ = nullptr;
}

HttpSession::HttpSession(const ClientConfig& cfg) : cfg_(cfg) {
  std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  easy_ = curl_easy_init();
  multi_ = curl_multi_init();
}

HttpSession::~HttpSession() {
  if (easy_) curl_easy_cleanup(easy_);
  if (multi_) curl_multi_cleanup(multi_);
}

Expected<HttpResponse> HttpSession::perform(const HttpRequest& req, Canceller* c) {
  return run(req, nullptr, std::chrono::milliseconds(0), c, nullptr);
}

Expected<HttpResponse> HttpSession::stream(const HttpRequest& req,
                                           const std::function<bool(std::string_view)>& onData,
                                           std::chrono::milliseconds deadAfter, Canceller* c,
                                           const std::function<void()>& onOpen) {
  return run(req, &onData, deadAfter, c, &onOpen);
}

Expected<HttpResponse> HttpSession::run(const HttpRequest& req,
                                        const std::function<bool(std::string_view)>* onData,
                                        std::chrono::milliseconds deadAfter, Canceller* c,
                                        const std::function<void()>* onOpen) {
  const std::string url = cfg_.server + req.path;
  const std::string what = req.method + " " + url;
  if (!easy_ || !multi_) return Status::error(what + ": libcurl initialisation failed");
  if (c && c->cancelled()) return Status::error(what + ": cancelled");

  auto tok = cfg_.bearer();
  if (!tok) return tok.status().context(what);

  CURL* e = easy_;
  curl_easy_reset(e);
  HttpResponse resp;
  Transfer t;
  t.easy = e;
  t.onData = onData;
  t.onOpen = onOpen;
  t.resp = &resp;
  t.lastByte = std::chrono::steady_clock::now();
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_USERAGENT, cfg_.userAgent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  if (!onData) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  if (req.method == "GET") curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  curl_blob ca{const_cast<char*>(cfg_.caPem.data()), cfg_.caPem.size(), CURL_BLOB_COPY};
  if (!cfg_.caPem.empty()) curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
  if (cfg_.insecureSkipVerify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob cert{const_cast<char*>(cfg_.clientCertPem.data()), cfg_.clientCertPem.size(), CURL_BLOB_COPY};
  curl_blob key{const_cast<char*>(cfg_.clientKeyPem.data()), cfg_.clientKeyPem.size(), CURL_BLOB_COPY};
  if (!cfg_.clientCertPem.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }

  curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  std::string auth;
  if (!tok->empty()) {
    auth = "Authorization: Bearer " + *tok;
    hdrs = curl_slist_append(hdrs, auth.c_str());
  }
  std::string ctype;
  if (!req.contentType.empty()) {
    ctype = "Content-Type: " + req.contentType;
    hdrs = curl_slist_append(hdrs, ctype.c_str());
  }
  hdrs = curl_slist_append(hdrs, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

  curl_multi_add_handle(multi_, e);
  if (c) c->attach(multi_);
  CURLcode rc = CURLE_OK;
  std::string failure;
  for (;;) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK) {
      failure = std::string("libcurl: ") + curl_multi_strerror(mc);
      break;
    }
    int left = 0;
    bool done = false;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg == CURLMSG_DONE) {
        rc = m->data.result;
        done = true;
      }
    }
    if (done || running == 0) break;
    if (c && c->cancelled()) {
      failure = "cancelled";
      break;
    }
    if (onData && deadAfter.count() > 0 &&
        std::chrono::steady_clock::now() - t.lastByte > deadAfter) {
      failure = "no data for " + std::to_string(deadAfter.count()) + " ms: dead stream";
      break;
    }
    curl_multi_poll(multi_, nullptr, 0, 200, nullptr);
  }
  if (c) c->detach();
  curl_multi_remove_handle(multi_, e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.code);
  curl_slist_free_all(hdrs);

  if (!failure.empty()) return Status::error(what + ": " + failure);
  if (rc == CURLE_WRITE_ERROR && t.stoppedByCallback) return resp;
  if (rc != CURLE_OK) return Status::error(what + ": " + transportError(rc, errbuf));
  return resp;
}

}  // namespace ferry::k8s
