#include "ctl/commands.h"

#include "ctl/format.h"

#include <algorithm>
#include <vector>

namespace ferry::ctl {

namespace {

const json& field(const json& j, const char* key) {
  static const json empty = json::object();
  if (j.is_object() && j.contains(key) && j[key].is_object()) return j[key];
  return empty;
}

std::string ns_of(const json& obj) { return str_or(field(obj, "metadata"), "namespace", "default"); }
std::string name_of(const json& obj) { return str_or(field(obj, "metadata"), "name"); }

struct Kind {
  const char* key;       // snapshot key
  const char* kind;      // object kind
  const char* singular;  // for -o name
};

Kind kind_of(const std::string& resource) {
  if (resource == "services") return {"services", "Service", "service"};
  return {"endpoints", "Endpoints", "endpoints"};
}

std::vector<json> select(const json& snapshot, const Kind& k, const GetOptions& o) {
  std::vector<json> out;
  if (snapshot.is_object() && snapshot.contains(k.key) && snapshot[k.key].is_array())
    for (const auto& obj : snapshot[k.key]) {
      if (!o.all_namespaces && ns_of(obj) != o.ns) continue;
      if (!o.name.empty() && name_of(obj) != o.name) continue;
      json item = obj;
      if (item.is_object()) {
        if (!item.contains("apiVersion")) item["apiVersion"] = "v1";
        if (!item.contains("kind")) item["kind"] = k.kind;
      }
      out.push_back(std::move(item));
    }
  std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::pair(ns_of(a), name_of(a)) < std::pair(ns_of(b), name_of(b));
  });
  return out;
}

std::string no_resources(const GetOptions& o) {
  if (o.all_namespaces) return "No resources found\n";
  return "No resources found in " + o.ns + " namespace.\n";
}

Result get_errors(const json& snapshot, const GetOptions& o) {
  Result r;
  json errs = snapshot.is_object() && snapshot.contains("errors") && snapshot["errors"].is_array() ? snapshot["errors"]
                                                                                                   : json::array();
  if (o.output == "json") {
    r.out = errs.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return r;
  }
  // Errors (objects rejected) first; then a WARNINGS section: fields
  // ferry does not implement yet, on objects that are programmed.
  Table t({"FILE", "OBJECT", "FIELD", "MESSAGE"});
  Table w({"FILE", "OBJECT", "FIELD", "MESSAGE"});
  size_t nErr = 0, nWarn = 0;
  for (const auto& e : errs) {
    bool warn = str_or(e, "severity", "Error") == "Warning";
    (warn ? w : t).add({str_or(e, "file", "<none>"), str_or(e, "object", "<none>"),
                        str_or(e, "field", "<none>"), str_or(e, "message")});
    ++(warn ? nWarn : nErr);
  }
  r.out = nErr ? t.render(!o.no_headers) : "No errors.\n";
  if (nWarn) r.out += "\nWARNINGS\n" + w.render(!o.no_headers);
  return r;
}

// -o wide: also what the latest changes did.
std::string recent_changes(const json& snapshot, bool headers) {
  if (!snapshot.is_object() || !snapshot.contains("changes") || !snapshot["changes"].is_array() ||
      snapshot["changes"].empty())
    return "";
  Table t({"CHANGED AT", "OBJECTS", "SERVICES", "RECOMPUTED", "MAP ENTRIES", "MICROSECONDS"});
  auto num = [](const json& c, const char* k) {
    return c.contains(k) && c[k].is_number() ? c[k].dump() : std::string("?");
  };
  for (const auto& c : snapshot["changes"])
    t.add({str_or(c, "at", "?"), num(c, "events"), num(c, "servicesChanged"),
           num(c, "servicesRecomputed"), num(c, "mapEntries"), num(c, "us")});
  return "\n" + t.render(headers);
}

}  // namespace

std::string canonical_resource(const std::string& r) {
  if (r == "services" || r == "service" || r == "svc") return "services";
  if (r == "endpoints" || r == "endpoint" || r == "ep") return "endpoints";
  if (r == "errors" || r == "error") return "errors";
  return "";
}

