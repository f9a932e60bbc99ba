#include "agent/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "common/limits.h"

namespace ferry {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLogWindow = std::chrono::seconds(10);
constexpr int kLogBurst = 5;
constexpr int kLogLinesPerSecond = 200;
constexpr size_t kTrackedMessages = 4096;  // then the table starts afresh
constexpr size_t kLogLineBytes = 4096;     // longer messages are cut

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_logger_st("ferryd");
    lg->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    lg->flush_on(spdlog::level::trace);  // every line reaches the journal at once
    return lg;
  }();
  return *l;
}

struct Repeat {
  Clock::time_point windowStart;
  int count = 0;
  long suppressed = 0;
};

std::mutex mu;
std::unordered_map<std::string, Repeat> repeats;
Clock::time_point secondStart;
int linesThisSecond = 0;
long droppedThisSecond = 0;
// The last line the per-second cap dropped, written when its second ends.
struct Held {
  spdlog::level::level_enum level = spdlog::level::info;
  std::string msg;
  spdlog::log_clock::time_point at;
};
std::optional<Held> held;

// A new second: the count of dropped lines, then the last of them.
void rollOver(Clock::time_point now) {
  if (droppedThisSecond)
    logger().warn("{} log lines dropped in the last second (limit {} lines/s){}", droppedThisSecond,
                  kLogLinesPerSecond, held ? "; the last one follows" : "");
  if (held) logger().log(held->at, spdlog::source_loc{}, held->level, held->msg);
  held.reset();
  secondStart = now;
  linesThisSecond = 0;
  droppedThisSecond = 0;
}

void write(spdlog::level::level_enum level, const std::string& raw) {
  std::string msg = limits::truncate(raw, kLogLineBytes);
  std::lock_guard<std::mutex> g(mu);
  auto now = Clock::now();
  if (repeats.size() > kTrackedMessages) repeats.clear();
  Repeat& r = repeats[msg];
  if (now - r.windowStart >= kLogWindow) {
    if (r.suppressed)
      logger().log(level, "({} more like this suppressed in {} s) {}", r.suppressed,
                   std::chrono::duration_cast<std::chrono::seconds>(kLogWindow).count(), msg);
    r = Repeat{now, 0, 0};
  }
  if (++r.count > kLogBurst) {
    ++r.suppressed;
    return;
  }
  if (now - secondStart >= std::chrono::seconds(1)) rollOver(now);
  if (++linesThisSecond > kLogLinesPerSecond) {
    ++droppedThisSecond;
    held = Held{level, msg, spdlog::log_clock::now()};
    return;
  }
  logger().log(level, "{}", msg);
}

}  // namespace

int logTick() {
  std::lock_guard<std::mutex> g(mu);
  if (!droppedThisSecond) return -1;
  auto now = Clock::now();
  auto due = secondStart + std::chrono::seconds(1);
  if (now < due)
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count()) + 1;
  rollOver(now);
  return -1;
}

void logInfo(const std::string& m) { write(spdlog::level::info, m); }
void logWarn(const std::string& m) { write(spdlog::level::warn, m); }
void logError(const std::string& m) { write(spdlog::level::err, m); }

}  // namespace ferry
