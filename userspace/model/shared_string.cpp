#include "model/shared_string.h"

#include <mutex>
#include <unordered_set>

namespace ferry {

namespace {

// The intern table: live texts by content. A text whose count fell to 0 is
// never revived (a lookup that finds one makes a new copy and replaces the
// entry), so exactly one releaser deletes each copy, and it erases the
// entry only if it still names that copy.
struct Table {
  struct Hash {
    using is_transparent = void;
    size_t operator()(const SharedString::Rep* r) const {
      return std::hash<std::string_view>{}(r->text);
    }
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Eq {
    using is_transparent = void;
    static std::string_view view(const SharedString::Rep* r) { return r->text; }
    static std::string_view view(std::string_view s) { return s; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const { return view(a) == view(b); }
  };
  std::mutex mu;
  std::unordered_set<SharedString::Rep*, Hash, Eq> set;
};

// Never destroyed: strings in other static objects may outlive any order.
Table& table() {
  static Table* t = new Table;
  return *t;
}

}  // namespace

SharedString::Rep* SharedString::intern(std::string_view s) {
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto it = t.set.find(s);
  if (it != t.set.end()) {
    Rep* r = *it;
    uint32_t n = r->refs.load(std::memory_order_relaxed);
    while (n != 0)
      if (r->refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return r;
    t.set.erase(it);  // dying: its releaser deletes it and finds the entry gone
  }
  Rep* r = new Rep{{1}, std::string(s)};
  t.set.insert(r);
  return r;
}

void SharedString::release(Rep* r) {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    Table& t = table();
    std::lock_guard lock(t.mu);
    auto it = t.set.find(std::string_view(r->text));
    if (it != t.set.end() && *it == r) t.set.erase(it);
  }
  delete r;
}

const std::string& SharedString::emptyString() {
  static const std::string empty;
  return empty;
}

size_t SharedString::internedCount() {
  Table& t = table();
  std::lock_guard lock(t.mu);
  return t.set.size();
}

}  // namespace ferry
