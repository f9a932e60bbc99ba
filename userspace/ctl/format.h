// Pure formatting helpers of ferryctl, modelled on kubectl's printers
// (k8s.io/kubernetes/pkg/printers/internalversion and
// k8s.io/apimachinery/pkg/util/duration). Header-only so tests can use them.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::ctl {

using json = nlohmann::json;

// kubectl's duration.HumanDuration.
inline std::string human_duration(int64_t seconds) {
  auto s = [](int64_t v, const char* u) { return std::to_string(v) + u; };
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return s(seconds, "s");
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t sec = seconds % 60;
    return sec == 0 ? s(minutes, "m") : s(minutes, "m") + s(sec, "s");
  }
  if (minutes < 60 * 3) return s(minutes, "m");
  int64_t hours = seconds / 3600;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? s(hours, "h") : s(hours, "h") + s(m, "m");
  }
  if (hours < 48) return s(hours, "h");
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return h == 0 ? s(hours / 24, "d") : s(hours / 24, "d") + s(h, "h");
  }
  if (hours < 24 * 365 * 2) return s(hours / 24, "d");
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return dy == 0 ? s(hours / 24 / 365, "y") : s(hours / 24 / 365, "y") + s(dy, "d");
  }
  return s(hours / 24 / 365, "y");
}

