#include "agent/healthz.h"

namespace ferry {

HttpReply healthzReply(const std::string& method, const std::string& path, bool ready,
                       const std::string& detail) {
  if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "GET only\n"};
  if (path == "/healthz" || path == "/livez") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/readyz")
    return ready ? HttpReply{200, "text/plain; charset=utf-8", "ok\n"}
                 : HttpReply{503, "text/plain; charset=utf-8", "not ready: " + detail + "\n"};
  return {404, "text/plain; charset=utf-8", "paths: /healthz /readyz\n"};
}

Expected<std::unique_ptr<HealthzServer>> HealthzServer::listen(
    const std::string& listen, std::function<std::string()> notReady) {
  auto addr = parseListenAddress("--healthz-listen", listen);
  if (!addr) return addr.status();
  auto http = HttpListener::open(
      "--healthz-listen " + listen, *addr,
      [notReady = std::move(notReady)](const HttpRequest& req) {
        std::string why = req.path == "/readyz" && notReady ? notReady() : "";
        return healthzReply(req.method, req.path, why.empty(), why);
      },
      HttpLimits{16, 8, 2});
  if (!http) return http.status();
  return std::unique_ptr<HealthzServer>(new HealthzServer(std::move(*http)));
}

}  // namespace ferry
