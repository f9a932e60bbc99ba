// Minimal leveled logging to stderr, one line per event.
#pragma once

#include <cstdio>
#include <ctime>
#include <string>

namespace ferry {

inline void logLine(const char* level, const std::string& msg) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  std::fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s\n", t.tm_hour, t.tm_min, t.tm_sec,
               ts.tv_nsec / 1000000, level, msg.c_str());
  std::fflush(stderr);
}
inline void logInfo(const std::string& m) { logLine("INFO", m); }
inline void logWarn(const std::string& m) { logLine("WARN", m); }
inline void logError(const std::string& m) { logLine("ERROR", m); }

}  // namespace ferry
