#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/allocation.h"

namespace ferry {

using nlohmann::json;

namespace {

// Runs fn, turning anything it throws into an error: the store is a
// public boundary and must not let exceptions through.
bool runGuarded(const std::function<void(AllocationRecord&)>& fn, AllocationRecord& rec,
                std::string* error) {
  try {
    fn(rec);
    return true;
  } catch (const std::exception& e) {
    *error = std::string("allocation failed: ") + e.what();
  } catch (...) {
    *error = "allocation failed";
  }
  return false;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);  // also drops the flock
  }
};

std::string sysError(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Other agents hold the lock for the milliseconds of their transaction, so
// a short wait covers them; a process that holds it longer must not freeze
// the caller's loop: after kLockWait the transaction fails (the agent
// retries on a timer).
constexpr auto kLockWait = std::chrono::milliseconds(100);

bool lockFile(const std::string& path, Fd& lock, std::string* error) {
  lock.fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock.fd < 0) return *error = sysError("cannot open lock file", path), false;
  auto until = std::chrono::steady_clock::now() + kLockWait;
  while (flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return *error = sysError("cannot lock", path), false;
    if (std::chrono::steady_clock::now() >= until) {
      *error = "allocation record locked by another process (" + path + " held for more than " +
               std::to_string(kLockWait.count()) + " ms), retrying";
      return false;
    }
    usleep(2000);
  }
  return true;
}

// A missing or empty file is an empty record; anything unparsable is an
// error for an operator to look at.
bool readRecord(const std::string& path, AllocationRecord* rec, std::string* error,
                bool* corrupt) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return true;
  std::ifstream in(path);
  if (!in) return *error = sysError("cannot read", path), false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return true;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string why = j.is_discarded() ? "not valid JSON" : "";
  if (why.empty() && AllocationRecord::fromJson(j, rec, &why)) return true;
  *error = path + ": corrupt allocation record: " + why;
  *corrupt = true;
  return false;
}

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

bool writeRecord(const std::string& path, const AllocationRecord& rec, std::string* error) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  Fd out;
  out.fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out.fd < 0) return *error = sysError("cannot create", tmp), false;
  bool ok = writeAll(out.fd, rec.toJson().dump(2, ' ', false, json::error_handler_t::replace) + "\n") && fsync(out.fd) == 0;
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return true;
  *error = sysError("cannot write", path);
  unlink(tmp.c_str());
  return false;
}

// nullopt when the file does not exist (or cannot be looked at).
std::optional<FileAllocationStore::FileIdentity> identityOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileAllocationStore::FileIdentity{
      uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size),
      uint64_t(st.st_mtim.tv_sec) * 1000000000ull + uint64_t(st.st_mtim.tv_nsec)};
}

}  // namespace

bool MemoryAllocationStore::transact(const std::function<void(AllocationRecord&)>& fn,
                                     std::string* error) {
  AllocationRecord copy = record;  // all or nothing, like the file store
  copy.index.p.reset();            // fn may change the record any way it likes
  if (!runGuarded(fn, copy, error)) return false;
  record = std::move(copy);
  return true;
}

bool MemoryAllocationStore::transactTracked(const std::function<void(AllocationRecord&)>& fn,
                                            std::string* error) {
  AllocationRecord copy = record;
  // A failed transaction may have released nothing the next one knows
  // of: the index is derived again then.
  if (!runGuarded(fn, copy, error)) return record.index.p.reset(), false;
  if (copy.edits == record.edits && !(copy == record)) {
    *error = "internal error: the allocation record changed without an edit noted";
    record.index.p.reset();
    return false;
  }
  record = std::move(copy);
  return true;
}

bool FileAllocationStore::transactTracked(const std::function<void(AllocationRecord&)>& fn,
                                          std::string* error) {
  // Nothing held yet (or dropped after a failure): read, recover, copy and
  // compare as transact() does; it leaves the record held.
  if (!cachedId_) return transact(fn, error);
  {
    Fd lock;
    // (the index is derived again after any failure: see the memory store)
    if (!lockFile(path_ + ".lock", lock, error)) return cached_.index.p.reset(), false;
    std::optional<FileIdentity> id = identityOf(path_);
    if (id && id == cachedId_) {
      uint64_t before = cached_.edits;
      if (!runGuarded(fn, cached_, error)) {
        cachedId_.reset();  // half changed: read the file again next time
        return false;
      }
      if (cached_.edits == before) return true;
      if (!writeRecord(path_, cached_, error)) {
        cachedId_.reset();
        return false;
      }
      cachedId_ = identityOf(path_);
      return true;
    }
  }
  // Another agent replaced the file: read it again (under a new lock).
  return transact(fn, error);
}

bool FileAllocationStore::transact(const std::function<void(AllocationRecord&)>& fn,
                                   std::string* error) {
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return *error = "cannot create " + parent.string() + ": " + ec.message(), false;
  Fd lock;
  if (!lockFile(path_ + ".lock", lock, error)) return false;
  std::optional<FileIdentity> id = identityOf(path_);
  if (!id || cachedId_ != id) {
    // Another agent replaced the file (or it is new to us): read it.
    cachedId_.reset();
    cached_ = AllocationRecord{};
    bool corrupt = false;
    if (!readRecord(path_, &cached_, error, &corrupt)) {
      if (!corrupt || !recovery_) return false;
      // Kept for an operator to look at, never overwritten; the new record
      // is rebuilt from what is programmed (record_recovery.h).
      std::string aside = path_ + ".corrupt-" + std::to_string(::time(nullptr));
      if (std::rename(path_.c_str(), aside.c_str()) != 0)
        return *error += "; " + sysError("cannot move it aside to", aside), false;
      AllocationRecord rec = recovery_();
      notice_ = *error + "; moved to " + aside + ", record rebuilt from the pinned maps and the "
                "manifests' explicit addresses (" + std::to_string(rec.services.size()) + " services)";
      error->clear();
      if (!runGuarded(fn, rec, error) || !writeRecord(path_, rec, error)) return false;
      cached_ = std::move(rec);
      cachedId_ = identityOf(path_);
      return true;
    }
  }
  AllocationRecord rec = cached_;
  rec.index.p.reset();  // fn may change the record any way it likes
  if (!runGuarded(fn, rec, error)) return false;
  if (rec == cached_) {
    cachedId_ = id;
    return true;
  }
  if (!writeRecord(path_, rec, error)) {
    cachedId_.reset();
    return false;
  }
  cached_ = std::move(rec);
  cachedId_ = identityOf(path_);
  return true;
}

}  // namespace ferry
