// The agent's log cap (agent/log.h): when more than 200 lines come in one
// second, the dropped ones are counted and the last of them is still
// written once the second is over, with its own time, so the log ends on
// the latest state (a bench or an operator waiting for the last "synced N
// services" of a burst found it dropped and waited forever).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "agent/log.h"

namespace ferry {
namespace {

// stderr (the logger's sink) into a file while alive.
class CaptureStderr {
 public:
  CaptureStderr() {
    std::fflush(stderr);
    saved_ = dup(2);
    path_ = ::testing::TempDir() + "/ferry-log-test." + std::to_string(getpid());
    FILE* f = std::fopen(path_.c_str(), "w");
    dup2(fileno(f), 2);
    std::fclose(f);
  }
  ~CaptureStderr() { restore(); }
  std::string restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      dup2(saved_, 2);
      close(saved_);
      saved_ = -1;
    }
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  int saved_ = -1;
  std::string path_;
};

TEST(AgentLog, TheLastLineDroppedByTheCapIsWrittenWhenItsSecondEnds) {
  CaptureStderr cap;
  // A new second for the cap, then 250 distinct lines at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  logInfo("log-test start");
  for (int i = 0; i < 250; ++i) logInfo("log-test synced " + std::to_string(i) + " services");
  int due = logTick();
  EXPECT_GT(due, 0) << "lines were dropped: a write is due";
  for (int n = 0; due >= 0 && n < 300; ++n) {  // bounded: at most 3 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    due = logTick();
  }
  EXPECT_EQ(due, -1);
  std::string out = cap.restore();
  EXPECT_NE(out.find("log-test synced 198 services"), std::string::npos);
  EXPECT_EQ(out.find("log-test synced 199 services"), std::string::npos) << "over the cap of 200";
  EXPECT_EQ(out.find("log-test synced 248 services"), std::string::npos);
  size_t warn = out.find("51 log lines dropped in the last second (limit 200 lines/s); the last one follows");
  ASSERT_NE(warn, std::string::npos) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  size_t last = out.find("log-test synced 249 services");
  ASSERT_NE(last, std::string::npos) << "the last line of the burst was lost";
  EXPECT_GT(last, warn);
  // Its own time (the burst's), not the time it was written: earlier than
  // the warning's by most of a second.
  auto lineStart = [&](size_t at) { return out.rfind('\n', at) == std::string::npos ? 0 : out.rfind('\n', at) + 1; };
  std::string tWarn = out.substr(lineStart(warn), 23), tLast = out.substr(lineStart(last), 23);
  EXPECT_LT(tLast, tWarn);
  EXPECT_EQ(logTick(), -1) << "nothing held any more";
}

}  // namespace
}  // namespace ferry
