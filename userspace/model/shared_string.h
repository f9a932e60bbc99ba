// Compact immutable strings and lists for the per-endpoint fields that a
// cluster repeats a million times at 100,000 services (node names, target
// references, hostnames, topology hints).
//
// SharedString is one pointer (8 bytes against std::string's 32): an
// interned, reference-counted, immutable string; "" is the null pointer.
// Equal texts share one copy for as long as any object holds it, and the
// copy is freed with its last holder (no growth under churn). Copies only
// count references, so an endpoint copied into every service port costs no
// string allocation. It converts to const std::string&, so readers written
// for std::string compile unchanged. Thread-safe: objects are parsed on the
// source's parser thread and read and dropped on the loop thread (one
// mutex around the intern table; counts are atomic).
//
// SharedList<T> is one pointer to a reference-counted immutable vector
// (not interned; copies share it); an empty list is the null pointer.
#pragma once

#include <atomic>
#include <compare>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ferry {

class SharedString {
 public:
  SharedString() = default;
  SharedString(std::string_view s) : rep_(s.empty() ? nullptr : intern(s)) {}
  SharedString(const std::string& s) : SharedString(std::string_view(s)) {}
  SharedString(const char* s) : SharedString(std::string_view(s)) {}
  SharedString(const SharedString& o) : rep_(o.rep_) {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  SharedString(SharedString&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
  SharedString& operator=(SharedString o) noexcept {
    std::swap(rep_, o.rep_);
    return *this;
  }
  ~SharedString() {
    if (rep_) release(rep_);
  }

  const std::string& str() const { return rep_ ? rep_->text : emptyString(); }
  operator const std::string&() const { return str(); }
  bool empty() const { return !rep_; }
  void clear() { *this = SharedString(); }
  size_t size() const { return str().size(); }
  const char* c_str() const { return str().c_str(); }

  // Interned: equal texts of live strings are one copy, so equal pointers
  // decide most comparisons.
  friend bool operator==(const SharedString& a, const SharedString& b) {
    return a.rep_ == b.rep_ || a.str() == b.str();
  }
  friend std::strong_ordering operator<=>(const SharedString& a, const SharedString& b) {
    if (a.rep_ == b.rep_) return std::strong_ordering::equal;
    return a.str().compare(b.str()) <=> 0;
  }
  // Against std::string, const char*, string_view: no interning.
  template <typename T>
    requires(std::is_convertible_v<const T&, std::string_view> &&
             !std::is_same_v<std::remove_cvref_t<T>, SharedString>)
  friend bool operator==(const SharedString& a, const T& b) {
    return std::string_view(a.str()) == std::string_view(b);
  }
  friend std::ostream& operator<<(std::ostream& os, const SharedString& s) { return os << s.str(); }
  friend std::string operator+(std::string a, const SharedString& b) { return a += b.str(); }
  friend std::string operator+(const SharedString& a, std::string_view b) {
    return std::string(a.str()).append(b);
  }

  // Distinct texts held now (tests: churn must not leak).
  static size_t internedCount();

  // The shared copy (internal; public for the intern table).
  struct Rep {
    std::atomic<uint32_t> refs;
    std::string text;
  };

 private:
  static Rep* intern(std::string_view s);
  static void release(Rep* r);
  static const std::string& emptyString();
  Rep* rep_ = nullptr;
};

template <typename T>
class SharedList {
 public:
  SharedList() = default;
  SharedList(std::vector<T> v) : rep_(v.empty() ? nullptr : new Rep{{1}, std::move(v)}) {}
  SharedList(std::initializer_list<T> v) : SharedList(std::vector<T>(v)) {}
  SharedList(const SharedList& o) : rep_(o.rep_) {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  SharedList(SharedList&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
  SharedList& operator=(SharedList o) noexcept {
    std::swap(rep_, o.rep_);
    return *this;
  }
  ~SharedList() {
    if (rep_ && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete rep_;
  }

  const std::vector<T>& vec() const { return rep_ ? rep_->items : emptyVector(); }
  operator const std::vector<T>&() const { return vec(); }
  bool empty() const { return !rep_; }
  size_t size() const { return vec().size(); }
  auto begin() const { return vec().begin(); }
  auto end() const { return vec().end(); }
  const T& operator[](size_t i) const { return vec()[i]; }

  friend bool operator==(const SharedList& a, const SharedList& b) {
    return a.rep_ == b.rep_ || a.vec() == b.vec();
  }
  friend auto operator<=>(const SharedList& a, const SharedList& b) { return a.vec() <=> b.vec(); }

 private:
  struct Rep {
    std::atomic<uint32_t> refs;
    std::vector<T> items;
  };
  static const std::vector<T>& emptyVector() {
    static const std::vector<T> empty;
    return empty;
  }
  Rep* rep_ = nullptr;
};

}  // namespace ferry
