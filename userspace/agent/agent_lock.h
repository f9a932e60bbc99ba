#pragma once
// The agent's two locks: one agent per pin directory and per state
// directory. A second agent started while one runs exits without touching
// anything; one started while the previous is still dying (killed with
// SIGKILL, its threads not yet gone, or restarted by a supervisor at once)
// waits for it.

#include <chrono>
#include <string>

#include "common/status.h"

namespace ferry {

/// How long a starting agent waits for the locks of one that is exiting.
/// A process killed with SIGKILL drops its flocks only when its last
/// thread has exited; that takes milliseconds, not seconds.
inline constexpr std::chrono::milliseconds kAgentLockWait{3000};

/// Takes both locks of one agent: flock(LOCK_EX) on the pin directory
/// `bpffs` (bpffs directories can be locked, not hold files) and on
/// `<stateDir>/ferryd.lock`, which then names the holder's pid for the
/// operator. Tries every 50 ms for up to `wait`.
/// `create`: make the pin directory first (an agent); else a missing one
/// is simply not locked (cleanup of what may not exist).
/// Out: *pinFd, *stateFd (-1 where nothing was locked); the caller closes
/// them, which releases the locks. Error: "one agent per pin directory:
/// ..." or "one agent per state directory: ... (pid N)", nothing held.
Status lockAgent(const std::string& bpffs, const std::string& stateDir, int* pinFd, int* stateFd,
                 bool create = true, std::chrono::milliseconds wait = kAgentLockWait);

}  // namespace ferry
