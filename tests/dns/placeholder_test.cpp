#include <gtest/gtest.h>
TEST(DnsPlaceholder, Builds) { SUCCEED(); }
