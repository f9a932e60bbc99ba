// Applies MapDeltas to the loaded dataplane and reads the programmed
// state back from the (pinned) maps.
#pragma once

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
  // Sockets destroyed by the sweeps so far.
  size_t socketsDestroyed() const { return destroyed_; }
  const std::string& sweepError() const { return sweepError_; }  // the last one, "" = none
  // The state held by the maps (used at start and after a failure).
  ProgrammedState readBack() const;
  // Receives warnings (a Maglev table too small for its backends: the
  // paper's disruption bound needs M > 100 x N).
  void setWarn(std::function<void(const std::string&)> warn) { warn_ = std::move(warn); }

 private:
  Datapath& dp_;
  std::function<void(const std::string&)> warn_;
  size_t destroyed_ = 0;
  std::string sweepError_;
};

}  // namespace ferry
