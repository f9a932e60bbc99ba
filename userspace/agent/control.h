// The control socket: ferryctl connects, sends one JSON request line and
// reads one JSON reply. Root only (mode 0600).
//
// Served from the agent's poll loop without ever blocking it: the listener
// and every client are non-blocking, each client is a small state machine
// (reading its request, then writing its reply) advanced when its socket is
// ready. Limits (common/limits.h): at most kControlClients clients at once
// (more wait in the SOMAXCONN backlog), a request line of at most
// kControlRequestBytes, and kControlClientMs to send the request and
// kControlClientMs between write progress on the reply; a client past its
// deadline is cut. Replies never raise SIGPIPE (MSG_NOSIGNAL).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <poll.h>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace ferry {

// The command of a control request ({"cmd": "snapshot"}), or "" with
// *error set for a request of any other shape. Total over JSON values.
std::string controlCommand(const nlohmann::json& req, std::string* error);

class ControlServer {
 public:
  // Called with any parsed JSON value (it must check the shape); its reply
  // is sent as one line. An exception becomes an error reply.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  static Expected<std::unique_ptr<ControlServer>> listen(const std::string& path, Handler h);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // The listener (while below the client limit) and every client, with the
  // events each waits for.
  std::vector<pollfd> pollFds() const;
  // Advances whatever `fd` (one of pollFds()) is ready for.
  void onReady(int fd, short revents);
  // Cuts clients past their deadline.
  void onTimer();
  // Milliseconds until the next deadline, or -1 when no client is connected.
  int timeoutMs() const;
  size_t clients() const { return clients_.size(); }

  // The reply to one request line, as sent (without the newline). Total:
  // any bytes give a JSON object, an error reply for anything malformed.
  static std::string replyTo(const std::string& line, const Handler& h);

 private:
  using Clock = std::chrono::steady_clock;
  struct Client {
    std::string in, out;
    size_t sent = 0;
    bool replying = false;
    Clock::time_point deadline;
  };
  ControlServer(std::string path, int fd, Handler h)
      : path_(std::move(path)), fd_(fd), handler_(std::move(h)) {}
  void acceptAll();
  void readFrom(int fd, Client& c);
  void startReply(int fd, Client& c);
  // False when the client is done (reply sent) or failed.
  bool writeTo(int fd, Client& c);
  void drop(int fd);

  std::string path_;
  int fd_;
  Handler handler_;
  std::map<int, Client> clients_;
};

}  // namespace ferry
