// Applies MapDeltas to the loaded dataplane and reads the programmed
// state back from the (pinned) maps.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dataplane/bpf.h"
#include "dataplane/planner.h"

namespace ferry {

class MapWriter {
 public:
  explicit MapWriter(Datapath& dp) : dp_(dp) {}
  // Applies in the delta's order. Returns one message per failed entry
  // ("Service default/web port (80/TCP): map update: No space left").
  // When memberships or frontends went away, the node's connected UDP
  // sockets pinned to those backends are destroyed afterwards
  // (Datapath::sweepStaleUdpSockets), so the application reconnects to a
  // live backend at once.
  std::vector<std::string> apply(const MapDelta& delta);
  std::vector<std::string> apply(MapDelta&& delta);
  // The same writes in slices, so the event loop keeps serving while a
  // large delta (initial programming, a re-list) goes in: begin() takes the
  // delta, each step() writes on in the delta's order, in chunks of up to
  // 512 entries (one batched system call each), until `deadline` has passed
  // (at least one chunk per call) and returns true once everything is
  // written; takeFailures() then gives apply()'s messages. Between steps
  // the maps hold a prefix of the delta: the same states a reader could see
  // during apply(), only for longer. apply() is begin() + one unbounded step.
  void begin(MapDelta delta);
  bool step(std::chrono::steady_clock::time_point deadline);
  bool writing() const { return writing_; }
  std::vector<std::string> takeFailures();
  // Counts the deltas begun (apply() included): a reader that saw the same
  // generation before and after saw no write of this writer in between
  // (DriftScan).
  uint64_t generation() const { return generation_; }
  // Sockets destroyed by the sweeps so far.
  size_t socketsDestroyed() const { return destroyed_; }
  const std::string& sweepError() const { return sweepError_; }  // the last one, "" = none
  const Datapath& dataplane() const { return dp_; }
  // The state held by the maps (used at start and after a failure).
  ProgrammedState readBack() const;
  // Receives warnings (a Maglev table too small for its backends: the
  // paper's disruption bound needs M > 100 x N).
  void setWarn(std::function<void(const std::string&)> warn) { warn_ = std::move(warn); }

 private:
  Datapath& dp_;
  std::function<void(const std::string&)> warn_;
  size_t destroyed_ = 0;
  uint64_t generation_ = 0;
  std::string sweepError_;
  // The delta being written: phase_ (0 backends .. 11 source range
  // deletes, 12 the UDP socket sweep) and the next entry at_ of it.
  static constexpr int kLastPhase = 12;
  MapDelta d_;
  bool writing_ = false;
  int phase_ = 0;
  size_t at_ = 0;
  std::vector<std::string> errors_;
  std::vector<uint32_t> beIds_;
  std::vector<ferry_backend> beValues_;
  std::vector<ferry_svc_key> svcKeys_[2];  // slots, masters
  std::vector<ferry_svc_value> svcValues_[2];
  std::vector<uint8_t> srValues_;
};

}  // namespace ferry
