// Document dispatch: identify each object (kind, apiVersion, metadata),
// reject duplicates, and hand it to its kind's parser.
#include "model/manifest.h"

#include "common/limits.h"

#include <algorithm>
#include <iterator>
#include <tuple>

#include "model/names.h"
#include "model/object_parsers.h"
#include "model/yaml_json.h"

namespace ferry {

using nlohmann::json;

namespace {

struct KindInfo {
  const char* kind;
  const char* apiVersion;
  bool namespaced;
};

constexpr KindInfo kKinds[] = {
    {"Service", "v1", true},
    {"Endpoints", "v1", true},
    {"Pod", "v1", true},
    {"Node", "v1", false},
    {"EndpointSlice", "discovery.k8s.io/v1", true},
    {"IPAddressPool", "metallb.io/v1beta1", false},  // namespaced in MetalLB; ignored here
};

const KindInfo* findKind(const std::string& kind) {
  for (const auto& k : kKinds)
    if (kind == k.kind) return &k;
  return nullptr;
}

class ManifestParser {
 public:
  // `outer`: the definitions of the files parsed before, when this parser
  // reads one file on the side (streamList).
  explicit ManifestParser(Manifests& out, const std::map<std::string, std::string>* outer = nullptr)
      : out_(out), outer_(outer) {}
  void parseFile(const SourceFile& f);
  void parseOne(const json& o, const std::string& origin) { parseObject(o, origin, "object", ""); }

 private:
  // `owned`: o itself, when the caller gives it away (a streamed item):
  // a Service then takes it as its manifest instead of a copy.
  void parseObject(const json& o, const std::string& file, const std::string& doc,
                   const std::string& prefix, json* owned = nullptr);
  bool streamList(const SourceFile& f);
  void parseList(const json& o, const std::string& file, const std::string& doc,
                 const std::string& prefix);
  bool checkIdentity(ObjectContext& c, const KindInfo& k, const std::string& apiVersion,
                     const ObjectMeta& m);
  bool claim(ObjectContext& c, const std::string& label, const std::string& file);
  void dispatch(ObjectContext& c, const json& o, const ObjectMeta& m, json* owned);
  bool excluded(const ObjectContext& c);
  void broken(const std::string& file, const std::string& doc, const std::string& field,
              const std::string& message);

