#include "dns/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace ferry {

namespace {

constexpr int kBurst = 64;            // datagrams / accepts / reads per wake-up, per socket
constexpr size_t kMaxMessage = 65535;

socklen_t toSockaddr(const DnsAddr& a, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (a.ip.isV4()) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a.port);
    std::memcpy(&s4->sin_addr, a.ip.bytes.data() + 12, 4);
    return sizeof *s4;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(a.port);
  std::memcpy(&s6->sin6_addr, a.ip.bytes.data(), 16);
  return sizeof *s6;
}

bool sameAddr(const sockaddr_storage& a, const DnsAddr& b) {
  sockaddr_storage s;
  toSockaddr(b, &s);
  if (a.ss_family != s.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto& x = reinterpret_cast<const sockaddr_in&>(a);
    auto& y = reinterpret_cast<const sockaddr_in&>(s);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  auto& y = reinterpret_cast<const sockaddr_in6&>(s);
  return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, 16) == 0;
}

Expected<int> openSocket(const DnsAddr* bindTo, bool v4, bool tcp) {
  int fd = socket(v4 ? AF_INET : AF_INET6,
                  (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::sys("socket", errno);
  int one = 1;
  if (!v4) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bindTo) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss;
    socklen_t len = toSockaddr(*bindTo, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (tcp && listen(fd, 128) != 0)) {
      int e = errno;
      close(fd);
      return Status::sys(std::string("dns listen ") + bindTo->str() + (tcp ? " (tcp)" : " (udp)"), e);
    }
  }
  return fd;
}

uint32_t nowSeconds() { return static_cast<uint32_t>(std::time(nullptr)); }

}  // namespace

DnsServer::DnsServer(const DnsConfig& cfg, Limits limits)
    : cfg_(cfg),
      limits_(limits),
      responder_(DnsRecords::build(ClusterSnapshot{}, cfg.clusterDomain, cfg.ttl, nowSeconds())) {
  uint32_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
    seed = static_cast<uint32_t>(Clock::now().time_since_epoch().count());
  rng_.seed(seed);
  serial_ = nowSeconds();
}

Expected<std::unique_ptr<DnsServer>> DnsServer::create(const DnsConfig& cfg, Limits limits,
                                                       const std::string& resolvConfPath) {
  std::unique_ptr<DnsServer> s(new DnsServer(cfg, limits));
  for (const DnsAddr& a : cfg.listen) {
    for (bool tcp : {false, true}) {
      auto fd = openSocket(&a, a.ip.isV4(), tcp);
      if (!fd) return fd.status();
      s->listeners_.push_back({*fd, tcp});
    }
  }
  s->upstreams_ = cfg.upstreams;
  if (s->upstreams_.empty()) {
    std::ifstream in(resolvConfPath);
    std::stringstream text;
    text << in.rdbuf();
    s->upstreams_ = nameserversFromResolvConf(text.str());
  }
  // A nameserver that is one of our own listeners would loop queries back to us.
  std::erase_if(s->upstreams_, [&](const DnsAddr& u) {
    return std::find(cfg.listen.begin(), cfg.listen.end(), u) != cfg.listen.end();
  });
  for (const DnsAddr& u : s->upstreams_) {
    int& fd = u.ip.isV4() ? s->up4_ : s->up6_;
    if (fd >= 0) continue;
    auto sock = openSocket(nullptr, u.ip.isV4(), false);
    if (!sock) return sock.status().context("dns upstream socket");
    fd = *sock;
  }
  return s;
}

DnsServer::~DnsServer() {
  for (const Listener& l : listeners_) close(l.fd);
  for (auto& [fd, c] : conns_) close(fd);
  if (up4_ >= 0) close(up4_);
  if (up6_ >= 0) close(up6_);
}

void DnsServer::update(const ClusterSnapshot& snap) {
  serial_ = std::max(serial_ + 1, nowSeconds());
  records_ = DnsRecords::buildIncremental(snap, cfg_.clusterDomain, cfg_.ttl, serial_);
  responder_.setRecords(records_);
}

void DnsServer::updateServices(const ClusterSnapshot& snap, const std::set<std::string>& changed) {
  if (!records_) return update(snap);
  if (changed.empty()) return;
  serial_ = std::max(serial_ + 1, nowSeconds());
  records_->setSerial(serial_);
  for (const std::string& key : changed) {
    auto it = snap.services.find(key);
    records_->setService(key, it == snap.services.end() ? nullptr : &it->second);
  }
}

std::vector<pollfd> DnsServer::pollFds() const {
  std::vector<pollfd> out;
  for (const Listener& l : listeners_) out.push_back({l.fd, POLLIN, 0});
  for (int fd : {up4_, up6_})
    if (fd >= 0) out.push_back({fd, POLLIN, 0});
  for (const auto& [fd, c] : conns_) {
    short ev = 0;
    if (!c.eof && c.inflight < limits_.maxInflightPerConn && c.in.size() < 2 + kMaxMessage) ev |= POLLIN;
    if (!c.out.empty()) ev |= POLLOUT;
    out.push_back({fd, ev, 0});
  }
  return out;
}

