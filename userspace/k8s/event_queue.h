// Thread-safe hand-over of ObjectEvents from the reflector threads to the
// agent's event loop: push from any thread, poll fd() (an eventfd, readable
// when something is queued or the synced state changed), then drain().
#pragma once

#include <mutex>
#include <vector>

#include "k8s/event.h"

namespace ferry::k8s {

class EventQueue {
 public:
  EventQueue();  // throws std::system_error if eventfd(2) fails
  ~EventQueue();
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // The eventfd (non-blocking, close-on-exec) to poll for POLLIN.
  int fd() const { return fd_; }

  // A source (one reflector) that must complete its initial list before the
  // queue reports synced. Returns its id for markSynced().
  int registerSource();
  void markSynced(int source);

  void push(std::vector<ObjectEvent> events);

  // Everything queued so far, and whether every source has synced. Clears
  // the eventfd; never blocks.
  EventBatch drain();

  size_t pending() const;

 private:
  void signal();
  int fd_ = -1;
  mutable std::mutex mu_;
  std::vector<ObjectEvent> events_;
  std::vector<bool> synced_;
};

}  // namespace ferry::k8s
