// libFuzzer target: manifest bytes through the whole model (YAML/JSON
// parsing with its limits, object validation, allocation, endpoint
// resolution) and the serialisation the control socket does. Must never
// crash, hang or leak; every error must be short and serialisable.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/limits.h"
#include "model/builder.h"
#include "model/service_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  if (size > limits::kManifestFileBytes) return 0;  // the source never passes more
  std::string text(reinterpret_cast<const char*>(data), size);
  MemoryAllocationStore store;
  BuildOptions opts;
  opts.serviceCidrs = {*IpPrefix::parse("198.19.0.0/16")};
  opts.now = [] { return std::string("2024-05-01T12:00:00Z"); };
  ClusterSnapshot snap = buildSnapshot({{"fuzz.yaml", text}}, opts, store, nullptr);
  for (const auto& e : snap.errors) {
    if (e.message.size() > limits::kErrorMessageBytes + 8) __builtin_trap();
    (void)limits::dumpSafe(nlohmann::json{{"message", e.message}, {"file", e.file}}, SIZE_MAX);
  }
  for (const auto& [key, svc] : snap.services) {
    (void)limits::dumpSafe(serviceToJson(svc), SIZE_MAX);
    (void)limits::dumpSafe(endpointsToJson(svc), SIZE_MAX);
  }
  return 0;
}
