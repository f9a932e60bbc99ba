// libFuzzer target: one control request line (any bytes) through the
// server's parsing, the request-shape check and a snapshot reply. Every
// input must give a JSON object reply; nothing may throw or crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/control.h"
#include "model/service_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  std::string line(reinterpret_cast<const char*>(data), size);
  auto handler = [](const nlohmann::json& req) -> nlohmann::json {
    std::string why;
    if (controlCommand(req, &why).empty()) return {{"error", why}};
    Service s;
    s.ns = "default";
    s.name = "web\xff";  // invalid UTF-8 in a reply must be replaced, not thrown
    return {{"services", nlohmann::json::array({serviceToJson(s)})}};
  };
  std::string reply = ControlServer::replyTo(line.substr(0, line.find('\n')), handler);
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) __builtin_trap();
  return 0;
}