void DnsServer::onReady(int fd, short revents) {
  if (fd < 0 || revents == 0) return;
  if (fd == up4_ || fd == up6_) return readUpstream(fd);
  for (const Listener& l : listeners_) {
    if (l.fd != fd) continue;
    return l.tcp ? accept(fd) : readUdp(fd);
  }
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  // POLLNVAL, or hung up after the client's EOF: nothing can be delivered any more
  // (and a pending POLLHUP would wake the loop at once, again and again).
  if ((revents & POLLNVAL) || ((revents & (POLLHUP | POLLERR)) && c.eof)) return closeConn(fd);
  if (revents & POLLOUT) {
    flushConn(c);
    if (!conns_.count(fd)) return;
  }
  if (revents & (POLLIN | POLLHUP | POLLERR)) readConn(c);
}

int DnsServer::timeoutMs() const {
  std::optional<Clock::time_point> next;
  auto consider = [&](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [id, p] : pending_) consider(p.deadline);
  for (const auto& [fd, c] : conns_) consider(c.last + limits_.idle);
  if (!next) return -1;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms + 1, 0, 60000));
}

void DnsServer::onTimer() {
  auto now = Clock::now();
  std::vector<uint16_t> expired;
  for (const auto& [id, p] : pending_)
    if (p.deadline <= now) expired.push_back(id);
  for (uint16_t id : expired) {
    auto it = pending_.find(id);
    Pending& p = it->second;
    bool resent = false;
    while (!resent && ++p.tries < limits_.attempts) {
      p.upstream = (p.upstream + 1) % upstreams_.size();
      p.deadline = now + limits_.upstreamTimeout;
      resent = sendUpstream(p);
    }
    if (resent) continue;
    Pending done = std::move(p);
    pending_.erase(it);
    complete(std::move(done), {});
  }
  std::vector<int> idle;
  for (const auto& [fd, c] : conns_)
    if (c.inflight == 0 && now - c.last >= limits_.idle) idle.push_back(fd);
  for (int fd : idle) closeConn(fd);
}

// ---------------------------------------------------------------- queries

void DnsServer::onQuery(std::span<const uint8_t> q, const Client& c) {
  DnsAction a = responder_.handle(q, c.transport);
  switch (a.kind) {
    case DnsAction::Kind::Drop: return;
    case DnsAction::Kind::Reply: return respond(c, a.wire);
    case DnsAction::Kind::Forward:
    case DnsAction::Kind::Resolve: return startUpstream(a, q, c);
  }
}

void DnsServer::startUpstream(const DnsAction& a, std::span<const uint8_t> q, const Client& c) {
  Pending p;
  p.kind = a.kind;
  p.client = c;
  p.clientQuery.assign(q.begin(), q.end());
  bool room = !upstreams_.empty() && pending_.size() < limits_.maxPending;
  uint16_t id = 0;
  for (int i = 0; room && i < 64; ++i) {  // a free id; bounded (pending_ is < 1/16 full)
    id = static_cast<uint16_t>(rng_());
    if (!pending_.count(id)) break;
    if (i == 63) room = false;
  }
  if (room) {
    p.upstreamQuery = a.kind == DnsAction::Kind::Forward ? dnsWithId(q, id)
                                                         : dnsQuery(a.name, a.qtype, id);
    p.upstream = rng_() % upstreams_.size();
    p.deadline = Clock::now() + limits_.upstreamTimeout;
    bool sent = false;
    for (; !sent && p.tries < limits_.attempts; ++p.tries) {
      sent = !p.upstreamQuery.empty() && sendUpstream(p);
      if (!sent) p.upstream = (p.upstream + 1) % upstreams_.size();
    }
    if (sent) {
      --p.tries;  // the loop counted the successful send once more
      if (c.transport == DnsTransport::Tcp)
        if (Conn* conn = connById(c.connId)) ++conn->inflight;
      pending_.emplace(id, std::move(p));
      return;
    }
  }
  respond(c, a.kind == DnsAction::Kind::Forward ? responder_.forwarded(q, {}, c.transport)
                                                : responder_.resolved(q, {}, c.transport));
}

bool DnsServer::sendUpstream(const Pending& p) {
  const DnsAddr& u = upstreams_[p.upstream];
  sockaddr_storage ss;
  socklen_t len = toSockaddr(u, &ss);
  int fd = u.ip.isV4() ? up4_ : up6_;
  ssize_t n = sendto(fd, p.upstreamQuery.data(), p.upstreamQuery.size(), 0,
                     reinterpret_cast<sockaddr*>(&ss), len);
  return n == static_cast<ssize_t>(p.upstreamQuery.size());
}

void DnsServer::complete(Pending p, std::span<const uint8_t> reply) {
  std::vector<uint8_t> wire = p.kind == DnsAction::Kind::Forward
                                  ? responder_.forwarded(p.clientQuery, reply, p.client.transport)
                                  : responder_.resolved(p.clientQuery, reply, p.client.transport);
  if (p.client.transport == DnsTransport::Udp) return respond(p.client, wire);
  Conn* c = connById(p.client.connId);
  if (!c) return;  // the client went away
  if (c->inflight > 0) --c->inflight;
  int fd = c->fd;
  respond(p.client, wire);
  auto it = conns_.find(fd);
  if (it != conns_.end()) processConn(it->second);  // queries held back by the in-flight limit
}

