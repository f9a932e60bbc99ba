#include "dns/responder.h"

#include "dns/ldns_include.h"

#include <algorithm>
#include <cstdlib>

namespace ferry {

namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;
using Rdf = std::unique_ptr<ldns_rdf, RdfFree>;

constexpr int kMaxChain = 8;  // CNAME hops inside the cluster domain

Pkt parse(std::span<const uint8_t> wire) {
  ldns_pkt* p = nullptr;
  if (wire.empty() || ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) {
    if (p) ldns_pkt_free(p);
    return nullptr;
  }
  return Pkt(p);
}

std::vector<uint8_t> toWire(const ldns_pkt* p) {
  uint8_t* buf = nullptr;
  size_t n = 0;
  if (ldns_pkt2wire(&buf, p, &n) != LDNS_STATUS_OK) {
    free(buf);
    return {};
  }
  std::vector<uint8_t> out(buf, buf + n);
  free(buf);
  return out;
}

// Lower-case absolute name ("web.default.svc.cluster.local.").
std::string nameKey(const ldns_rdf* dname) {
  Rdf c(ldns_rdf_clone(dname));
  ldns_dname2canonical(c.get());
  char* s = ldns_rdf2str(c.get());
  std::string out = s ? s : "";
  free(s);
  return out;
}

bool under(const std::string& name, const std::string& zone) {
  return name == zone ||
         (name.size() > zone.size() && name.compare(name.size() - zone.size(), zone.size(), zone) == 0 &&
          name[name.size() - zone.size() - 1] == '.');
}

size_t udpLimit(const ldns_pkt* q) {
  if (!ldns_pkt_edns(q)) return 512;
  size_t adv = std::max<size_t>(512, ldns_pkt_edns_udp_size(q));
  return std::min<size_t>(adv, kDnsMaxUdpAnswer);
}

// An empty response to q: id, opcode, RD/CD copied, question copied, OPT if q had one.
Pkt responseTo(const ldns_pkt* q, ldns_pkt_rcode rcode) {
  Pkt r(ldns_pkt_new());
  ldns_pkt_set_id(r.get(), ldns_pkt_id(q));
  ldns_pkt_set_qr(r.get(), true);
  ldns_pkt_set_opcode(r.get(), ldns_pkt_get_opcode(q));
  ldns_pkt_set_rd(r.get(), ldns_pkt_rd(q));
  ldns_pkt_set_cd(r.get(), ldns_pkt_cd(q));
  ldns_pkt_set_ra(r.get(), true);
  ldns_pkt_set_rcode(r.get(), rcode);
  const ldns_rr_list* qs = ldns_pkt_question(q);
  for (size_t i = 0; qs && i < ldns_rr_list_rr_count(qs); ++i)
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(qs, i)));
  if (ldns_pkt_edns(q)) {
    ldns_pkt_set_edns_udp_size(r.get(), kDnsMaxUdp);
    ldns_pkt_set_edns_do(r.get(), ldns_pkt_edns_do(q));
  }
  return r;
}

void clearSection(ldns_pkt* p, ldns_pkt_section s) {
  ldns_rr_list* l = s == LDNS_SECTION_ANSWER      ? ldns_pkt_answer(p)
                    : s == LDNS_SECTION_AUTHORITY ? ldns_pkt_authority(p)
                                                  : ldns_pkt_additional(p);
  while (ldns_rr* rr = ldns_rr_list_pop_rr(l)) ldns_rr_free(rr);
  ldns_pkt_set_section_count(p, s, 0);
}

// The wire form of r, no larger than limit: first without the additional
// section, else with TC set and only the question (the client retries
// over TCP). Bounded work: at most three serialisations.
std::vector<uint8_t> fit(ldns_pkt* r, size_t limit) {
  std::vector<uint8_t> w = toWire(r);
  if (w.size() <= limit) return w;
  clearSection(r, LDNS_SECTION_ADDITIONAL);  // the OPT record is kept apart by ldns
  w = toWire(r);
  if (w.size() <= limit) return w;
  ldns_pkt_set_tc(r, true);
  clearSection(r, LDNS_SECTION_ANSWER);
  clearSection(r, LDNS_SECTION_AUTHORITY);
  return toWire(r);
}

std::vector<uint8_t> finish(ldns_pkt* r, const ldns_pkt* q, DnsTransport t) {
  return fit(r, t == DnsTransport::Udp ? udpLimit(q) : LDNS_MAX_PACKETLEN);
}

