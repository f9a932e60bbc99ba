// The I/O half of the DNS server: UDP and TCP listeners, client TCP
// connections and asynchronous upstream queries, all non-blocking and driven
// by the agent's single-threaded poll() loop:
//
//   for (pollfd p : dns.pollFds()) ...; poll(..., min(timeout, dns.timeoutMs()));
//   dns.onReady(fd, revents) for each ready one; then dns.onTimer().
//
// Nothing here blocks. Every resource is bounded: TCP connections (oldest
// evicted), per-connection input (one message) and output, queries in
// flight per connection and in total, upstream attempts (SERVFAIL after).
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "dns/config.h"
#include "dns/responder.h"
#include "model/snapshot.h"

namespace ferry {

class DnsServer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    size_t maxConns = 128;                 // TCP clients; the least recently active is closed
    size_t maxInflightPerConn = 16;        // pipelined queries awaiting upstream, per TCP client
    size_t maxPending = 4096;              // upstream queries in flight (< 65536 ids)
    size_t maxOutPerConn = 256 * 1024;     // unsent answers before a TCP client is dropped
    std::chrono::milliseconds idle{10000}; // TCP idle timeout (CoreDNS: 10 s)
    std::chrono::milliseconds upstreamTimeout{1500};  // per attempt
    size_t attempts = 2;                   // upstream sends per query (next upstream each time)
  };

  // Binds every cfg.listen address (UDP and TCP). Upstreams: cfg.upstreams,
  // else the nameservers of resolvConfPath.
  static Expected<std::unique_ptr<DnsServer>> create(const DnsConfig& cfg, Limits limits,
                                                     const std::string& resolvConfPath =
                                                         "/etc/resolv.conf");
  static Expected<std::unique_ptr<DnsServer>> create(const DnsConfig& cfg) {
    return create(cfg, Limits{});
  }
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // New records from a snapshot; answers change at once.
  void update(const ClusterSnapshot& snap);
  // Only the records of the services named (ns/name; gone from snap =
  // removed) are rebuilt; the rest stay (after one update()).
  void updateServices(const ClusterSnapshot& snap, const std::set<std::string>& changed);

  std::vector<pollfd> pollFds() const;
  void onReady(int fd, short revents);
  // Milliseconds until onTimer() has work (upstream timeout, idle client); -1: none.
  int timeoutMs() const;
  void onTimer();

  const std::vector<DnsAddr>& upstreams() const { return upstreams_; }
  size_t records() const { return responder_.records().size(); }
  const DnsRecords& currentRecords() const { return responder_.records(); }
  const DnsConfig& config() const { return cfg_; }

 private:
  struct Client {
    DnsTransport transport = DnsTransport::Udp;
    int udpFd = -1;
    sockaddr_storage peer{};
    socklen_t peerLen = 0;
    uint64_t connId = 0;
  };
  struct Conn {
    int fd = -1;
    uint64_t id = 0;
    std::vector<uint8_t> in, out;
    Clock::time_point last;
    size_t inflight = 0;
    bool eof = false;
  };
  struct Pending {
    DnsAction::Kind kind = DnsAction::Kind::Forward;
    Client client;
    std::vector<uint8_t> clientQuery;
    std::vector<uint8_t> upstreamQuery;  // as sent, with our id
    size_t upstream = 0;
    size_t tries = 0;
    Clock::time_point deadline;
  };
  struct Listener {
    int fd = -1;
    bool tcp = false;
  };

  DnsServer(const DnsConfig& cfg, Limits limits);
  void onQuery(std::span<const uint8_t> q, const Client& c);
  void startUpstream(const DnsAction& a, std::span<const uint8_t> q, const Client& c);
  bool sendUpstream(const Pending& p);
  void complete(Pending p, std::span<const uint8_t> reply);
  void respond(const Client& c, const std::vector<uint8_t>& wire);
  void readUdp(int fd);
  void readUpstream(int fd);
  void accept(int fd);
  void readConn(Conn& c);
  void processConn(Conn& c);
  void queueTcp(Conn& c, const std::vector<uint8_t>& wire);
  void flushConn(Conn& c);
  void closeConn(int fd);
  Conn* connById(uint64_t id);

  DnsConfig cfg_;
  Limits limits_;
  DnsResponder responder_;
  std::vector<Listener> listeners_;
  std::vector<DnsAddr> upstreams_;
  int up4_ = -1, up6_ = -1;
  std::map<int, Conn> conns_;  // by fd
  uint64_t nextConnId_ = 1;
  std::map<uint16_t, Pending> pending_;  // by upstream query id
  std::mt19937 rng_;
  uint32_t serial_ = 0;
  std::shared_ptr<DnsRecords> records_;  // also the responder's (one thread)
};

}  // namespace ferry
