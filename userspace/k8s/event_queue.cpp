#include "k8s/event_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace ferry::k8s {

const char* eventTypeName(ObjectEvent::Type t) {
  switch (t) {
    case ObjectEvent::Added: return "ADDED";
    case ObjectEvent::Modified: return "MODIFIED";
    case ObjectEvent::Deleted: return "DELETED";
  }
  return "?";
}

EventQueue::EventQueue() {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

EventQueue::~EventQueue() {
  if (fd_ >= 0) close(fd_);
}

void EventQueue::signal() {
  uint64_t one = 1;
  // EAGAIN only when the counter would overflow: it is readable anyway.
  (void)!write(fd_, &one, sizeof one);
}

int EventQueue::registerSource() {
  std::lock_guard lk(mu_);
  synced_.push_back(false);
  return static_cast<int>(synced_.size()) - 1;
}

void EventQueue::markSynced(int source) {
  {
    std::lock_guard lk(mu_);
    if (source < 0 || source >= static_cast<int>(synced_.size()) || synced_[source]) return;
    synced_[source] = true;
  }
  signal();
}

void EventQueue::push(std::vector<ObjectEvent> events) {
  if (events.empty()) return;
  {
    std::lock_guard lk(mu_);
    for (auto& e : events) events_.push_back(std::move(e));
  }
  signal();
}

EventBatch EventQueue::drain() {
  uint64_t v;
  (void)!read(fd_, &v, sizeof v);
  EventBatch b;
  std::lock_guard lk(mu_);
  b.events.swap(events_);
  b.synced = !synced_.empty();
  for (bool s : synced_) b.synced = b.synced && s;
  return b;
}

size_t EventQueue::pending() const {
  std::lock_guard lk(mu_);
  return events_.size();
}

}  // namespace ferry::k8s
