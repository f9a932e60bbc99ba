#include "announce/lease.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

// Where the Lease objects would live once the API server is a source.
constexpr const char* kLeaseNamespace = "ferry-system";

// Reads a fixed-width decimal field; false on anything but digits.
bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string formatMicroTime(WallTime t) {
  auto us = floor<microseconds>(t);
  auto day = floor<days>(us);
  year_month_day ymd{day};
  hh_mm_ss<microseconds> tod{us - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(tod.hours().count()),
                int(tod.minutes().count()), int(tod.seconds().count()),
                static_cast<long long>(tod.subseconds().count()));
  return buf;
}

// YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
std::optional<WallTime> parseMicroTime(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, &mo) ||
      s[7] != '-' || !digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, &h) || s[13] != ':' || !digits(s, 14, 2, &mi) || s[16] != ':' ||
      !digits(s, 17, 2, &sec))
    return std::nullopt;
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  microseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    size_t start = ++pos;
    long long us = 0;
    int kept = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (kept < 6) us = us * 10 + (s[pos] - '0'), ++kept;  // finer than µs: truncated
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (; kept < 6; ++kept) us *= 10;
    frac = microseconds(us);
  }
  minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, &om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = hours(oh) + minutes(om);
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  year_month_day ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
  if (!ymd.ok()) return std::nullopt;
  sys_time<microseconds> t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) + frac - offset;
  return time_point_cast<WallTime::duration>(t);
}

bool isValidLeaseName(std::string_view n) {
  if (n.empty() || n.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(n.front()) || !alnum(n.back())) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    if (alnum(c) || c == '-') continue;
    if (c == '.' && n[i - 1] != '.' && n[i - 1] != '-' && n[i + 1] != '-') continue;
    return false;
  }
  return true;
}

json Lease::toJson() const {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", holder}, {"namespace", kLeaseNamespace}}},
          {"spec",
           {{"holderIdentity", holder},
            {"leaseDurationSeconds", durationSeconds},
            {"acquireTime", formatMicroTime(acquireTime)},
            {"renewTime", formatMicroTime(renewTime)}}}};
}

std::optional<Lease> Lease::fromJson(const json& j, std::string* error) {
  auto fail = [&](const std::string& m) -> std::optional<Lease> {
    *error = m;
    return std::nullopt;
  };
  if (!j.is_object() || j.value("kind", "") != "Lease") return fail("not a Lease object");
  auto spec = j.find("spec");
  if (spec == j.end() || !spec->is_object()) return fail("spec: missing");
  Lease l;
  auto holder = spec->find("holderIdentity");
  if (holder == spec->end() || !holder->is_string() || holder->get<std::string>().empty())
    return fail("spec.holderIdentity: missing");
  l.holder = holder->get<std::string>();
  auto dur = spec->find("leaseDurationSeconds");
  if (dur != spec->end()) {
    if (!dur->is_number_integer() || dur->get<int64_t>() <= 0 || dur->get<int64_t>() > 86400)
      return fail("spec.leaseDurationSeconds: not a positive number of seconds");
    l.durationSeconds = dur->get<int>();
  }
  auto time = [&](const char* field, WallTime* out) {
    auto it = spec->find(field);
    if (it == spec->end() || !it->is_string()) return false;
    auto t = parseMicroTime(it->get<std::string>());
    if (t) *out = *t;
    return t.has_value();
  };
  if (!time("renewTime", &l.renewTime)) return fail("spec.renewTime: missing or not RFC 3339");
  if (!time("acquireTime", &l.acquireTime)) l.acquireTime = l.renewTime;  // optional in the API
  return l;
}

std::optional<Lease> DirectoryLeaseStore::readOne(const std::string& p, std::string* error,
                                                  bool* missing) const {
  std::ifstream in(p);
  if (!in) {
    if (missing) *missing = errno == ENOENT;
    *error = p + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *error = p + ": not valid JSON";
    return std::nullopt;
  }
  std::string why;
  auto l = Lease::fromJson(j, &why);
  if (!l) *error = p + ": " + why;
  return l;
}

Status DirectoryLeaseStore::renew(const std::string& node, WallTime now) {
  if (!isValidLeaseName(node))
    return Status::error("lease for node \"" + node + "\": not a valid node name");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::error("lease directory " + dir_ + ": " + ec.message(), ec.value());

  Lease l;
  l.holder = node;
  l.durationSeconds = static_cast<int>(duration_.count());
  l.renewTime = now;
  l.acquireTime = now;
  std::string ignored;
  if (auto prev = readOne(path(node), &ignored, nullptr);
      prev && prev->holder == node && prev->liveAt(now))
    l.acquireTime = prev->acquireTime;

  std::string tmp = dir_ + "/." + node + ".json.tmp";
  std::string text = l.toJson().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::sys("lease " + tmp, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      unlink(tmp.c_str());
      return Status::sys("write lease " + tmp, err);
    }
    done += size_t(n);
  }
  // No fsync: a lease outlives a crash by two seconds at most, and the
  // rename alone already makes readers see old or new, never half.
  close(fd);
  if (rename(tmp.c_str(), path(node).c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Status::sys("rename lease to " + path(node), err);
  }
  return Status::ok();
}

Status DirectoryLeaseStore::release(const std::string& node) {
  if (!isValidLeaseName(node))
    return Status::error("lease for node \"" + node + "\": not a valid node name");
  if (unlink(path(node).c_str()) != 0 && errno != ENOENT)
    return Status::sys("remove lease " + path(node), errno);
  return Status::ok();
}

LeaseRead DirectoryLeaseStore::readAll() {
  LeaseRead out;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    // Missing until the first agent renews: no leases, not an error.
    if (ec != std::errc::no_such_file_or_directory)
      out.errors.push_back("lease directory " + dir_ + ": " + ec.message());
    return out;
  }
  for (const auto& e : it) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || name.size() <= 5 ||
        name.compare(name.size() - 5, 5, ".json") != 0)
      continue;
    std::string error;
    bool missing = false;
    auto l = readOne(e.path().string(), &error, &missing);
    if (!l) {
      if (!missing) out.errors.push_back(error);  // deleted under us: a release
      continue;
    }
    if (l->holder + ".json" != name) {
      out.errors.push_back(e.path().string() + ": holderIdentity \"" + l->holder +
                           "\" does not match the file name");
      continue;
    }
    out.leases.push_back(std::move(*l));
  }
  std::sort(out.errors.begin(), out.errors.end());
  std::sort(out.leases.begin(), out.leases.end(),
            [](const Lease& a, const Lease& b) { return a.holder < b.holder; });
  return out;
}

}  // namespace ferry
