#include "agent/k8s_source.h"

#include <algorithm>

#include "agent/log.h"
#include "model/manifest.h"

namespace ferry {

using nlohmann::json;

namespace {

const k8s::Resource* resourceOf(const std::string& kind) {
  using namespace k8s::resources;
  if (kind == "Service") return &Services;
  if (kind == "EndpointSlice") return &EndpointSlices;
  if (kind == "Node") return &Nodes;
  if (kind == "IPAddressPool") return &IPAddressPools;
  if (kind == "ServiceCIDR") return &ServiceCIDRs;
  return nullptr;
}

std::string labelOf(const json& obj, const char* key) {
  const json* meta = obj.contains("metadata") ? &obj["metadata"] : nullptr;
  if (!meta || !meta->is_object() || !meta->contains("labels")) return {};
  const json& labels = (*meta)["labels"];
  if (!labels.is_object() || !labels.contains(key) || !labels[key].is_string()) return {};
  return labels[key].get<std::string>();
}

bool hasLabel(const json& obj, const char* key) {
  const json* meta = obj.contains("metadata") ? &obj["metadata"] : nullptr;
  return meta && meta->is_object() && meta->contains("labels") && (*meta)["labels"].is_object() &&
         (*meta)["labels"].contains(key);
}

std::string specString(const json& obj, const char* key) {
  if (!obj.contains("spec") || !obj["spec"].is_object()) return {};
  const json& spec = obj["spec"];
  return spec.contains(key) && spec[key].is_string() ? spec[key].get<std::string>() : "";
}

template <typename T>
ObjectPtr first(std::vector<T>& v) {
  return v.empty() ? nullptr : std::make_shared<const ObjectValue>(std::move(v.front()));
}

}  // namespace

std::string KubeObjectTracker::origin(const k8s::ObjectEvent& ev) {
  if (const k8s::Resource* r = resourceOf(ev.kind)) return r->objectPath(ev.ns, ev.name);
  return ev.apiVersion + " " + ev.kind + " " + (ev.ns.empty() ? ev.name : ev.ns + "/" + ev.name);
}

bool KubeObjectTracker::admit(const k8s::ObjectEvent& ev, json* obj, std::string* why) const {
  if (ev.kind != "Service") return true;
  if (hasLabel(*obj, kServiceProxyNameLabel)) {
    std::string name = labelOf(*obj, kServiceProxyNameLabel);
    if (opts_.serviceProxyName.empty() || name != opts_.serviceProxyName) {
      *why = std::string("label ") + kServiceProxyNameLabel + "=" + name +
             " names another proxy (--service-proxy-name is \"" + opts_.serviceProxyName + "\")";
      return false;
    }
  }
  if (hasLabel(*obj, kHeadlessLabel)) {
    std::string type = specString(*obj, "type");
    if (!type.empty() && type != "ClusterIP") {
      *why = std::string("label ") + kHeadlessLabel + " on a " + type + " service";
      return false;
    }
    // Served as headless: DNS names its endpoints, no frontend.
    (*obj)["spec"]["clusterIP"] = "None";
    (*obj)["spec"]["clusterIPs"] = json::array({"None"});
  }
  return true;
}

void KubeObjectTracker::remove(const ObjectKey& key, const std::string& origin, SourceUpdate* out) {
  bool had = delivered_.erase(key) > 0;
  had |= deliveredInvalid_.erase(key) > 0;
  if (had) out->events.push_back({ObjectEvent::Type::Deleted, key, nullptr, ""});
  keyByOrigin_.erase(origin);
  if (erroredOrigins_.erase(origin)) out->errors[origin] = {};
}

void KubeObjectTracker::apply(const k8s::ObjectEvent& ev, SourceUpdate* out) {
  std::string org = origin(ev);
  if (ev.kind == "ServiceCIDR") {
    if (ev.type == k8s::ObjectEvent::Deleted) {
      cidrs_.erase(ev.name);
      return;
    }
    std::vector<IpPrefix> list;
    const json* spec = ev.object.contains("spec") ? &ev.object["spec"] : nullptr;
    if (spec && spec->is_object() && spec->contains("cidrs") && (*spec)["cidrs"].is_array())
      for (const json& c : (*spec)["cidrs"])
        if (c.is_string())
          if (auto p = IpPrefix::parse(c.get<std::string>())) list.push_back(*p);
    cidrs_[ev.name] = std::move(list);
    return;
  }
  auto known = keyByOrigin_.find(org);
  if (ev.type == k8s::ObjectEvent::Deleted) {
    skipped_.erase(org);
    if (known != keyByOrigin_.end()) remove(known->second, org, out);
    return;
  }
  json obj = ev.object;
  std::string why;
  if (!admit(ev, &obj, &why)) {
    // Not ferry's (any more): as if deleted.
    if (skipped_[org] != why) logInfo(org + ": skipped: " + why);
    skipped_[org] = why;
    if (known != keyByOrigin_.end()) remove(known->second, org, out);
    return;
  }
  skipped_.erase(org);
  // What changes on every write without changing the object's meaning:
  // left out, so a relist or a status-only write makes no event.
  if (obj.contains("metadata") && obj["metadata"].is_object()) {
    obj["metadata"].erase("resourceVersion");
    obj["metadata"].erase("managedFields");
    obj["metadata"].erase("generation");
  }
  Manifests m = parseObject(org, obj);
  ObjectPtr good;
  ObjectKey key;
  bool invalid = false;
  if (!m.services.empty()) {
    Service& s = m.services.front();
    std::string cls = specString(obj, "loadBalancerClass");
    s.loadBalancerIgnored = cls != opts_.loadBalancerClass;
    good = first(m.services);
  } else if (!m.slices.empty()) {
    good = first(m.slices);
  } else if (!m.nodes.empty()) {
    good = first(m.nodes);
  } else if (!m.pools.empty()) {
    good = first(m.pools);
  } else if (!m.invalidServices.empty()) {
    invalid = true;
    const std::string& k = *m.invalidServices.begin();
    size_t slash = k.find('/');
    key = {ObjectKind::Service, k.substr(0, slash), k.substr(slash + 1)};
  } else if (!m.invalidPools.empty()) {
    invalid = true;
    key = {ObjectKind::IPAddressPool, "", *m.invalidPools.begin()};
  } else if (!m.invalidObjects.empty()) {
    invalid = ObjectKey::parse(*m.invalidObjects.begin(), &key);
  }
  if (good) key = keyOf(*good);
  if (!m.errors.empty()) {
    out->errors[org] = std::move(m.errors);
    erroredOrigins_.insert(org);
  } else if (erroredOrigins_.erase(org)) {
    out->errors[org] = {};
  }
  if (!good && !invalid) return;  // a kind ferry does not use, or unidentifiable
  keyByOrigin_[org] = key;
  if (good) {
    auto it = delivered_.find(key);
    if (it != delivered_.end() && sameObject(*it->second, *good)) return;
    auto type = it != delivered_.end() ? ObjectEvent::Type::Modified : ObjectEvent::Type::Added;
    deliveredInvalid_.erase(key);
    delivered_[key] = good;
    out->events.push_back({type, key, good, ev.resourceVersion});
    return;
  }
  // Invalid: the last good version stays in use; a new object keeps its name.
  if (delivered_.count(key) || deliveredInvalid_.count(key)) return;
  deliveredInvalid_.insert(key);
  out->events.push_back({ObjectEvent::Type::Invalid, key, nullptr, ev.resourceVersion});
}

KubernetesSource::KubernetesSource(std::shared_ptr<k8s::Client> client, KubernetesSourceOptions opts)
    : client_(std::move(client)), tracker_(opts) {
  opts.set.reflector.log = [](const std::string& m) { logWarn("kubernetes: " + m); };
  set_ = std::make_unique<k8s::SourceSet>(client_, queue_, opts.set);
}

Expected<std::unique_ptr<KubernetesSource>> KubernetesSource::open(k8s::ClientConfig cfg,
                                                                   KubernetesSourceOptions opts) {
  if (cfg.server.empty()) return Status::error("kubernetes source: no apiserver address");
  auto client = std::make_shared<k8s::Client>(std::move(cfg));
  std::unique_ptr<KubernetesSource> src(new KubernetesSource(std::move(client), std::move(opts)));
  src->set_->start();
  return src;
}

KubernetesSource::~KubernetesSource() {
  if (set_) set_->stop();
}

std::string KubernetesSource::describe() const {
  return "the Kubernetes API at " + client_->config().server + " (" + client_->config().origin + ")";
}

bool KubernetesSource::drain() {
  k8s::EventBatch b = queue_.drain();
  if (!b.events.empty() && pending_.empty())
    pendingSince_ = std::chrono::steady_clock::now();
  auto cidrs = tracker_.serviceCidrs();  // a few prefixes
  for (const k8s::ObjectEvent& ev : b.events) tracker_.apply(ev, &pending_);
  // A ServiceCIDR change makes no object event: the agent reads
  // serviceCidrs() when woken.
  bool cidrsChanged = cidrs != tracker_.serviceCidrs();
  bool first = b.synced && !synced_;
  if (first) {
    synced_ = true;
    syncedAt_ = std::chrono::system_clock::now();
    pending_.relist = true;
    logInfo("kubernetes: every initial list is complete (" + std::to_string(pending_.events.size()) +
            " objects): programming from now on");
  }
  return synced_ && (first || !pending_.empty() || cidrsChanged);
}

SourceUpdate KubernetesSource::collect() {
  if (!synced_) return {};
  SourceUpdate u = std::move(pending_);
  pending_ = SourceUpdate{};
  u.notified = pendingSince_;
  applied_ += u.events.size();
  return u;
}

std::vector<IpPrefix> KubernetesSource::serviceCidrs() const {
  std::vector<IpPrefix> out;
  for (const auto& [name, list] : tracker_.serviceCidrs())
    for (const IpPrefix& p : list)
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  // IPv4 first: the model's primary family
  std::stable_partition(out.begin(), out.end(), [](const IpPrefix& p) { return p.addr.isV4(); });
  return out;
}

bool KubernetesSource::servesServiceCidrs() const {
  for (const std::string& id : set_->followed())
    if (id == k8s::resources::ServiceCIDRs.id()) return true;
  return false;
}

json KubernetesSource::statusJson() const {
  json out;
  out["source"] = "kubernetes";
  out["server"] = client_->config().server;
  out["config"] = client_->config().origin;
  out["synced"] = synced_;
  out["eventsApplied"] = applied_;
  out["skipped"] = tracker_.skipped();
  auto now = std::chrono::system_clock::now();
  bool connected = true;
  std::string lastError = set_->discoveryError();
  json res = json::array();
  for (const k8s::ReflectorStatus& r : set_->status()) {
    connected &= r.connected;
    if (lastError.empty() && !r.lastError.empty()) lastError = r.lastError;
    json j = {{"resource", r.resource},       {"synced", r.synced},
              {"connected", r.connected},     {"resourceVersion", r.resourceVersion},
              {"events", r.events},           {"lists", r.lists},
              {"expired", r.expired},         {"watches", r.watches},
              {"bookmarks", r.bookmarks},     {"objects", r.objects},
              {"lastError", r.lastError}};
    j["watchAgeSeconds"] =
        r.connected ? std::chrono::duration_cast<std::chrono::seconds>(now - r.watchSince).count()
                    : -1;
    res.push_back(std::move(j));
  }
  if (res.empty()) connected = false;
  out["connected"] = connected;
  out["resources"] = std::move(res);
  out["lastError"] = lastError;
  return out;
}

}  // namespace ferry