  Manifests& out_;
  const std::map<std::string, std::string>* outer_;
  std::map<std::string, std::string> seen_;  // "Service default/web" -> file
};

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// A JSON List read item by item (streamJsonList), into a Manifests of its
// own that is merged only when the whole file was read: on any problem the
// file is parsed the ordinary way, which reports it, and nothing streamed
// is kept. Same objects, errors and order as parseList.
bool ManifestParser::streamList(const SourceFile& f) {
  Manifests tmp;
  ManifestParser sub(tmp, &seen_);
  size_t i = 0;
  bool ok = streamJsonList(f.content, limits::kNestingDepth, limits::kDocumentsPerFile,
                           [&](json& item) {
                             sub.parseObject(item, f.path, "document 1", indexPath("items", i++), &item);
                           });
  if (!ok) return false;
  append(out_.services, tmp.services);
  append(out_.pods, tmp.pods);
  append(out_.endpoints, tmp.endpoints);
  append(out_.slices, tmp.slices);
  append(out_.nodes, tmp.nodes);
  append(out_.pools, tmp.pools);
  append(out_.errors, tmp.errors);
  out_.invalidServices.merge(tmp.invalidServices);
  out_.invalidPools.merge(tmp.invalidPools);
  out_.invalidObjects.merge(tmp.invalidObjects);
  out_.brokenFiles.merge(tmp.brokenFiles);
  seen_.merge(sub.seen_);
  return true;
}

void ManifestParser::broken(const std::string& file, const std::string& doc,
                            const std::string& field, const std::string& message) {
  out_.errors.push_back({file, doc, field, message});
  out_.brokenFiles.insert(file);
}

void ManifestParser::parseFile(const SourceFile& f) {
  if (!f.error.empty()) return broken(f.path, "file", "", limits::truncate(f.error));
  if (streamList(f)) return;
  for (const YamlDocument& d : parseYamlDocuments(f.content)) {
    std::string doc = "document " + std::to_string(d.index);
    if (!d.error.empty())
      broken(f.path, doc, "", d.error);
    else
      parseObject(d.value, f.path, doc, "");
  }
}

void ManifestParser::parseList(const json& o, const std::string& file, const std::string& doc,
                               const std::string& prefix) {
  ObjectContext c(file, doc, &out_.errors);
  const json* items = optArray(c, o, "items", fieldPath(prefix, "items"));
  if (c.failed()) out_.brokenFiles.insert(file);
  if (!items) return;
  if (items->size() > limits::kDocumentsPerFile) {
    broken(file, doc, fieldPath(prefix, "items"),
           "more than " + std::to_string(limits::kDocumentsPerFile) +
               " objects in one List (limit kDocumentsPerFile)");
    return;
  }
  for (size_t i = 0; i < items->size(); ++i)
    parseObject((*items)[i], file, doc, indexPath(fieldPath(prefix, "items"), i));
}

void ManifestParser::parseObject(const json& o, const std::string& file, const std::string& doc,
                                 const std::string& prefix, json* owned) {
  if (!o.is_object())
    return broken(file, doc, prefix, "must be a Kubernetes object (a mapping), got " + limits::dumpSafe(o));
  ObjectContext idc(file, doc, &out_.errors);
  auto kind = optString(idc, o, "kind", fieldPath(prefix, "kind"));
  auto apiVersion = optString(idc, o, "apiVersion", fieldPath(prefix, "apiVersion"));
  if (kind == "List") return parseList(o, file, doc, prefix);
  const json* meta = optObject(idc, o, "metadata", fieldPath(prefix, "metadata"));
  auto name = meta ? optString(idc, *meta, "name", fieldPath(prefix, "metadata.name"))
                   : std::nullopt;
  if (!kind) idc.error(fieldPath(prefix, "kind"), "is required");
  if (!apiVersion) idc.error(fieldPath(prefix, "apiVersion"), "is required");
  if (!name) idc.error(fieldPath(prefix, "metadata.name"), "is required");
  if (idc.failed()) {
    out_.brokenFiles.insert(file);
    return;
  }
  const KindInfo* k = findKind(*kind);
  if (!k) return;  // kinds ferry does not use yet

  ObjectMeta m;
  m.kind = *kind;
  m.apiVersion = *apiVersion;
  m.name = *name;
  m.file = file;
  std::string label = m.kind + " " + m.name;
  ObjectContext c(file, label, &out_.errors);
  if (k->namespaced) {
    m.ns = optString(c, *meta, "namespace", "metadata.namespace").value_or("");
    if (m.ns.empty()) m.ns = "default";
    label = m.kind + " " + m.ns + "/" + m.name;
    c = ObjectContext(file, label, &out_.errors);
  }
  m.labels = optStringMap(c, *meta, "labels", "metadata.labels");
  m.creationTimestamp =
      optString(c, *meta, "creationTimestamp", "metadata.creationTimestamp").value_or("");
  m.deleting = optField(*meta, "deletionTimestamp") != nullptr;
  if (!claim(c, label, file)) return;
  bool identityOk = checkIdentity(c, *k, *apiVersion, m);
  if (m.kind == "Service" && (!identityOk || c.failed())) {
    out_.invalidServices.insert(m.ns + "/" + m.name);
    return;
  }
  if (m.kind == "IPAddressPool" && (!identityOk || c.failed())) {
    out_.invalidPools.insert(m.name);
    return;
  }
  if (identityOk) dispatch(c, o, m, owned);
  else out_.invalidObjects.insert(label);
}

// An object with any error is left out whole (issue 11: never
// half-applied); the error names what is wrong.
bool ManifestParser::excluded(const ObjectContext& c) {
  if (!c.failed()) return false;
  out_.invalidObjects.insert(c.object());
  return true;
}

// The first definition wins; files are visited in path order.
bool ManifestParser::claim(ObjectContext& c, const std::string& label, const std::string& file) {
  auto it = outer_ ? outer_->find(label) : seen_.end();
  bool fresh = false;
  if (!outer_ || it == outer_->end()) std::tie(it, fresh) = seen_.emplace(label, file);
  if (fresh) return true;
  c.error("metadata.name", "duplicate " + label + ", already defined in " + it->second +
                               " (that definition is used)");
  return false;
}

bool ManifestParser::checkIdentity(ObjectContext& c, const KindInfo& k,
                                   const std::string& apiVersion, const ObjectMeta& m) {
  bool ok = true;
  if (apiVersion != k.apiVersion) {
    c.error("apiVersion", "unsupported apiVersion \"" + apiVersion + "\" for kind " + k.kind +
                              ": must be " + k.apiVersion);
    ok = false;
  }
  std::string why = m.kind == "Service" ? checkDns1035Label(m.name) : checkDns1123Subdomain(m.name);
  if (!why.empty()) {
    c.error("metadata.name", why);
    ok = false;
  }
  if (k.namespaced) {
    if (auto nsWhy = checkDns1123Label(m.ns); !nsWhy.empty()) {
      c.error("metadata.namespace", nsWhy);
      ok = false;
    }
  }
  return ok;
}

void ManifestParser::dispatch(ObjectContext& c, const json& o, const ObjectMeta& m, json* owned) {
  if (m.kind == "Service") {
    Service s = parseService(c, o, m);
    if (owned) s.object = std::move(*owned);
    else s.object = o;
    if (c.failed())
      out_.invalidServices.insert(s.key());
    else
      out_.services.push_back(std::move(s));
  } else if (m.kind == "Pod") {
    Pod p = parsePod(c, o, m);
    if (!excluded(c)) out_.pods.push_back(std::move(p));
  } else if (m.kind == "Endpoints") {
    EndpointsObject e = parseEndpoints(c, o, m);
    if (!excluded(c)) out_.endpoints.push_back(std::move(e));
  } else if (m.kind == "EndpointSlice") {
    EndpointSlice sl = parseEndpointSlice(c, o, m);
    if (!excluded(c)) out_.slices.push_back(std::move(sl));
  } else if (m.kind == "Node") {
    Node n = parseNode(c, o, m);
    if (!excluded(c)) out_.nodes.push_back({std::move(n), m.file});
  } else if (m.kind == "IPAddressPool") {
    AddressPool p = parseAddressPool(c, o, m);
    if (c.failed())
      out_.invalidPools.insert(p.name);
    else
      out_.pools.push_back(std::move(p));
  }
}

}  // namespace

Manifests parseManifests(const std::vector<SourceFile>& files) {
  std::vector<const SourceFile*> sorted;
  for (const auto& f : files) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const SourceFile* a, const SourceFile* b) { return a->path < b->path; });
  Manifests out;
  ManifestParser parser(out);
  for (const SourceFile* f : sorted) parser.parseFile(*f);
  return out;
}

Manifests parseObject(const std::string& origin, const nlohmann::json& object) {
  Manifests out;
  ManifestParser(out).parseOne(object, origin);
  return out;
}

}  // namespace ferry
