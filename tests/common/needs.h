// Tests that need something of the machine (root, a network namespace):
// on a developer's machine without it they are skipped with the reason, but
// under CI=true (.ci/run, scripts/check-fresh.sh) they fail with it, so a
// run that could not test something is never counted as passed.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ferry_test {

// True when the environment says CI=true (or CI=1).
inline bool inCi() {
  const char* ci = std::getenv("CI");
  return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

}  // namespace ferry_test

// Use in a test body or SetUp: returns from it, skipped (outside CI) or
// failed (under CI=true), naming `why` (anything streamable).
#define FERRY_CANNOT_RUN(why)                                                  \
  do {                                                                         \
    if (::ferry_test::inCi()) {                                                \
      GTEST_FAIL() << "cannot run under CI=true: " << why;                     \
    } else {                                                                   \
      GTEST_SKIP() << why;                                                     \
    }                                                                          \
  } while (0)
