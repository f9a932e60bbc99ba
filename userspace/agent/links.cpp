#include "agent/links.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <functional>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace ferry {

namespace {

struct Attrs {
  const nlattr* tb[IFLA_MAX + 1 > IFA_MAX + 1 ? IFLA_MAX + 1 : IFA_MAX + 1] = {};
  int max;
};

int collect(const nlattr* attr, void* data) {
  auto* a = static_cast<Attrs*>(data);
  int type = mnl_attr_get_type(attr);
  if (type <= a->max) a->tb[type] = attr;
  return MNL_CB_OK;
}

int collectInfo(const nlattr* attr, void* data) {
  auto** kind = static_cast<const nlattr**>(data);
  if (mnl_attr_get_type(attr) == IFLA_INFO_KIND) *kind = attr;
  return MNL_CB_OK;
}

// Sends a dump request on a fresh socket and feeds every answer to fn.
Status dumpRequest(uint16_t type, uint8_t family, const std::function<void(const nlmsghdr*)>& fn) {
  mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
  if (!nl) return Status::sys("netlink socket", errno);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Status::sys("netlink bind", err);
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  uint32_t seq = static_cast<uint32_t>(time(nullptr));
  nlh->nlmsg_seq = seq;
  auto* gen = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  gen->rtgen_family = family;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Status::sys("netlink send", err);
  }
  uint32_t portid = mnl_socket_get_portid(nl);
  auto cb = [](const nlmsghdr* h, void* data) -> int {
    (*static_cast<const std::function<void(const nlmsghdr*)>*>(data))(h);
    return MNL_CB_OK;
  };
  int ret;
  while ((ret = mnl_socket_recvfrom(nl, buf.data(), buf.size())) > 0) {
    ret = mnl_cb_run(buf.data(), ret, seq, portid, cb, const_cast<void*>(static_cast<const void*>(&fn)));
    if (ret <= MNL_CB_STOP) break;
  }
  int err = errno;
  mnl_socket_close(nl);
  if (ret < 0) return Status::sys("netlink dump", err);
  return Status::ok();
}

void applyLink(std::map<int, Link>& links, const nlmsghdr* nlh) {
  auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  if (nlh->nlmsg_type == RTM_DELLINK) {
    links.erase(ifm->ifi_index);
    return;
  }
  Attrs a;
  a.max = IFLA_MAX;
  mnl_attr_parse(nlh, sizeof(*ifm), collect, &a);
  Link& l = links[ifm->ifi_index];
  l.ifindex = ifm->ifi_index;
  l.loopback = ifm->ifi_flags & IFF_LOOPBACK;
  if (a.tb[IFLA_IFNAME]) l.name = mnl_attr_get_str(a.tb[IFLA_IFNAME]);
  l.peerElsewhere = a.tb[IFLA_LINK_NETNSID] != nullptr;
  if (a.tb[IFLA_LINKINFO]) {
    const nlattr* kind = nullptr;
    mnl_attr_parse_nested(a.tb[IFLA_LINKINFO], collectInfo, &kind);
    if (kind) l.kind = mnl_attr_get_str(kind);
  }
}

void applyAddr(std::map<int, Link>& links, const nlmsghdr* nlh) {
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_scope != RT_SCOPE_UNIVERSE) return;
  Attrs a;
  a.max = IFA_MAX;
  mnl_attr_parse(nlh, sizeof(*ifa), collect, &a);
  const nlattr* at = a.tb[IFA_LOCAL] ? a.tb[IFA_LOCAL] : a.tb[IFA_ADDRESS];
  if (!at) return;
  IpAddr ip;
  if (ifa->ifa_family == AF_INET && mnl_attr_get_payload_len(at) == 4) {
    uint32_t v;
    std::memcpy(&v, mnl_attr_get_payload(at), 4);
    ip = IpAddr::fromV4(ntohl(v));
  } else if (ifa->ifa_family == AF_INET6 && mnl_attr_get_payload_len(at) == 16) {
    std::memcpy(ip.bytes.data(), mnl_attr_get_payload(at), 16);
  } else {
    return;
  }
  auto it = links.find(static_cast<int>(ifa->ifa_index));
  if (it == links.end()) return;
  auto& addrs = it->second.addrs;
  auto pos = std::find(addrs.begin(), addrs.end(), ip);
  if (nlh->nlmsg_type == RTM_DELADDR) {
    if (pos != addrs.end()) addrs.erase(pos);
  } else if (pos == addrs.end()) {
    addrs.push_back(ip);
  }
}

}  // namespace

bool isPodDevice(const Link& l, const std::vector<std::string>& externalDevices) {
  if (l.kind != "veth" || !l.peerElsewhere || !l.addrs.empty()) return false;
  return std::find(externalDevices.begin(), externalDevices.end(), l.name) == externalDevices.end();
}

Expected<std::map<int, Link>> LinkWatcher::list() {
  std::map<int, Link> links;
  Status s = dumpRequest(RTM_GETLINK, AF_UNSPEC, [&](const nlmsghdr* h) { applyLink(links, h); });
  if (!s) return s;
  s = dumpRequest(RTM_GETADDR, AF_UNSPEC, [&](const nlmsghdr* h) { applyAddr(links, h); });
  if (!s) return s;
  return links;
}

Expected<std::unique_ptr<LinkWatcher>> LinkWatcher::open() {
  std::unique_ptr<LinkWatcher> w(new LinkWatcher());
  w->events_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (!w->events_) return Status::sys("netlink socket", errno);
  unsigned groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (mnl_socket_bind(w->events_, groups, MNL_SOCKET_AUTOPID) < 0)
    return Status::sys("netlink bind", errno);
  // Subscribe before dumping so nothing falls between the two.
  Status s = w->dump();
  if (!s) return s;
  return w;
}

LinkWatcher::~LinkWatcher() {
  if (events_) mnl_socket_close(events_);
}

int LinkWatcher::pollFd() const { return mnl_socket_get_fd(events_); }

Status LinkWatcher::dump() {
  auto links = list();
  if (!links) return links.status();
  links_ = std::move(*links);
  return Status::ok();
}

void LinkWatcher::handle(const nlmsghdr* nlh) {
  switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      applyLink(links_, nlh);
      break;
    case RTM_NEWADDR:
    case RTM_DELADDR:
      applyAddr(links_, nlh);
      break;
    default:
      break;
  }
}

bool LinkWatcher::drain() {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  bool changed = false;
  for (;;) {
    int n = mnl_socket_recvfrom(events_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == ENOBUFS) {  // events lost: start over from a dump
        dump();
        changed = true;
        continue;
      }
      break;
    }
    auto cb = [](const nlmsghdr* h, void* self) -> int {
      static_cast<LinkWatcher*>(self)->handle(h);
      return MNL_CB_OK;
    };
    mnl_cb_run(buf.data(), n, 0, 0, cb, this);
    changed = true;
  }
  return changed;
}

}  // namespace ferry
