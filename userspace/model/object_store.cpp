#include "model/object_store.h"

namespace ferry {

namespace {

std::string labelPair(const std::string& k, const std::string& v) { return k + "=" + v; }

bool namespaced(ObjectKind k) { return k != ObjectKind::Node && k != ObjectKind::IPAddressPool; }

}  // namespace

const char* objectKindName(ObjectKind k) {
  switch (k) {
    case ObjectKind::Service: return "Service";
    case ObjectKind::Pod: return "Pod";
    case ObjectKind::Endpoints: return "Endpoints";
    case ObjectKind::EndpointSlice: return "EndpointSlice";
    case ObjectKind::Node: return "Node";
    case ObjectKind::IPAddressPool: return "IPAddressPool";
  }
  return "?";
}

const char* objectApiVersion(ObjectKind k) {
  switch (k) {
    case ObjectKind::EndpointSlice: return "discovery.k8s.io/v1";
    case ObjectKind::IPAddressPool: return "metallb.io/v1beta1";
    default: return "v1";
  }
}

const char* eventTypeName(ObjectEvent::Type t) {
  switch (t) {
    case ObjectEvent::Type::Added: return "added";
    case ObjectEvent::Type::Modified: return "modified";
    case ObjectEvent::Type::Deleted: return "deleted";
    case ObjectEvent::Type::Invalid: return "invalid";
  }
  return "?";
}

std::string ObjectKey::str() const { return std::string(objectKindName(kind)) + " " + nsName(); }

bool ObjectKey::parse(const std::string& label, ObjectKey* out) {
  auto sp = label.find(' ');
  if (sp == std::string::npos) return false;
  std::string kind = label.substr(0, sp), rest = label.substr(sp + 1);
  for (ObjectKind k : {ObjectKind::Service, ObjectKind::Pod, ObjectKind::Endpoints,
                       ObjectKind::EndpointSlice, ObjectKind::Node, ObjectKind::IPAddressPool}) {
    if (kind != objectKindName(k)) continue;
    out->kind = k;
    if (!namespaced(k)) {
      out->ns.clear();
      out->name = rest;
      return true;
    }
    auto slash = rest.find('/');
    if (slash == std::string::npos) return false;
    out->ns = rest.substr(0, slash);
    out->name = rest.substr(slash + 1);
    return true;
  }
  return false;
}

ObjectKey keyOf(const ObjectValue& v) {
  struct {
    ObjectKey operator()(const Service& s) const { return {ObjectKind::Service, s.ns, s.name}; }
    ObjectKey operator()(const Pod& p) const { return {ObjectKind::Pod, p.ns, p.name}; }
    ObjectKey operator()(const EndpointsObject& e) const {
      return {ObjectKind::Endpoints, e.ns, e.name};
    }
    ObjectKey operator()(const EndpointSlice& e) const {
      return {ObjectKind::EndpointSlice, e.ns, e.name};
    }
    ObjectKey operator()(const NodeObject& n) const { return {ObjectKind::Node, "", n.node.name}; }
    ObjectKey operator()(const AddressPool& p) const {
      return {ObjectKind::IPAddressPool, "", p.name};
    }
  } visit;
  return std::visit(visit, v);
}

bool sameObject(const ObjectValue& a, const ObjectValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* s = std::get_if<Service>(&a)) {
    const Service& t = std::get<Service>(b);
    return *s == t && s->object == t.object;
  }
  return a == b;
}

size_t ObjectStore::size() const {
  size_t n = services_.size() + endpoints_.size() + slices_.size() + nodes_.size() + pools_.size();
  for (const auto& [ns, pods] : pods_) n += pods.size();
  return n;
}

const Service* ObjectStore::service(const std::string& key) const {
  auto it = services_.find(key);
  return it == services_.end() ? nullptr : &std::get<Service>(*it->second);
}