// A response from only the 12-byte header of an unparseable query.
std::vector<uint8_t> headerOnly(std::span<const uint8_t> q, ldns_pkt_rcode rcode) {
  Pkt r(ldns_pkt_new());
  ldns_pkt_set_id(r.get(), static_cast<uint16_t>(q[0] << 8 | q[1]));
  ldns_pkt_set_qr(r.get(), true);
  ldns_pkt_set_opcode(r.get(), static_cast<ldns_pkt_opcode>((q[2] >> 3) & 0xf));
  ldns_pkt_set_rd(r.get(), q[2] & 1);
  ldns_pkt_set_rcode(r.get(), rcode);
  return toWire(r.get());
}

ldns_rr* newRr(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl) {
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, type);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, ttl);
  return rr;
}

ldns_rdf* dname(const std::string& name) { return ldns_dname_new_frm_str(name.c_str()); }

ldns_rr* addrRr(const ldns_rdf* owner, const IpAddr& ip, uint32_t ttl) {
  bool v4 = ip.isV4();
  ldns_rr* rr = newRr(owner, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, ttl);
  ldns_rr_push_rdf(rr, v4 ? ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, ip.bytes.data() + 12)
                          : ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, ip.bytes.data()));
  return rr;
}

ldns_rr* nameRr(const ldns_rdf* owner, ldns_rr_type type, const std::string& target, uint32_t ttl) {
  ldns_rdf* t = dname(target);
  if (!t) return nullptr;
  ldns_rr* rr = newRr(owner, type, ttl);
  ldns_rr_push_rdf(rr, t);
  return rr;
}

ldns_rr* srvRr(const ldns_rdf* owner, const DnsSrv& s, uint32_t ttl) {
  ldns_rdf* t = dname(s.target);
  if (!t) return nullptr;
  ldns_rr* rr = newRr(owner, LDNS_RR_TYPE_SRV, ttl);
  ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, s.priority));
  ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, s.weight));
  ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, s.port));
  ldns_rr_push_rdf(rr, t);
  return rr;
}

// zone. TTL SOA ns.dns.zone. hostmaster.zone. serial 7200 1800 86400 TTL (CoreDNS's values)
ldns_rr* soaRr(const DnsRecords& rec) {
  Rdf zone(dname(rec.zone()));
  if (!zone) return nullptr;
  ldns_rr* rr = newRr(zone.get(), LDNS_RR_TYPE_SOA, rec.ttl());
  ldns_rr_push_rdf(rr, dname("ns.dns." + rec.zone()));
  ldns_rr_push_rdf(rr, dname("hostmaster." + rec.zone()));
  ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, rec.serial()));
  for (uint32_t v : {7200u, 1800u, 86400u, rec.ttl()})
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, v));
  return rr;
}

void push(ldns_pkt* r, ldns_pkt_section s, ldns_rr* rr) {
  if (rr) ldns_pkt_push_rr(r, s, rr);
}

bool wantsAddr(ldns_rr_type t, const IpAddr& ip) {
  return t == LDNS_RR_TYPE_ANY || (t == LDNS_RR_TYPE_A && ip.isV4()) ||
         (t == LDNS_RR_TYPE_AAAA && !ip.isV4());
}

struct Local {
  ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR;
  std::string external;  // a CNAME target outside the cluster, to look up upstream
};

// Answers name/qtype from the records into r (answer, authority, additional).
Local answerLocal(const DnsRecords& rec, ldns_pkt* r, const ldns_rdf* qname, ldns_rr_type qtype) {
  Local out;
  const uint32_t ttl = rec.ttl();
  std::string name = nameKey(qname);
  Rdf owner(ldns_rdf_clone(qname));  // answers carry the question's spelling
  auto negative = [&](ldns_pkt_rcode rc) {
    out.rcode = rc;
    push(r, LDNS_SECTION_AUTHORITY, soaRr(rec));
  };
  for (int hop = 0; hop < kMaxChain; ++hop) {
    if (name == rec.zone()) {
      if (qtype == LDNS_RR_TYPE_SOA || qtype == LDNS_RR_TYPE_ANY)
        push(r, LDNS_SECTION_ANSWER, soaRr(rec));
      if (qtype == LDNS_RR_TYPE_NS || qtype == LDNS_RR_TYPE_ANY) {
        push(r, LDNS_SECTION_ANSWER, nameRr(owner.get(), LDNS_RR_TYPE_NS, "ns.dns." + rec.zone(), ttl));
        if (const DnsName* ns = rec.find("ns.dns." + rec.zone())) {
          Rdf nsName(dname("ns.dns." + rec.zone()));
          for (const IpAddr& ip : ns->addrs) push(r, LDNS_SECTION_ADDITIONAL, addrRr(nsName.get(), ip, ttl));
        }
      }
      if (ldns_pkt_ancount(r) == 0) negative(LDNS_RCODE_NOERROR);
      return out;
    }
    if (auto pod = rec.podAddress(name)) {
      if (wantsAddr(qtype, *pod)) push(r, LDNS_SECTION_ANSWER, addrRr(owner.get(), *pod, ttl));
      else negative(LDNS_RCODE_NOERROR);
      return out;
    }
    const DnsName* d = rec.find(name);
    if (!d) {
      negative(rec.exists(name) ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
      return out;
    }
    if (!d->cname.empty()) {
      push(r, LDNS_SECTION_ANSWER, nameRr(owner.get(), LDNS_RR_TYPE_CNAME, d->cname, ttl));
      if (qtype == LDNS_RR_TYPE_CNAME) return out;
      if (!under(d->cname, rec.zone())) {
        if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_AAAA) out.external = d->cname;
        return out;
      }
      name = d->cname;  // an alias of a name in the cluster: answer it here
      owner.reset(dname(name));
      if (!owner) return out;
      continue;
    }
    size_t before = ldns_pkt_ancount(r);
    for (const IpAddr& ip : d->addrs)
      if (wantsAddr(qtype, ip)) push(r, LDNS_SECTION_ANSWER, addrRr(owner.get(), ip, ttl));
    if (qtype == LDNS_RR_TYPE_SRV) {
      for (const DnsSrv& s : d->srv) {
        push(r, LDNS_SECTION_ANSWER, srvRr(owner.get(), s, ttl));
        const DnsName* t = rec.find(s.target);
        Rdf tn(dname(s.target));
        for (const IpAddr& ip : t && tn ? t->addrs : std::vector<IpAddr>{})
          push(r, LDNS_SECTION_ADDITIONAL, addrRr(tn.get(), ip, ttl));
      }
    }
    if (ldns_pkt_ancount(r) == before) negative(LDNS_RCODE_NOERROR);
    return out;
  }
  out.rcode = LDNS_RCODE_SERVFAIL;  // an alias loop
  return out;
}

}  // namespace

