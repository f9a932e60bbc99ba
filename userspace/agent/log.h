// The agent's log: one line per event on stderr (the journal under
// systemd), through spdlog: UTC date and time to the millisecond, the
// level, the message.
//
// Repeated lines are rate-limited so that a flapping manifest or a hostile
// client cannot flood the journal: the same message text is written at most
// kLogBurst times per kLogWindow; further repeats are counted and one line
// "(N more like this suppressed)" follows when the window ends and the
// message comes again. All lines together are capped at kLogLinesPerSecond;
// when that cap drops lines, the last dropped one is still written once its
// second is over, with its own time, after the count of dropped lines: the
// log always ends on the latest state (the last "synced N services" of a
// burst), which a reader waits for.
#pragma once

#include <string>

namespace ferry {

void logInfo(const std::string& msg);
void logWarn(const std::string& msg);
void logError(const std::string& msg);
// Writes what the per-second cap held back once its second is over (the
// event loop calls it on every pass). Returns the milliseconds until that
// is due, or -1 when nothing is held.
int logTick();

}  // namespace ferry
