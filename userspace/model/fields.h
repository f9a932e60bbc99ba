// Typed access to fields of a JSON object with errors that name the exact
// path ("spec.ports[1].port"). A missing or null field is "absent"; a field
// of the wrong type is an error and also reads as absent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/snapshot.h"

namespace ferry {

// Where errors of the object being parsed go, and whether any occurred.
class ObjectContext {
 public:
  ObjectContext(std::string file, std::string object, std::vector<ManifestError>* sink)
      : file_(std::move(file)), object_(std::move(object)), sink_(sink) {}

  void error(const std::string& field, const std::string& message);
  // A field ferry does not implement: reported (severity "Warning"), the
  // object is still used.
  void warning(const std::string& field, const std::string& message);
  bool failed() const { return failed_; }
  const std::string& object() const { return object_; }

 private:
  std::string file_, object_;
  std::vector<ManifestError>* sink_;
  bool failed_ = false;
};

// `parent.key` joined the way error paths are written.
std::string fieldPath(const std::string& parent, const std::string& key);
std::string indexPath(const std::string& parent, size_t i);

const nlohmann::json* optField(const nlohmann::json& obj, const char* key);
const nlohmann::json* optObject(ObjectContext& c, const nlohmann::json& obj, const char* key,
                                const std::string& path);
const nlohmann::json* optArray(ObjectContext& c, const nlohmann::json& obj, const char* key,
                               const std::string& path);
std::optional<std::string> optString(ObjectContext& c, const nlohmann::json& obj,
                                     const char* key, const std::string& path);
std::optional<bool> optBool(ObjectContext& c, const nlohmann::json& obj, const char* key,
                            const std::string& path);
std::optional<int64_t> optInt(ObjectContext& c, const nlohmann::json& obj, const char* key,
                              const std::string& path);
// A port number 1-65535; 0 when absent or invalid (invalid is reported).
uint16_t optPort(ObjectContext& c, const nlohmann::json& obj, const char* key,
                 const std::string& path);
// A map of string to string (labels, selectors).
std::map<std::string, std::string> optStringMap(ObjectContext& c, const nlohmann::json& obj,
                                                const char* key, const std::string& path);
// TCP (default when absent) or UDP; SCTP and others are errors.
std::optional<Protocol> optProtocol(ObjectContext& c, const nlohmann::json& obj,
                                    const std::string& path);
// An IP address; "" reads as absent.
std::optional<IpAddr> optIp(ObjectContext& c, const nlohmann::json& obj, const char* key,
                            const std::string& path);

// For messages: the value as the user wrote it.
std::string describe(const nlohmann::json& v);

}  // namespace ferry