Result cmd_get(const json& snapshot, const GetOptions& o) {
  Result r;
  if (o.resource == "errors") {
    Result r = get_errors(snapshot, o);
    if (o.output == "wide") r.out += recent_changes(snapshot, !o.no_headers);
    return r;
  }
  if (o.output != "" && o.output != "wide" && o.output != "json" && o.output != "name") {
    r.err = "error: unable to match a printer suitable for the output format \"" + o.output +
            "\", allowed formats are: json,name,wide\n";
    r.rc = 1;
    return r;
  }
  if (o.all_namespaces && !o.name.empty()) {
    r.err = "error: a resource cannot be retrieved by name across all namespaces\n";
    r.rc = 1;
    return r;
  }
  const Kind k = kind_of(o.resource);
  auto items = select(snapshot, k, o);

  if (!o.name.empty() && items.empty()) {
    r.err = "Error from server (NotFound): " + std::string(k.key) + " \"" + o.name + "\" not found\n";
    r.rc = 1;
    return r;
  }
  if (o.output == "json") {
    if (!o.name.empty()) {
      r.out = items.front().dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", json::array()},
                   {"metadata", {{"resourceVersion", ""}}}};
      for (auto& i : items) list["items"].push_back(i);
      r.out = list.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    return r;
  }
  if (items.empty()) {
    r.err = no_resources(o);
    return r;
  }
  if (o.output == "name") {
    for (const auto& i : items) r.out += std::string(k.singular) + "/" + name_of(i) + "\n";
    return r;
  }

  const bool wide = o.output == "wide";
  std::vector<std::string> header;
  if (o.all_namespaces) header.push_back("NAMESPACE");
  if (o.resource == "services") {
    for (const char* h : {"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}) header.push_back(h);
    if (wide) {
      header.push_back("SELECTOR");
      header.push_back("REASON");
    }
  } else {
    for (const char* h : {"NAME", "ENDPOINTS", "AGE"}) header.push_back(h);
  }
  Table t(header);
  for (const auto& i : items) {
    std::vector<std::string> row;
    if (o.all_namespaces) row.push_back(ns_of(i));
    row.push_back(name_of(i));
    const json& meta = field(i, "metadata");
    if (o.resource == "services") {
      const json& spec = field(i, "spec");
      row.push_back(str_or(spec, "type", "ClusterIP"));
      row.push_back(service_cluster_ip(spec));
      row.push_back(service_external_ip(i, wide));
      row.push_back(service_ports(spec));
      row.push_back(age(meta, o.now));
      if (wide) {
        row.push_back(format_selector(spec));
        row.push_back(service_lb_reason(i));
      }
    } else {
      row.push_back(format_endpoints(i));
      row.push_back(age(meta, o.now));
    }
    t.add(std::move(row));
  }
  r.out = t.render(!o.no_headers);
  return r;
}

Result cmd_stats(const json& snapshot, const std::string& output, bool no_headers) {
  Result r;
  json stats = snapshot.is_object() && snapshot.contains("stats") && snapshot["stats"].is_object() ? snapshot["stats"]
                                                                                                   : json::object();
  if (output == "json") {
    r.out = stats.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return r;
  }
  Table t({"NAME", "VALUE"});
  for (auto it = stats.begin(); it != stats.end(); ++it)  // nlohmann::json objects iterate sorted by key
    t.add({it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  r.out = t.render(!no_headers);
  return r;
}

Result cmd_verify(const json& reply, const std::string& output) {
  Result r;
  bool ok = reply.is_object() && reply.value("ok", false);
  r.rc = ok ? 0 : 1;
  if (output == "json") {
    r.out = reply.dump(4) + "\n";
    return r;
  }
  auto num = [&](const char* k) {
    return reply.is_object() && reply.contains(k) && reply[k].is_number() ? reply[k].dump()
                                                                           : std::string("?");
  };
  r.out = std::string(ok ? "OK" : "DIFFERENCES") + ": incremental state checked against a " +
          "from-scratch build (" + num("services") + " services, " + num("objects") +
          " objects, " + num("frontends") + " frontends, " + num("backends") + " backends, " +
          num("us") + " us)\n";
  if (reply.is_object() && reply.contains("differences") && reply["differences"].is_array())
    for (const auto& d : reply["differences"])
      r.out += "  " + (d.is_string() ? d.get<std::string>() : d.dump()) + "\n";
  return r;
}

namespace {

std::string pad(const std::string& s, size_t w) { return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' '); }

std::string yes(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_boolean() ? (j[k].get<bool>() ? "yes" : "no") : "?";
}

}  // namespace

Result cmd_status(const json& reply, const std::string& output) {
  Result r;
  bool ok = reply.is_object() && reply.value("connected", false) && reply.value("synced", false);
  r.rc = ok ? 0 : 1;
  if (output == "json") {
    r.out = reply.dump(4) + "\n";
    return r;
  }
  std::string src = str_or(reply, "source", "?");
  std::string where = src == "kubernetes" ? str_or(reply, "server") + " (" + str_or(reply, "config") + ")"
                                          : str_or(reply, "directory");
  r.out += pad("SOURCE:", 16) + src + " " + where + "\n";
  r.out += pad("NODE:", 16) + str_or(reply, "node") + "\n";
  r.out += pad("CONNECTED:", 16) + yes(reply, "connected") + "\n";
  r.out += pad("SYNCED:", 16) + yes(reply, "synced") + "\n";
  r.out += pad("PROGRAMMED:", 16) + yes(reply, "programmed") + "\n";
  if (src == "kubernetes") {
    r.out += pad("EVENTS APPLIED:", 16) + std::to_string(int_or(reply, "eventsApplied")) + "\n";
    r.out += pad("SKIPPED:", 16) + std::to_string(int_or(reply, "skipped")) +
             " (service-proxy-name or headless labels)\n";
  }
  std::string err = str_or(reply, "lastError");
  r.out += pad("LAST ERROR:", 16) + (err.empty() ? "<none>" : err) + "\n";
  if (!reply.is_object() || !reply.contains("resources") || !reply["resources"].is_array()) return r;
  r.out += "\n" + pad("RESOURCE", 34) + pad("SYNCED", 7) + pad("WATCH", 6) + pad("RESOURCEVERSION", 16) +
           pad("WATCH-AGE", 10) + pad("OBJECTS", 8) + pad("EVENTS", 7) + pad("LISTS", 6) +
           pad("EXPIRED", 8) + "ERROR\n";
  for (const json& x : reply["resources"]) {
    int64_t age = int_or(x, "watchAgeSeconds", -1);
    r.out += pad(str_or(x, "resource"), 34) + pad(yes(x, "synced"), 7) + pad(yes(x, "connected"), 6) +
             pad(str_or(x, "resourceVersion", "-"), 16) + pad(age < 0 ? "-" : human_duration(age), 10) +
             pad(std::to_string(int_or(x, "objects")), 8) + pad(std::to_string(int_or(x, "events")), 7) +
             pad(std::to_string(int_or(x, "lists")), 6) + pad(std::to_string(int_or(x, "expired")), 8) +
             (str_or(x, "lastError").empty() ? "<none>" : str_or(x, "lastError")) + "\n";
  }
  return r;
}

Result cmd_cluster_info(const json& reply, const std::string& output, bool dump) {
  Result r;
  if (dump || output == "json") {
    r.out = reply.dump(4) + "\n";
    return r;
  }
  auto list = [&](const char* k) {
    std::vector<std::string> v = string_list(reply, k);
    return v.empty() ? std::string("<none>") : join(v, ",");
  };
  r.out += "ferry on node " + str_or(reply, "node") + ", source " + str_or(reply, "source") + ": " +
           str_or(reply, "source-detail") + "\n";
  r.out += "service-cluster-ip-range: " + str_or(reply, "service-cluster-ip-range") + " (from " +
           str_or(reply, "service-cidrs-from") + ")\n";
  r.out += "service-node-port-range: " + str_or(reply, "service-node-port-range") + "\n";
  r.out += "cluster-domain: " + str_or(reply, "cluster-domain") + "\n";
  r.out += "cluster-dns: " + list("cluster-dns") + " (Service kube-system/kube-dns)\n";
  r.out += "dns-listen: " + list("dns-listen") + "\n";
  return r;
}

}  // namespace ferry::ctl
