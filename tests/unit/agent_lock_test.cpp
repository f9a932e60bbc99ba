// One agent per pin directory and per state directory: a second agent
// fails without touching anything, but an agent started while the previous
// one is still exiting (SIGKILL'd, its threads not yet gone) waits for it.

#include "agent/agent_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace ferry {
namespace {

using namespace std::chrono_literals;

struct TempDirs {
  std::string root, bpffs, state;
  TempDirs() {
    char tmpl[] = "/tmp/ferry-lock-test-XXXXXX";
    root = mkdtemp(tmpl);
    bpffs = root + "/pins";
    state = root + "/state";
    std::filesystem::create_directories(bpffs);
    std::filesystem::create_directories(state);
  }
  ~TempDirs() { std::filesystem::remove_all(root); }
};

// Another process holding flock on `path` for `holdMs`; signalled through a
// pipe once it holds it. Returns the pid (killed and reaped by Holder's dtor).
struct Holder {
  pid_t pid = -1;
  Holder(const std::string& path, int flags, int holdMs) {
    int p[2];
    if (pipe(p) != 0) return;
    pid = fork();
    if (pid == 0) {
      int fd = open(path.c_str(), flags, 0600);
      if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
      if (write(p[1], "x", 1) != 1) _exit(1);
      usleep(holdMs * 1000);
      _exit(0);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) pid = -1;
    close(p[0]);
  }
  ~Holder() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

void closeBoth(int a, int b) {
  if (a >= 0) close(a);
  if (b >= 0) close(b);
}

TEST(AgentLock, SecondAgentFailsNamingThePinDirectory) {
  TempDirs d;
  Holder h(d.bpffs, O_RDONLY | O_DIRECTORY, 20000);
  ASSERT_GT(h.pid, 0);
  int pin = -1, state = -1;
  Status s = lockAgent(d.bpffs, d.state, &pin, &state, true, 200ms);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("one agent per pin directory: another ferryd is running on " + d.bpffs),
            std::string::npos)
      << s.message();
  EXPECT_EQ(pin, -1);
  EXPECT_EQ(state, -1);
}

TEST(AgentLock, StateDirectoryHeldNamesTheHolderAndReleasesThePinLock) {
  TempDirs d;
  int pin = -1, state = -1;
  ASSERT_TRUE(lockAgent(d.bpffs, d.state, &pin, &state, true, 0ms));
  ASSERT_GE(state, 0);
  closeBoth(pin, -1);  // pin directory free, state directory still held (by us, another fd)
  int pin2 = -1, state2 = -1;
  Status s = lockAgent(d.bpffs, d.state, &pin2, &state2, true, 100ms);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("one agent per state directory"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("(pid " + std::to_string(getpid()) + ")"), std::string::npos)
      << s.message();
  EXPECT_EQ(pin2, -1) << "the pin lock is kept after the state lock failed";
  // and the pin directory is indeed free again
  int pin3 = -1, state3 = -1;
  EXPECT_TRUE(lockAgent(d.bpffs, "", &pin3, &state3, true, 0ms));
  closeBoth(pin3, state3);
  closeBoth(-1, state);
}

// The case an agent restarted right after `kill -9` of the previous one
// met: the lock is still held for a moment, and the new agent must not
// give up at once.
TEST(AgentLock, WaitsForAnAgentThatIsExiting) {
  TempDirs d;
  Holder h(d.bpffs, O_RDONLY | O_DIRECTORY, 700);
  ASSERT_GT(h.pid, 0);
  int pin = -1, state = -1;
  // held: without a wait it fails ...
  ASSERT_FALSE(lockAgent(d.bpffs, d.state, &pin, &state, true, 0ms));
  // ... with the agent's wait it gets both locks once the holder is gone
  Status s = lockAgent(d.bpffs, d.state, &pin, &state);
  EXPECT_TRUE(s) << s.message();
  EXPECT_GE(pin, 0);
  EXPECT_GE(state, 0);
  closeBoth(pin, state);
}

TEST(AgentLock, CleanupOfAMissingPinDirectoryLocksNothing) {
  TempDirs d;
  int pin = 7, state = 7;
  EXPECT_TRUE(lockAgent(d.root + "/absent", d.state, &pin, &state, /*create=*/false, 0ms));
  EXPECT_EQ(pin, -1);
  EXPECT_EQ(state, -1);
  EXPECT_FALSE(std::filesystem::exists(d.root + "/absent"));
}

}  // namespace
}  // namespace ferry
