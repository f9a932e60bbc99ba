// One error style for the agent: a Status carries an errno (0 when not
// from a system call) and a message with context ("service default/web
// port 80: map full"). Expected<T> is a value or a Status.
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace ferry {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string msg, int err = 0) { return Status(std::move(msg), err, true); }
  // For a failed call that set errno (or returned -errno).
  static Status sys(const std::string& what, int err) {
    if (err < 0) err = -err;
    return Status(what + ": " + std::strerror(err), err, true);
  }

  explicit operator bool() const { return !failed_; }
  bool isOk() const { return !failed_; }
  int err() const { return err_; }
  const std::string& message() const { return msg_; }
  // Adds the outer context: "attach eth0: <inner>".
  Status context(const std::string& outer) const {
    return failed_ ? Status(outer + ": " + msg_, err_, true) : *this;
  }

 private:
  Status(std::string msg, int err, bool failed) : msg_(std::move(msg)), err_(err), failed_(failed) {}
  std::string msg_;
  int err_ = 0;
  bool failed_ = false;
};

template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Status s) : v_(std::move(s)) {}
  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const Status& status() const {
    static const Status okStatus;
    return v_.index() == 1 ? std::get<1>(v_) : okStatus;
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ferry