void DnsServer::respond(const Client& c, const std::vector<uint8_t>& wire) {
  if (wire.empty()) return;
  if (c.transport == DnsTransport::Udp) {
    // Non-blocking; a full socket buffer drops the answer, as UDP may.
    sendto(c.udpFd, wire.data(), wire.size(), 0, reinterpret_cast<const sockaddr*>(&c.peer),
           c.peerLen);
    return;
  }
  if (Conn* conn = connById(c.connId)) queueTcp(*conn, wire);
}

// ---------------------------------------------------------------- UDP

void DnsServer::readUdp(int fd) {
  std::vector<uint8_t> buf(kMaxMessage);
  for (int i = 0; i < kBurst; ++i) {
    Client c;
    c.udpFd = fd;
    c.peerLen = sizeof c.peer;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&c.peer),
                         &c.peerLen);
    if (n < 0) return;  // EAGAIN, or an ICMP error queued on the socket
    onQuery(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)), c);
  }
}

void DnsServer::readUpstream(int fd) {
  std::vector<uint8_t> buf(kMaxMessage);
  for (int i = 0; i < kBurst; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // ECONNREFUSED from an earlier send: the timeout moves on
    }
    std::span<const uint8_t> reply(buf.data(), static_cast<size_t>(n));
    auto it = pending_.find(dnsId(reply));
    if (it == pending_.end()) continue;
    const Pending& p = it->second;
    // Only the upstream we asked, answering our question (spoofed or late answers are ignored).
    if (!sameAddr(from, upstreams_[p.upstream]) || !dnsReplyMatches(p.upstreamQuery, reply)) continue;
    Pending done = std::move(it->second);
    pending_.erase(it);
    complete(std::move(done), reply);
  }
}

// ---------------------------------------------------------------- TCP

DnsServer::Conn* DnsServer::connById(uint64_t id) {
  for (auto& [fd, c] : conns_)
    if (c.id == id) return &c;
  return nullptr;
}

void DnsServer::accept(int lfd) {
  for (int i = 0; i < kBurst; ++i) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conns_.size() >= limits_.maxConns) {
      auto oldest = std::min_element(conns_.begin(), conns_.end(), [](const auto& a, const auto& b) {
        return a.second.last < b.second.last;
      });
      closeConn(oldest->first);
    }
    Conn c;
    c.fd = fd;
    c.id = nextConnId_++;
    c.last = Clock::now();
    conns_.emplace(fd, std::move(c));
  }
}

void DnsServer::readConn(Conn& c) {
  int fd = c.fd;
  uint8_t buf[4096];
  for (int i = 0; i < kBurst && c.in.size() < 2 + kMaxMessage; ++i) {
    size_t room = std::min(sizeof buf, 2 + kMaxMessage - c.in.size());
    ssize_t n = read(fd, buf, room);
    if (n > 0) {
      c.in.insert(c.in.end(), buf, buf + n);
      c.last = Clock::now();
      continue;
    }
    if (n == 0) {
      c.eof = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    return closeConn(fd);
  }
  processConn(c);
}

void DnsServer::processConn(Conn& c) {
  int fd = c.fd;
  size_t off = 0;
  while (c.in.size() - off >= 2 && c.inflight < limits_.maxInflightPerConn) {
    size_t len = static_cast<size_t>(c.in[off] << 8 | c.in[off + 1]);
    if (len == 0) return closeConn(fd);  // not a DNS message stream
    if (c.in.size() - off < 2 + len) break;
    Client cl;
    cl.transport = DnsTransport::Tcp;
    cl.connId = c.id;
    std::vector<uint8_t> msg(c.in.begin() + off + 2, c.in.begin() + off + 2 + len);
    off += 2 + len;
    onQuery(msg, cl);
    if (!conns_.count(fd)) return;  // closed while answering (output limit)
  }
  c.in.erase(c.in.begin(), c.in.begin() + off);
  if (c.eof && c.inflight == 0 && c.out.empty()) closeConn(fd);
}

void DnsServer::queueTcp(Conn& c, const std::vector<uint8_t>& wire) {
  if (c.out.size() + wire.size() + 2 > limits_.maxOutPerConn) return closeConn(c.fd);
  c.out.push_back(static_cast<uint8_t>(wire.size() >> 8));
  c.out.push_back(static_cast<uint8_t>(wire.size()));
  c.out.insert(c.out.end(), wire.begin(), wire.end());
  flushConn(c);
}

void DnsServer::flushConn(Conn& c) {
  size_t off = 0;
  while (off < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + off, c.out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      c.last = Clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return closeConn(c.fd);
  }
  c.out.erase(c.out.begin(), c.out.begin() + off);
  if (c.eof && c.inflight == 0 && c.out.empty() && c.in.size() < 2) closeConn(c.fd);
}

void DnsServer::closeConn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  close(fd);
  conns_.erase(it);
}

}  // namespace ferry
