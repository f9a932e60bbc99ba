// ferryd's /healthz and /readyz (--healthz-listen, issue 13).
#include <gtest/gtest.h>

#include "agent/healthz.h"

namespace ferry {
namespace {

TEST(Healthz, ReadyzIs503UntilTheFirstSyncThen200) {
  std::string notYet = healthzResponse("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", false,
                                       "initial lists not complete");
  EXPECT_EQ(notYet.rfind("HTTP/1.1 503 ", 0), 0u) << notYet;
  EXPECT_NE(notYet.find("initial lists not complete"), std::string::npos);
  std::string ready = healthzResponse("GET /readyz HTTP/1.1\r\n\r\n", true, "");
  EXPECT_EQ(ready.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ready;
}

TEST(Healthz, HealthzIsAliveEvenBeforeSyncAndOtherPathsAre404) {
  EXPECT_EQ(healthzResponse("GET /healthz HTTP/1.1\r\n\r\n", false, "x").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(healthzResponse("GET /readyz?verbose HTTP/1.1\r\n\r\n", true, "").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(healthzResponse("GET /metrics HTTP/1.1\r\n\r\n", true, "").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(healthzResponse("POST /healthz HTTP/1.1\r\n\r\n", true, "").rfind("HTTP/1.1 405", 0), 0u);
  std::string head = healthzResponse("HEAD /healthz HTTP/1.1\r\n\r\n", true, "");
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD has no body";
}

TEST(Healthz, ListenRejectsBadAddresses) {
  EXPECT_FALSE(HealthzServer::listen("10256", nullptr));
  EXPECT_FALSE(HealthzServer::listen(":0", nullptr));
  EXPECT_FALSE(HealthzServer::listen("nothost:10256", nullptr));
}

}  // namespace
}  // namespace ferry
