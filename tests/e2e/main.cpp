// e2e_tests: GoogleTest's main, plus the CTest fixture entry points
//   e2e_tests --cluster-up     bring the shared test cluster up and leave it
//   e2e_tests --cluster-down   remove it
// (see cluster_fixture.h).
#include <gtest/gtest.h>

#include <cstring>

#include "cluster_fixture.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--cluster-up") == 0) return e2e::Cluster::fixtureUp();
  if (argc == 2 && std::strcmp(argv[1], "--cluster-down") == 0) return e2e::Cluster::fixtureDown();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
