#include "model/fields.h"

#include "common/limits.h"

namespace ferry {

using nlohmann::json;

void ObjectContext::error(const std::string& field, const std::string& message) {
  failed_ = true;
  // An error never quotes more than kErrorMessageBytes of input.
  if (sink_)
    sink_->push_back({file_, limits::truncate(object_, limits::kQuotedValueBytes),
                      limits::truncate(field, limits::kQuotedValueBytes), limits::truncate(message)});
}

void ObjectContext::warning(const std::string& field, const std::string& message) {
  if (sink_) sink_->push_back({file_, object_, field, message, "Warning"});
}

std::string fieldPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string indexPath(const std::string& parent, size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

std::string describe(const json& v) {
  return v.is_string() ? limits::truncate(v.get<std::string>(), limits::kQuotedValueBytes)
                       : limits::dumpSafe(v);
}

const json* optField(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

namespace {

std::string typeName(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  return "a number";
}

void wrongType(ObjectContext& c, const std::string& path, const char* want, const json& got) {
  c.error(path, std::string("must be ") + want + ", got " + typeName(got) + " " + limits::dumpSafe(got));
}

}  // namespace

const json* optObject(ObjectContext& c, const json& obj, const char* key,
                      const std::string& path) {
  const json* v = optField(obj, key);
  if (v && !v->is_object()) {
    wrongType(c, path, "an object", *v);
    return nullptr;
  }
  return v;
}

const json* optArray(ObjectContext& c, const json& obj, const char* key, const std::string& path) {
  const json* v = optField(obj, key);
  if (v && !v->is_array()) {
    wrongType(c, path, "a list", *v);
    return nullptr;
  }
  return v;
}

std::optional<std::string> optString(ObjectContext& c, const json& obj, const char* key,
                                     const std::string& path) {
  const json* v = optField(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    wrongType(c, path, "a string", *v);
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<bool> optBool(ObjectContext& c, const json& obj, const char* key,
                            const std::string& path) {
  const json* v = optField(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    wrongType(c, path, "true or false", *v);
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<int64_t> optInt(ObjectContext& c, const json& obj, const char* key,
                              const std::string& path) {
  const json* v = optField(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_integer() && !(v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX))
    return v->get<int64_t>();
  wrongType(c, path, "an integer", *v);
  return std::nullopt;
}

uint16_t optPort(ObjectContext& c, const json& obj, const char* key, const std::string& path) {
  auto n = optInt(c, obj, key, path);
  if (!n) return 0;
  if (*n < 1 || *n > 65535) {
    c.error(path, "must be between 1 and 65535, got " + std::to_string(*n));
    return 0;
  }
  return uint16_t(*n);
}

std::map<std::string, std::string> optStringMap(ObjectContext& c, const json& obj,
                                                const char* key, const std::string& path) {
  std::map<std::string, std::string> out;
  const json* m = optObject(c, obj, key, path);
  if (!m) return out;
  for (const auto& [k, v] : m->items()) {
    if (v.is_string())
      out[k] = v.get<std::string>();
    else if (v.is_null())
      out[k] = "";
    else
      // Kubernetes rejects `app: true` too; quoting it is the fix.
      c.error(fieldPath(path, k), "must be a string (quote it), got " + limits::dumpSafe(v));
  }
  return out;
}

std::optional<Protocol> optProtocol(ObjectContext& c, const json& obj, const std::string& path) {
  if (!optField(obj, "protocol")) return Protocol::TCP;
  auto p = optString(c, obj, "protocol", path);
  if (!p) return std::nullopt;
  if (*p == "TCP") return Protocol::TCP;
  if (*p == "UDP") return Protocol::UDP;
  if (*p == "SCTP")
    c.error(path, "protocol SCTP is not supported by ferry");
  else
    c.error(path, "unsupported protocol \"" + *p + "\": must be TCP or UDP");
  return std::nullopt;
}

std::optional<IpAddr> optIp(ObjectContext& c, const json& obj, const char* key,
                            const std::string& path) {
  auto s = optString(c, obj, key, path);
  if (!s || s->empty()) return std::nullopt;  // "" is how the API writes "not yet"
  auto ip = IpAddr::parse(*s);
  if (!ip) c.error(path, "must be a valid IP address, got \"" + *s + "\"");
  return ip;
}

}  // namespace ferry