DnsAction DnsResponder::handle(std::span<const uint8_t> query, DnsTransport t) const {
  DnsAction a;
  if (query.size() < 12 || (query[2] & 0x80)) return a;  // too short, or a response: drop
  auto reply = [&](std::vector<uint8_t> w) {
    a.kind = w.empty() ? DnsAction::Kind::Drop : DnsAction::Kind::Reply;
    a.wire = std::move(w);
    return a;
  };
  Pkt q = parse(query);
  if (!q) return reply(headerOnly(query, LDNS_RCODE_FORMERR));
  if (ldns_pkt_get_opcode(q.get()) != LDNS_PACKET_QUERY) {
    Pkt r = responseTo(q.get(), LDNS_RCODE_NOTIMPL);
    return reply(finish(r.get(), q.get(), t));
  }
  if (ldns_pkt_qdcount(q.get()) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(q.get())) != 1) {
    Pkt r = responseTo(q.get(), LDNS_RCODE_FORMERR);
    return reply(finish(r.get(), q.get(), t));
  }
  if (ldns_pkt_edns(q.get()) && ldns_pkt_edns_version(q.get()) > 0) {
    Pkt r = responseTo(q.get(), LDNS_RCODE_NOERROR);
    ldns_pkt_set_edns_extended_rcode(r.get(), 1);  // BADVERS (16) = 1 << 4 | 0
    ldns_pkt_set_edns_udp_size(r.get(), kDnsMaxUdp);
    return reply(finish(r.get(), q.get(), t));
  }
  const DnsRecords& rec = *records_;
  const ldns_rr* qrr = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  std::string name = nameKey(ldns_rr_owner(qrr));
  ldns_rr_type qtype = ldns_rr_get_type(qrr);
  ldns_rr_class qclass = ldns_rr_get_class(qrr);

  if (under(name, rec.zone())) {
    bool inClass = qclass == LDNS_RR_CLASS_IN || qclass == LDNS_RR_CLASS_ANY;
    bool transfer = qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR;
    if (!inClass || transfer) {
      Pkt r = responseTo(q.get(), LDNS_RCODE_REFUSED);
      return reply(finish(r.get(), q.get(), t));
    }
    Pkt r = responseTo(q.get(), LDNS_RCODE_NOERROR);
    ldns_pkt_set_aa(r.get(), true);
    Local l = answerLocal(rec, r.get(), ldns_rr_owner(qrr), qtype);
    if (!l.external.empty()) {
      a.kind = DnsAction::Kind::Resolve;
      a.name = l.external;
      a.qtype = qtype;
      return a;
    }
    ldns_pkt_set_rcode(r.get(), l.rcode);
    return reply(finish(r.get(), q.get(), t));
  }
  bool reverse = under(name, "in-addr.arpa.") || under(name, "ip6.arpa.");
  if (reverse && qtype == LDNS_RR_TYPE_PTR && qclass == LDNS_RR_CLASS_IN) {
    if (std::optional<std::string> target = rec.ptr(name)) {
      Pkt r = responseTo(q.get(), LDNS_RCODE_NOERROR);
      ldns_pkt_set_aa(r.get(), true);
      push(r.get(), LDNS_SECTION_ANSWER,
           nameRr(ldns_rr_owner(qrr), LDNS_RR_TYPE_PTR, *target, rec.ttl()));
      return reply(finish(r.get(), q.get(), t));
    }
  }
  // Everything else (other reverse names too: CoreDNS's `fallthrough`) goes upstream.
  a.kind = DnsAction::Kind::Forward;
  a.wire.assign(query.begin(), query.end());
  return a;
}

