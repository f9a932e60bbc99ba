#include "agent/agent_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace ferry {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLockRetry = std::chrono::milliseconds(50);

// flock(LOCK_EX | LOCK_NB) on `path` (opened with `flags`), tried until
// `deadline` while another process holds it: the fd, or -1 with *why set.
int lockPath(const std::string& path, int flags, Clock::time_point deadline, std::string* why) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) {
    *why = path + ": " + std::strerror(errno);
    return -1;
  }
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno != EWOULDBLOCK || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kLockRetry);
  }
  *why = errno == EWOULDBLOCK ? "another ferryd is running on " + path + " (it holds the lock)"
                              : path + ": " + std::strerror(errno);
  close(fd);
  return -1;
}

}  // namespace

Status lockAgent(const std::string& bpffs, const std::string& stateDir, int* pinFd, int* stateFd,
                 bool create, std::chrono::milliseconds wait) {
  *pinFd = *stateFd = -1;
  const auto deadline = Clock::now() + wait;
  std::error_code ec;
  if (create) std::filesystem::create_directories(bpffs, ec);
  else if (!std::filesystem::is_directory(bpffs, ec)) return Status::ok();
  std::string why;
  *pinFd = lockPath(bpffs, O_RDONLY | O_DIRECTORY, deadline, &why);
  if (*pinFd < 0) return Status::error("one agent per pin directory: " + why + "; nothing changed");
  if (stateDir.empty() || (!create && !std::filesystem::is_directory(stateDir, ec)))
    return Status::ok();
  std::string lock = stateDir + "/ferryd.lock";
  *stateFd = lockPath(lock, O_RDWR | O_CREAT, deadline, &why);
  if (*stateFd < 0) {
    std::ifstream in(lock);
    std::string pid;
    std::getline(in, pid);
    close(*pinFd);
    *pinFd = -1;
    return Status::error("one agent per state directory: " + why +
                         (pid.empty() ? "" : " (pid " + pid + ")") + "; nothing changed");
  }
  std::string me = std::to_string(getpid()) + "\n";
  if (ftruncate(*stateFd, 0) != 0 || pwrite(*stateFd, me.data(), me.size(), 0) < 0) {
    // only informational
  }
  return Status::ok();
}

}  // namespace ferry