void ObjectStore::indexService(const std::string& key, const Service& s, bool add) {
  if (s.selector.empty()) return;
  const auto& [k, v] = *s.selector.begin();
  auto& byLabel = selectorIndex_[s.ns];
  auto& keys = byLabel[labelPair(k, v)];
  if (add) {
    keys.insert(key);
    return;
  }
  keys.erase(key);
  if (keys.empty()) byLabel.erase(labelPair(k, v));
  if (byLabel.empty()) selectorIndex_.erase(s.ns);
}

void ObjectStore::indexPod(const Pod& p, bool add) {
  auto& byLabel = podLabels_[p.ns];
  for (const auto& [k, v] : p.labels) {
    auto& names = byLabel[labelPair(k, v)];
    if (add) {
      names.insert(p.name);
      continue;
    }
    names.erase(p.name);
    if (names.empty()) byLabel.erase(labelPair(k, v));
  }
  if (byLabel.empty()) podLabels_.erase(p.ns);
}

// Services whose selector's first label the pod carries: a superset of
// those that select it.
void ObjectStore::touchPodServices(const Pod& p, Touched* t) const {
  t->podNamespaces.insert(p.ns);
  auto ns = selectorIndex_.find(p.ns);
  if (ns == selectorIndex_.end()) return;
  for (const auto& [k, v] : p.labels) {
    auto it = ns->second.find(labelPair(k, v));
    if (it != ns->second.end()) t->endpoints.insert(it->second.begin(), it->second.end());
  }
}

void ObjectStore::remove(const ObjectKey& key, Touched* t) {
  std::string nn = key.nsName();
  switch (key.kind) {
    case ObjectKind::Service: {
      auto it = services_.find(nn);
      if (it != services_.end()) {
        indexService(nn, std::get<Service>(*it->second), false);
        services_.erase(it);
      }
      invalidServices_.erase(nn);
      live_.erase(nn);
      t->services.insert(nn);
      break;
    }
    case ObjectKind::Pod: {
      auto ns = pods_.find(key.ns);
      if (ns == pods_.end()) break;
      auto it = ns->second.find(key.name);
      if (it == ns->second.end()) break;
      const Pod& p = std::get<Pod>(*it->second);
      touchPodServices(p, t);
      indexPod(p, false);
      ns->second.erase(it);
      if (ns->second.empty()) pods_.erase(ns);
      break;
    }
    case ObjectKind::Endpoints:
      if (endpoints_.erase(nn)) t->endpoints.insert(nn);
      break;
    case ObjectKind::EndpointSlice: {
      auto it = slices_.find(nn);
      if (it == slices_.end()) break;
      const EndpointSlice& sl = std::get<EndpointSlice>(*it->second);
      if (!sl.serviceName.empty()) {
        std::string svc = sl.ns + "/" + sl.serviceName;
        auto& bySvc = slicesByService_[svc];
        bySvc.erase(sl.name);
        if (bySvc.empty()) slicesByService_.erase(svc);
        t->endpoints.insert(svc);
      }
      slices_.erase(it);
      break;
    }
    case ObjectKind::Node:
      nodes_.erase(key.name);
      t->nodes.insert(key.name);
      break;
    case ObjectKind::IPAddressPool:
      pools_.erase(key.name);
      invalidPools_.erase(key.name);
      t->pools = true;
      break;
  }
  invalidOther_.erase(key);
}

