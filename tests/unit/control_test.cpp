// The control socket (issue 11): a total request handler and a server that
// serves many clients without blocking, cutting slow ones at their deadline.
#include <gtest/gtest.h>

#include <filesystem>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "agent/control.h"
#include "common/limits.h"

namespace ferry {
namespace {

using nlohmann::json;

json echoCmd(const json& req) {
  if (!req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
    return {{"error", "bad shape"}};
  return {{"cmd", req["cmd"]}, {"bytes", "we\xff"}};  // invalid UTF-8 in a reply
}

TEST(ControlReply, AnyBytesGiveAJsonObject) {
  for (std::string line : {std::string("\"snapshot\""), std::string("[]"), std::string("{\"cmd\": 5}"),
                           std::string("{\"cmd\": null}"), std::string("{\"cmd\""),
                           std::string("\xff\xfe"), std::string(100000, '['), std::string(""),
                           std::string(limits::kControlRequestBytes + 10, 'x')}) {
    std::string out = ControlServer::replyTo(line, echoCmd);
    json j = json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out.substr(0, 100);
    EXPECT_TRUE(j.is_object()) << out.substr(0, 100);
  }
  json ok = json::parse(ControlServer::replyTo("{\"cmd\": \"x\"}", echoCmd));
  EXPECT_EQ(ok["cmd"], "x");
  EXPECT_EQ(ok["bytes"], "we\xEF\xBF\xBD");  // replaced, not thrown
  json thrown = json::parse(ControlServer::replyTo(
      "{\"cmd\": \"x\"}", [](const json&) -> json { throw std::runtime_error("boom"); }));
  EXPECT_EQ(thrown["error"], "internal error: boom");
}

struct Server {
  std::string path;
  std::unique_ptr<ControlServer> srv;
  Server() {
    char tmpl[] = "/tmp/ferry-control-test-XXXXXX";
    path = std::string(mkdtemp(tmpl)) + "/s.sock";
    auto s = ControlServer::listen(path, echoCmd);
    EXPECT_TRUE(s) << s.status().message();
    srv = std::move(*s);
  }
  ~Server() {
    srv.reset();  // closes and unlinks the socket
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(path).parent_path(), ec);
  }
  // One turn of the agent's loop.
  void turn(int maxMs = 20) {
    std::vector<pollfd> fds = srv->pollFds();
    int t = srv->timeoutMs();
    poll(fds.data(), fds.size(), t < 0 ? maxMs : std::min(t, maxMs));
    for (const pollfd& p : fds)
      if (p.revents) srv->onReady(p.fd, p.revents);
    srv->onTimer();
  }
  int connectClient() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }
};

TEST(ControlServer, IdleClientsDoNotBlockOthersAndAreCutAtTheDeadline) {
  Server s;
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) idle.push_back(s.connectClient());
  int c = s.connectClient();
  std::string req = "{\"cmd\": \"hi\"}\n";
  ASSERT_EQ(write(c, req.data(), req.size()), ssize_t(req.size()));
  auto t0 = std::chrono::steady_clock::now();
  std::string reply;
  char buf[256];
  while (reply.find('\n') == std::string::npos &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)) {
    s.turn();
    ssize_t n = recv(c, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) reply.append(buf, size_t(n));
  }
  EXPECT_NE(reply.find("\"cmd\":\"hi\""), std::string::npos) << reply;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500))
      << "served behind 16 idle clients";
  close(c);
  // A trickling client: one byte every 100 ms never completes a line.
  int slow = s.connectClient();
  auto start = std::chrono::steady_clock::now();
  bool cut = false;
  while (!cut && std::chrono::steady_clock::now() - start <
                     std::chrono::milliseconds(limits::kControlClientMs + 2000)) {
    (void)!send(slow, "{", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    for (int i = 0; i < 5; ++i) s.turn(20);
    char b;
    ssize_t n = recv(slow, &b, 1, MSG_DONTWAIT);
    cut = n == 0 || (n < 0 && errno != EAGAIN);
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(cut) << "a trickling client was never cut";
  EXPECT_LE(took, std::chrono::milliseconds(limits::kControlClientMs + 1000));
  EXPECT_EQ(s.srv->clients(), 0u) << "idle clients outlived their deadline";
  for (int fd : idle) close(fd);
  close(slow);
}

TEST(ControlServer, EarlyClosingClientsAndOversizedRequests) {
  Server s;
  for (int i = 0; i < 8; ++i) {
    int c = s.connectClient();
    std::string req = "{\"cmd\": \"x\"}\n";
    (void)!write(c, req.data(), req.size());
    close(c);  // before the reply: the server must get EPIPE, not SIGPIPE
  }
  for (int i = 0; i < 10; ++i) s.turn();
  EXPECT_EQ(s.srv->clients(), 0u);
  int big = s.connectClient();
  std::string junk(limits::kControlRequestBytes + 4096, 'x');
  size_t off = 0;
  std::string reply;
  char buf[512];
  for (int i = 0; i < 200 && reply.find('\n') == std::string::npos; ++i) {
    if (off < junk.size()) {
      ssize_t n = send(big, junk.data() + off, junk.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += size_t(n);
    }
    s.turn(5);
    ssize_t n = recv(big, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) reply.append(buf, size_t(n));
  }
  EXPECT_NE(reply.find("limit kControlRequestBytes"), std::string::npos) << reply;
  close(big);
}

}  // namespace
}  // namespace ferry