std::vector<uint8_t> DnsResponder::forwarded(std::span<const uint8_t> query,
                                             std::span<const uint8_t> reply,
                                             DnsTransport t) const {
  Pkt q = parse(query);
  if (!q) return {};
  // The reply carries the upstream query's id; compare the question only.
  bool answers = reply.size() >= 12 && dnsReplyMatches(dnsWithId(query, dnsId(reply)), reply);
  Pkt rp = answers ? parse(reply) : nullptr;
  if (!rp) {
    Pkt r = responseTo(q.get(), LDNS_RCODE_SERVFAIL);
    return finish(r.get(), q.get(), t);
  }
  size_t limit = t == DnsTransport::Udp ? udpLimit(q.get()) : LDNS_MAX_PACKETLEN;
  if (reply.size() <= limit) return dnsWithId(reply, ldns_pkt_id(q.get()));  // exact bytes
  ldns_pkt_set_id(rp.get(), ldns_pkt_id(q.get()));
  return fit(rp.get(), limit);
}

std::vector<uint8_t> DnsResponder::resolved(std::span<const uint8_t> query,
                                            std::span<const uint8_t> reply,
                                            DnsTransport t) const {
  Pkt q = parse(query);
  if (!q || ldns_pkt_qdcount(q.get()) != 1) return {};
  const ldns_rr* qrr = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  Pkt r = responseTo(q.get(), LDNS_RCODE_NOERROR);
  ldns_pkt_set_aa(r.get(), true);
  Local l = answerLocal(*records_, r.get(), ldns_rr_owner(qrr), ldns_rr_get_type(qrr));
  ldns_pkt_set_rcode(r.get(), l.rcode);
  Pkt up = parse(reply);
  if (!l.external.empty() && up && ldns_pkt_get_rcode(up.get()) == LDNS_RCODE_NOERROR) {
    const ldns_rr_list* ans = ldns_pkt_answer(up.get());
    for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans); ++i)
      ldns_pkt_push_rr(r.get(), LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(ans, i)));
  }
  return finish(r.get(), q.get(), t);
}

std::vector<uint8_t> dnsQuery(const std::string& name, uint16_t qtype, uint16_t id) {
  ldns_rdf* n = dname(name);
  if (!n) return {};
  // ldns_pkt_query_new takes ownership of the name
  Pkt p(ldns_pkt_query_new(n, static_cast<ldns_rr_type>(qtype), LDNS_RR_CLASS_IN, LDNS_RD));
  if (!p) return {};
  ldns_pkt_set_id(p.get(), id);
  ldns_pkt_set_edns_udp_size(p.get(), kDnsMaxUdp);
  return toWire(p.get());
}

bool dnsReplyMatches(std::span<const uint8_t> query, std::span<const uint8_t> reply) {
  if (query.size() < 12 || reply.size() < 12 || dnsId(query) != dnsId(reply)) return false;
  Pkt q = parse(query), r = parse(reply);
  if (!q || !r || !ldns_pkt_qr(r.get())) return false;
  const ldns_rr_list* qq = ldns_pkt_question(q.get());
  const ldns_rr_list* rq = ldns_pkt_question(r.get());
  if (ldns_rr_list_rr_count(qq) != 1 || ldns_rr_list_rr_count(rq) != 1) return false;
  const ldns_rr* a = ldns_rr_list_rr(qq, 0);
  const ldns_rr* b = ldns_rr_list_rr(rq, 0);
  return ldns_rr_get_type(a) == ldns_rr_get_type(b) && ldns_rr_get_class(a) == ldns_rr_get_class(b) &&
         ldns_dname_compare(ldns_rr_owner(a), ldns_rr_owner(b)) == 0;
}

uint16_t dnsId(std::span<const uint8_t> msg) {
  return msg.size() < 2 ? 0 : static_cast<uint16_t>(msg[0] << 8 | msg[1]);
}

std::vector<uint8_t> dnsWithId(std::span<const uint8_t> msg, uint16_t id) {
  std::vector<uint8_t> out(msg.begin(), msg.end());
  if (out.size() >= 2) {
    out[0] = static_cast<uint8_t>(id >> 8);
    out[1] = static_cast<uint8_t>(id);
  }
  return out;
}

}  // namespace ferry