void ObjectStore::put(const ObjectKey& key, ObjectPtr obj, Touched* t) {
  remove(key, t);
  std::string nn = key.nsName();
  switch (key.kind) {
    case ObjectKind::Service:
      indexService(nn, std::get<Service>(*obj), true);
      services_[nn] = std::move(obj);
      live_.insert(nn);
      break;
    case ObjectKind::Pod: {
      const Pod& p = std::get<Pod>(*obj);
      indexPod(p, true);
      touchPodServices(p, t);
      pods_[key.ns][key.name] = std::move(obj);
      break;
    }
    case ObjectKind::Endpoints:
      endpoints_[nn] = std::move(obj);
      t->endpoints.insert(nn);
      break;
    case ObjectKind::EndpointSlice: {
      const EndpointSlice& sl = std::get<EndpointSlice>(*obj);
      if (!sl.serviceName.empty()) {
        std::string svc = sl.ns + "/" + sl.serviceName;
        slicesByService_[svc][sl.name] = &sl;
        t->endpoints.insert(svc);
      }
      slices_[nn] = std::move(obj);
      break;
    }
    case ObjectKind::Node:
      nodes_[key.name] = std::move(obj);
      break;
    case ObjectKind::IPAddressPool:
      pools_[key.name] = std::move(obj);
      break;
  }
}

void ObjectStore::apply(const ObjectEvent& ev, Touched* t) {
  using T = ObjectEvent::Type;
  switch (ev.type) {
    case T::Added:
    case T::Modified:
      if (ev.object) put(ev.key, ev.object, t);
      break;
    case T::Deleted:
      remove(ev.key, t);
      break;
    case T::Invalid:
      remove(ev.key, t);
      if (ev.key.kind == ObjectKind::Service) {
        invalidServices_.insert(ev.key.nsName());
        live_.insert(ev.key.nsName());
      } else if (ev.key.kind == ObjectKind::IPAddressPool) {
        invalidPools_.insert(ev.key.name);
      } else {
        invalidOther_.insert(ev.key);
      }
      break;
  }
}

Manifests ObjectStore::toManifests() const {
  Manifests m;
  for (const auto& [k, o] : services_) m.services.push_back(std::get<Service>(*o));
  m.invalidServices = invalidServices_;
  for (const auto& [ns, pods] : pods_)
    for (const auto& [name, o] : pods) m.pods.push_back(std::get<Pod>(*o));
  for (const auto& [k, o] : endpoints_) m.endpoints.push_back(std::get<EndpointsObject>(*o));
  for (const auto& [k, o] : slices_) m.slices.push_back(std::get<EndpointSlice>(*o));
  for (const auto& [k, o] : nodes_) m.nodes.push_back(std::get<NodeObject>(*o));
  for (const auto& [k, o] : pools_) m.pools.push_back(std::get<AddressPool>(*o));
  m.invalidPools = invalidPools_;
  for (const auto& k : invalidOther_) m.invalidObjects.insert(k.str());
  return m;
}

std::vector<const Pod*> ObjectStore::selectPods(
    const std::string& ns, const std::map<std::string, std::string>& selector) const {
  std::vector<const Pod*> out;
  auto byLabel = podLabels_.find(ns);
  auto pods = pods_.find(ns);
  if (selector.empty() || byLabel == podLabels_.end() || pods == pods_.end()) return out;
  // Candidates: the pods with the selector's rarest label.
  const std::set<std::string>* best = nullptr;
  for (const auto& [k, v] : selector) {
    auto it = byLabel->second.find(labelPair(k, v));
    if (it == byLabel->second.end()) return out;
    if (!best || it->second.size() < best->size()) best = &it->second;
  }
  for (const std::string& name : *best) {
    const Pod& p = std::get<Pod>(*pods->second.at(name));
    if (selectorMatches(selector, p)) out.push_back(&p);
  }
  return out;
}

const EndpointsObject* ObjectStore::endpointsFor(const std::string& key) const {
  auto it = endpoints_.find(key);
  return it == endpoints_.end() ? nullptr : &std::get<EndpointsObject>(*it->second);
}

std::vector<const EndpointSlice*> ObjectStore::slicesFor(const std::string& key) const {
  std::vector<const EndpointSlice*> out;
  auto it = slicesByService_.find(key);
  if (it == slicesByService_.end()) return out;
  for (const auto& [name, sl] : it->second) out.push_back(sl);
  return out;
}

}  // namespace ferry
