#include "k8s/source_set.h"

#include <algorithm>
#include <cstdio>

namespace ferry::k8s {

SourceSet::SourceSet(std::shared_ptr<Client> client, EventQueue& queue, SourceSetOptions opts)
    : client_(std::move(client)),
      queue_(queue),
      opts_(std::move(opts)),
      discoverySource_(queue.registerSource()) {}

SourceSet::~SourceSet() { stop(); }

void SourceSet::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void SourceSet::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lk(mu_);
  for (auto& r : reflectors_) r->stop();
}

void SourceSet::run() {
  auto delay = opts_.reflector.backoffInitial;
  std::vector<const Resource*> want;
  for (;;) {
    want = {&resources::Services, &resources::EndpointSlices, &resources::Nodes};
    std::string err;
    for (const Resource* opt : {opts_.followIPAddressPools ? &resources::IPAddressPools : nullptr,
                                opts_.followServiceCIDRs ? &resources::ServiceCIDRs : nullptr}) {
      if (!opt) continue;
      auto has = client_->hasResource(*opt);
      if (!has) {
        err = has.status().message();
        break;
      }
      if (*has) want.push_back(opt);
    }
    std::unique_lock lk(mu_);
    if (stopping_) return;
    if (err.empty()) {
      if (!discoveryError_.empty() && opts_.reflector.log) opts_.reflector.log("discovery: recovered");
      discoveryError_.clear();
      break;
    }
    if (err != discoveryError_) {
      if (opts_.reflector.log) opts_.reflector.log(err);
      else std::fprintf(stderr, "k8s: %s\n", err.c_str());
    }
    discoveryError_ = err;
    cv_.wait_for(lk, delay, [this] { return stopping_.load(); });
    if (stopping_) return;
    delay = std::min(delay * 2, opts_.reflector.backoffMax);
  }
  std::lock_guard lk(mu_);
  if (stopping_) return;
  for (const Resource* r : want) {
    reflectors_.push_back(std::make_unique<Reflector>(client_, *r, queue_, opts_.reflector));
    reflectors_.back()->start();
  }
  // every reflector is registered with the queue now: synced can only mean all of them
  queue_.markSynced(discoverySource_);
}

std::vector<ReflectorStatus> SourceSet::status() const {
  std::lock_guard lk(mu_);
  std::vector<ReflectorStatus> out;
  for (const auto& r : reflectors_) out.push_back(r->status());
  return out;
}

std::string SourceSet::discoveryError() const {
  std::lock_guard lk(mu_);
  return discoveryError_;
}

std::vector<std::string> SourceSet::followed() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& r : reflectors_) out.push_back(r->resource().id());
  return out;
}

}  // namespace ferry::k8s
