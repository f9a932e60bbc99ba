// The control socket: ferryctl connects, sends one JSON request line and
// reads one JSON reply. Root only (mode 0600).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace ferry {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  static Expected<std::unique_ptr<ControlServer>> listen(const std::string& path, Handler h);
  ~ControlServer();
  int pollFd() const { return fd_; }
  // Serves every pending connection.
  void serve();

 private:
  ControlServer(std::string path, int fd, Handler h)
      : path_(std::move(path)), fd_(fd), handler_(std::move(h)) {}
  void serveOne(int conn);
  std::string path_;
  int fd_;
  Handler handler_;
};

}  // namespace ferry
