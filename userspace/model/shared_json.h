// One immutable JSON tree shared by every copy of the object that holds it.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

namespace ferry {

// A manifest as read (Service::object): the object store, the snapshot,
// the last-good set and the file tracker all hold copies of a Service, and
// each copy held its own tree before (hundreds of MiB at 100,000
// services). Copies now share one tree; writing through mut() copies it
// first (copy on write), so no holder sees another's edit. Compares by
// content.
class SharedJson {
 public:
  SharedJson() = default;
  SharedJson(nlohmann::json j)  // NOLINT: implicit, as the json it replaces
      : p_(std::make_shared<const nlohmann::json>(std::move(j))) {}

  // The tree (null when none was set).
  const nlohmann::json& get() const { return p_ ? *p_ : null(); }
  bool is_object() const { return get().is_object(); }
  // A private copy to change (the other holders keep theirs).
  nlohmann::json& mut() {
    auto own = std::make_shared<nlohmann::json>(get());
    nlohmann::json& ref = *own;
    p_ = std::move(own);
    return ref;
  }
  bool operator==(const SharedJson& o) const { return p_ == o.p_ || get() == o.get(); }

 private:
  static const nlohmann::json& null() {
    static const nlohmann::json n;
    return n;
  }
  std::shared_ptr<const nlohmann::json> p_;
};

}  // namespace ferry