// RFC 3339 ("2024-05-01T10:00:00Z", optional fraction, "Z" or +hh:mm) -> Unix seconds.
inline std::optional<int64_t> parse_rfc3339(const std::string& ts) {
  std::tm tm{};
  int Y, M, D, h, m, sec, consumed = 0;
  if (std::sscanf(ts.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &consumed) != 6) return std::nullopt;
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  int64_t t = static_cast<int64_t>(timegm(&tm));
  size_t i = static_cast<size_t>(consumed);
  if (i < ts.size() && ts[i] == '.') {
    i++;
    while (i < ts.size() && std::isdigit(static_cast<unsigned char>(ts[i]))) i++;
  }
  if (i < ts.size() && (ts[i] == '+' || ts[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(ts.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    int64_t off = oh * 3600 + om * 60;
    t -= ts[i] == '+' ? off : -off;
  } else if (i >= ts.size() || (ts[i] != 'Z' && ts[i] != 'z')) {
    return std::nullopt;
  }
  return t;
}

// kubectl's translateTimestampSince: "<unknown>" for a missing timestamp.
inline std::string age(const json& metadata, int64_t now) {
  if (!metadata.is_object() || !metadata.contains("creationTimestamp") ||
      !metadata["creationTimestamp"].is_string())
    return "<unknown>";
  auto t = parse_rfc3339(metadata["creationTimestamp"].get<std::string>());
  if (!t) return "<unknown>";
  return human_duration(now - *t);
}

inline std::string str_or(const json& j, const char* key, const std::string& def = "") {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return def;
}

inline int64_t int_or(const json& j, const char* key, int64_t def = 0) {
  if (j.is_object() && j.contains(key) && j[key].is_number_integer()) return j[key].get<int64_t>();
  return def;
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); i++) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

// PORT(S): "80/TCP", "8080:32618/TCP", comma-joined; "<none>" without ports.
inline std::string service_ports(const json& spec) {
  std::vector<std::string> pieces;
  if (spec.is_object() && spec.contains("ports") && spec["ports"].is_array()) {
    for (const auto& p : spec["ports"]) {
      std::string proto = str_or(p, "protocol", "TCP");
      int64_t node_port = int_or(p, "nodePort", 0);
      std::string s = std::to_string(int_or(p, "port"));
      if (node_port > 0) s += ":" + std::to_string(node_port);
      pieces.push_back(s + "/" + proto);
    }
  }
  return pieces.empty() ? "<none>" : join(pieces, ",");
}

inline std::vector<std::string> string_list(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.is_object() && j.contains(key) && j[key].is_array())
    for (const auto& e : j[key])
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

// kubectl's loadBalancerStatusStringer: sorted unique ingress IPs (or hostnames),
// truncated to 13 chars + "..." when longer than 16 (not with -o wide).
inline std::string lb_ingress(const json& status, bool wide) {
  std::set<std::string> ips;
  if (status.is_object() && status.contains("loadBalancer")) {
    const auto& lb = status["loadBalancer"];
    if (lb.is_object() && lb.contains("ingress") && lb["ingress"].is_array())
      for (const auto& in : lb["ingress"]) {
        std::string ip = str_or(in, "ip"), host = str_or(in, "hostname");
        if (!ip.empty()) ips.insert(ip);
        else if (!host.empty()) ips.insert(host);
      }
  }
  std::string r = join(std::vector<std::string>(ips.begin(), ips.end()), ",");
  if (!wide && r.size() > 16) r = r.substr(0, 13) + "...";
  return r;
}

// kubectl's getServiceExternalIP.
inline std::string service_external_ip(const json& svc, bool wide) {
  const json& spec = svc.contains("spec") ? svc["spec"] : json::object();
  std::string type = str_or(spec, "type", "ClusterIP");
  auto ext = string_list(spec, "externalIPs");
  if (type == "ClusterIP" || type == "NodePort") return ext.empty() ? "<none>" : join(ext, ",");
  if (type == "LoadBalancer") {
    std::string lb = lb_ingress(svc.contains("status") ? svc["status"] : json::object(), wide);
    if (!ext.empty()) {
      std::vector<std::string> all;
      if (!lb.empty()) {
        size_t start = 0;
        for (;;) {
          size_t c = lb.find(',', start);
          all.push_back(lb.substr(start, c == std::string::npos ? std::string::npos : c - start));
          if (c == std::string::npos) break;
          start = c + 1;
        }
      }
      all.insert(all.end(), ext.begin(), ext.end());
      return join(all, ",");
    }
    return lb.empty() ? "<pending>" : lb;
  }
  if (type == "ExternalName") return str_or(spec, "externalName");
  return "<unknown>";
}

// REASON (-o wide): why a LoadBalancer service has no address, from the
// agent's status.conditions entry of type ferry.io/LoadBalancerAddress with
// status "False" (its message, else its reason); "<none>" otherwise.
inline std::string service_lb_reason(const json& svc) {
  if (!svc.is_object() || !svc.contains("status") || !svc["status"].is_object()) return "<none>";
  const json& st = svc["status"];
  if (!st.contains("conditions") || !st["conditions"].is_array()) return "<none>";
  for (const auto& c : st["conditions"]) {
    if (str_or(c, "type") != "ferry.io/LoadBalancerAddress" || str_or(c, "status") != "False")
      continue;
    std::string why = str_or(c, "message");
    if (why.empty()) why = str_or(c, "reason");
    if (!why.empty()) return why;
  }
  return "<none>";
}

inline std::string service_cluster_ip(const json& spec) {
  std::string ip = str_or(spec, "clusterIP");
  return ip.empty() ? "<none>" : ip;
}

// labels.FormatLabels: sorted "k=v" comma-joined, "<none>" when empty.
inline std::string format_selector(const json& spec) {
  std::map<std::string, std::string> kv;
  if (spec.is_object() && spec.contains("selector") && spec["selector"].is_object())
    for (auto it = spec["selector"].begin(); it != spec["selector"].end(); ++it)
      kv[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (kv.empty()) return "<none>";
  std::vector<std::string> parts;
  for (const auto& [k, v] : kv) parts.push_back(k + "=" + v);
  return join(parts, ",");
}

inline std::string join_host_port(const std::string& ip, int64_t port) {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

// kubectl's formatEndpoints(endpoints, nil): ready addresses x ports, at most 3
// shown, then " + N more...". "<none>" when there are no subsets.
inline std::string format_endpoints(const json& ep) {
  if (!ep.is_object() || !ep.contains("subsets") || !ep["subsets"].is_array() || ep["subsets"].empty())
    return "<none>";
  std::vector<std::string> list;
  const size_t max = 3;
  bool more = false;
  size_t count = 0;
  for (const auto& ss : ep["subsets"]) {
    json addrs = ss.contains("addresses") && ss["addresses"].is_array() ? ss["addresses"] : json::array();
    json ports = ss.contains("ports") && ss["ports"].is_array() ? ss["ports"] : json::array();
    if (ports.empty()) {
      count += addrs.size();
      for (const auto& a : addrs) {
        if (list.size() == max) {
          more = true;
          break;
        }
        list.push_back(str_or(a, "ip"));
      }
      continue;
    }
    for (const auto& p : ports) {
      count += addrs.size();
      for (const auto& a : addrs) {
        if (list.size() == max) {
          more = true;
          break;
        }
        list.push_back(join_host_port(str_or(a, "ip"), int_or(p, "port")));
      }
    }
  }
  std::string ret = join(list, ",");
  if (more) ret += " + " + std::to_string(count - max) + " more...";
  return ret;
}

// A kubectl-style table: Go tabwriter with minwidth 6, padding 3, spaces;
// every cell but the last of a row is padded to its column's width.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }

  std::string render(bool headers = true) const {
    size_t cols = 0;
    for (const auto& r : rows_) cols = std::max(cols, r.size());
    std::vector<size_t> width(cols, 0);
    for (size_t ri = headers ? 0 : 1; ri < rows_.size(); ri++) {
      const auto& r = rows_[ri];
      for (size_t c = 0; c + 1 < r.size(); c++) width[c] = std::max(width[c], std::max<size_t>(6, r[c].size() + 3));
    }
    std::string out;
    for (size_t ri = headers ? 0 : 1; ri < rows_.size(); ri++) {
      const auto& r = rows_[ri];
      for (size_t c = 0; c < r.size(); c++) {
        out += r[c];
        if (c + 1 < r.size()) out.append(width[c] - r[c].size(), ' ');
      }
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace ferry::ctl
