// ferry-modelbench: the agent's control plane without a kernel, for
// profiling (perf record -g) and quick figures. Reads every manifest of a
// directory (scripts/bench/gen.py manifests N DIR) file by file through
// the FileTracker (as the source's parser thread does), applies the events
// in slices to the incremental model with a file allocation record, plans
// the per-service map delta and updates the DNS records, as the agent's
// loop does, and prints one line per slice and the totals.
//
//   ferry-modelbench DIR [--slice EVENTS] [--record PATH]
//
// Not a test: figures only (CPU ms per stage, RSS).
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <fstream>
#include <sstream>
#include <string>

#include "dataplane/service_planner.h"
#include "dns/records.h"
#include "model/allocation.h"
#include "model/cluster_model.h"
#include "model/file_tracker.h"

using namespace ferry;

namespace {

// CPU time of this thread, ms: the machine is shared, wall time is noise.
double cpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

long rssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  return -1;
}

// Bytes malloc has handed out and not had back, MiB.
double heapMb() {
  struct mallinfo2 mi = mallinfo2();
  return double(mi.uordblks + mi.hblkhd) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ferry-modelbench DIR [--slice EVENTS] [--record PATH]\n");
    return 2;
  }
  std::string dir = argv[1];
  size_t slice = 20000;
  std::string record = "/tmp/ferry-modelbench-" + std::to_string(getpid()) + ".json";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--slice")) slice = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--record")) record = argv[i + 1];
  }
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".json" || e.path().extension() == ".yaml") paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());

  FileAllocationStore store(record);
  BuildOptions opts;
  opts.serviceCidrs = {*IpPrefix::parse("198.19.0.0/16"), *IpPrefix::parse("2001:db8:ffff::/112")};
  auto modelOwner = std::make_unique<ClusterModel>(opts, store);
  ClusterModel& model = *modelOwner;
  auto plannerOwner = std::make_unique<ServicePlanner>("node1");
  ServicePlanner& planner = *plannerOwner;
  ClusterSnapshot empty;
  planner.reset(empty, ProgrammedState{});
  auto dns = DnsRecords::buildIncremental(empty, "cluster.local", 5, 1);
  auto trackerOwner = std::make_unique<FileTracker>();
  FileTracker& tracker = *trackerOwner;

  double parseMs = 0, modelMs = 0, planMs = 0, dnsMs = 0, worst = 0;
  size_t entries = 0, slices = 0;
  double start = cpuMs();
  // As the directory source: 64 files per update, sliced by the loop.
  for (size_t f = 0; f < paths.size(); f += 64) {
    double t = cpuMs();
    std::vector<FileChange> changes;
    for (size_t i = f; i < std::min(paths.size(), f + 64); ++i) {
      std::ifstream in(paths[i]);
      std::stringstream ss;
      ss << in.rdbuf();
      changes.push_back({paths[i], ss.str()});
    }
    SourceUpdate all = tracker.apply(changes);
    parseMs += cpuMs() - t;
    if (all.events.size() > slice) {  // as the agent does before slicing
      double t0 = cpuMs();
      model.preallocate(all.events);
      modelMs += cpuMs() - t0;
    }
    for (size_t off = 0; off < all.events.size(); off += slice) {
      SourceUpdate u;
      size_t end = std::min(all.events.size(), off + slice);
      u.events.assign(all.events.begin() + off, all.events.begin() + end);
      if (off == 0) u.errors = all.errors;
      double t0 = cpuMs();
      ChangeSet cs = model.apply(u);
      double m = cpuMs() - t0;
      double t1 = cpuMs();
      MapDelta d = planner.update(model.snapshot(), cs.services);
      double pl = cpuMs() - t1;
      double t2 = cpuMs();
      for (const std::string& key : cs.services) {
        auto it = model.snapshot().services.find(key);
        dns->setService(key, it == model.snapshot().services.end() ? nullptr : &it->second);
      }
      double dn = cpuMs() - t2;
      modelMs += m, planMs += pl, dnsMs += dn;
      entries += d.size();
      worst = std::max(worst, m + pl + dn);
      ++slices;
      std::printf("slice %zu: %zu events, %zu services: model %.1f ms, plan %.1f ms, dns %.1f ms, "
                  "%zu map entries\n",
                  slices, u.events.size(), cs.services.size(), m, pl, dn, d.size());
    }
  }
  std::printf("total %.1f ms CPU: parse %.1f, model %.1f, plan %.1f, dns %.1f; worst slice %.1f ms; "
              "%zu services, %zu map entries; RSS %ld MiB\n",
              cpuMs() - start, parseMs, modelMs, planMs, dnsMs, worst,
              model.snapshot().services.size(), entries, rssMb());
  // Heap in use by each part: what freeing it returns (malloc's own
  // count, not RSS: freed memory may stay in the process).
  std::printf("heap in use %.0f MiB:", heapMb());
  auto part = [](const char* name, auto&& release) {
    double before = heapMb();
    release();
    std::printf(" %s %.0f,", name, before - heapMb());
  };
  part("DNS records", [&] { dns.reset(); });
  part("planner", [&] { plannerOwner.reset(); });
  part("file tracker", [&] { trackerOwner.reset(); });
  part("model (store, snapshot, record)", [&] { modelOwner.reset(); });
  std::printf(" left %.0f MiB\n", heapMb());
  std::filesystem::remove(record);
  return 0;
}
