// Node leases for L2 announcement: each agent proves it is alive by
// renewing a lease shaped like a Kubernetes coordination.k8s.io/v1 Lease,
// so the same logic maps onto Lease objects once the API server is a
// source. In manifest-directory mode a lease is one JSON file per node in
// a directory all agents share: <dir>/<node>.json.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "announce/clock.h"
#include "common/status.h"

namespace ferry {

constexpr int kDefaultLeaseSeconds = 2;

struct Lease {
  std::string holder;                          // spec.holderIdentity (the node name)
  int durationSeconds = kDefaultLeaseSeconds;  // spec.leaseDurationSeconds
  WallTime acquireTime;                        // spec.acquireTime
  WallTime renewTime;                          // spec.renewTime

  // Live while now < renewTime + leaseDuration.
  bool liveAt(WallTime now) const {
    return now < renewTime + std::chrono::seconds(durationSeconds);
  }
  // The Lease object: apiVersion, kind, metadata, spec.
  nlohmann::json toJson() const;
  static std::optional<Lease> fromJson(const nlohmann::json& j, std::string* error);
  bool operator==(const Lease&) const = default;
};

// Kubernetes MicroTime: RFC 3339 in UTC with exactly six fraction digits,
// "2024-05-01T12:00:00.123456Z". Parsing also accepts other fraction
// lengths and numeric offsets ("+02:00"), as Go's RFC3339 parser does.
std::string formatMicroTime(WallTime t);
std::optional<WallTime> parseMicroTime(std::string_view text);

// Node names become file names: DNS-1123 subdomains only (lowercase
// alphanumerics, '-', '.'; at most 253), which excludes '/' and "..".
bool isValidLeaseName(std::string_view node);

struct LeaseRead {
  std::vector<Lease> leases;        // sorted by holder
  std::vector<std::string> errors;  // unreadable or malformed entries, skipped
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // Writes node's lease with renewTime = now (acquireTime kept while the
  // previous lease of the node is still live, now otherwise).
  virtual Status renew(const std::string& node, WallTime now) = 0;
  // Clean stop: the lease goes away, so others take over at once instead
  // of after expiry.
  virtual Status release(const std::string& node) = 0;
  virtual LeaseRead readAll() = 0;
};

class DirectoryLeaseStore : public LeaseStore {
 public:
  explicit DirectoryLeaseStore(
      std::string dir, std::chrono::seconds duration = std::chrono::seconds(kDefaultLeaseSeconds))
      : dir_(std::move(dir)), duration_(duration) {}
  // Atomic: written to a hidden temp file in the same directory, then
  // renamed over <dir>/<node>.json. Creates the directory if missing.
  Status renew(const std::string& node, WallTime now) override;
  Status release(const std::string& node) override;
  // Reads <dir>/*.json (names starting with '.' are temp files, skipped).
  LeaseRead readAll() override;
  const std::string& dir() const { return dir_; }

 private:
  std::string path(const std::string& node) const { return dir_ + "/" + node + ".json"; }
  std::optional<Lease> readOne(const std::string& path, std::string* error, bool* missing) const;
  std::string dir_;
  std::chrono::seconds duration_;
};

}  // namespace ferry
