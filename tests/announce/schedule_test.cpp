#include "announce/schedule.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry {
namespace {

using testing::ip;
using namespace std::chrono;

const MonoTime kT0 = MonoTime(seconds(1000));

TEST(ScheduleTest, ThreeAnnouncementsAtZeroPointTwoAndPointFive) {
  GratuitousSchedule s;
  IpAddr a = ip("198.18.0.200");
  EXPECT_FALSE(s.next());
  s.start(a, kT0);
  std::vector<milliseconds> sent;
  for (int ms = 0; ms <= 1000; ms += 10)
    for (const IpAddr& d : s.takeDue(kT0 + milliseconds(ms))) {
      EXPECT_EQ(d, a);
      sent.push_back(milliseconds(ms));
    }
  EXPECT_EQ(sent,
            (std::vector<milliseconds>{milliseconds(0), milliseconds(200), milliseconds(500)}));
  EXPECT_FALSE(s.next());
}

TEST(ScheduleTest, NextIsTheEarliestDue) {
  GratuitousSchedule s;
  s.start(ip("198.18.0.200"), kT0);
  s.start(ip("2001:db8::200"), kT0 + milliseconds(50));
  EXPECT_EQ(s.next(), kT0);
  EXPECT_EQ(s.takeDue(kT0).size(), 1u);
  EXPECT_EQ(s.next(), kT0 + milliseconds(50));
  EXPECT_EQ(s.takeDue(kT0 + milliseconds(50)).size(), 1u);
  EXPECT_EQ(s.next(), kT0 + milliseconds(200));
}

TEST(ScheduleTest, LateTimerSendsOnceNotABurst) {
  GratuitousSchedule s;
  s.start(ip("198.18.0.200"), kT0);
  EXPECT_EQ(s.takeDue(kT0 + milliseconds(300)).size(), 1u);  // 0 and 0.2 s both past
  EXPECT_EQ(s.next(), kT0 + milliseconds(500));
  EXPECT_TRUE(s.takeDue(kT0 + milliseconds(400)).empty());
}

TEST(ScheduleTest, StopAndRestart) {
  GratuitousSchedule s;
  IpAddr a = ip("198.18.0.200");
  s.start(a, kT0);
  s.takeDue(kT0);
  s.stop(a);
  EXPECT_FALSE(s.next());
  s.start(a, kT0 + seconds(5));
  EXPECT_EQ(s.next(), kT0 + seconds(5));
}

}  // namespace
}  // namespace ferry
