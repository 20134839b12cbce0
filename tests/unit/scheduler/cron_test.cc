#include "scheduler/cron.h"

#include <gtest/gtest.h>

namespace sandci::scheduler {
namespace {

CronSchedule cron(std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << (parsed ? "" : parsed.error().message);
  if (!parsed) throw std::runtime_error("bad cron in test");
  return *parsed;
}

CronSchedule::time_point at(std::string_view text) {
  auto t = parse_utc(text);
  if (!t) throw std::runtime_error("bad time in test: " + std::string(text));
  return *t;
}

std::string next(std::string_view cron_text, std::string_view after) {
  return format_utc(cron(cron_text).next_after(at(after)));
}

// The next `n` fire times, one after the other.
std::vector<std::string> next_n(std::string_view cron_text, std::string_view after, int n) {
  auto schedule = cron(cron_text);
  std::vector<std::string> out;
  auto t = at(after);
  for (int i = 0; i < n; ++i) {
    t = schedule.next_after(t);
    out.push_back(format_utc(t));
  }
  return out;
}

CronError error_of(std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  EXPECT_FALSE(parsed.has_value()) << text << " was accepted";
  return parsed ? CronError{} : parsed.error();
}

TEST(CronParse, EveryMinuteFiresTheNextWholeMinute) {
  EXPECT_EQ(next("* * * * *", "2024-05-01T10:20:00Z"), "2024-05-01 10:21 UTC");
  EXPECT_EQ(next("* * * * *", "2024-05-01T10:20:59Z"), "2024-05-01 10:21 UTC");
}

TEST(CronParse, NextIsStrictlyAfter) {
  EXPECT_EQ(next("30 4 * * *", "2024-05-01T04:30:00Z"), "2024-05-02 04:30 UTC");
  EXPECT_EQ(next("30 4 * * *", "2024-05-01T04:29:59Z"), "2024-05-01 04:30 UTC");
}

TEST(CronParse, ListsRangesAndSteps) {
  EXPECT_EQ(next_n("0,15,45 9-10 * * *", "2024-01-01T09:20Z", 4),
            (std::vector<std::string>{"2024-01-01 09:45 UTC", "2024-01-01 10:00 UTC", "2024-01-01 10:15 UTC",
                                      "2024-01-01 10:45 UTC"}));
  EXPECT_EQ(next_n("*/20 * * * *", "2024-01-01T23:30Z", 3),
            (std::vector<std::string>{"2024-01-01 23:40 UTC", "2024-01-02 00:00 UTC", "2024-01-02 00:20 UTC"}));
  EXPECT_EQ(next_n("10-30/10 2 * * *", "2024-01-01T00:00Z", 4),
            (std::vector<std::string>{"2024-01-01 02:10 UTC", "2024-01-01 02:20 UTC", "2024-01-01 02:30 UTC",
                                      "2024-01-02 02:10 UTC"}));
  // `a/n` runs from a to the field's end.
  EXPECT_EQ(next_n("50/5 0 * * *", "2024-01-01T00:00Z", 3),
            (std::vector<std::string>{"2024-01-01 00:50 UTC", "2024-01-01 00:55 UTC", "2024-01-02 00:50 UTC"}));
}

TEST(CronParse, MonthAndWeekdayNamesInAnyCase) {
  // 2024-03-01 is a Friday.
  EXPECT_EQ(next("0 12 * MAR mon", "2024-01-01T00:00Z"), "2024-03-04 12:00 UTC");
  EXPECT_EQ(next("0 12 * * sat,SUN", "2024-03-01T13:00Z"), "2024-03-02 12:00 UTC");
  EXPECT_EQ(next_n("0 0 1 jan,JUL *", "2024-02-01T00:00Z", 2),
            (std::vector<std::string>{"2024-07-01 00:00 UTC", "2025-01-01 00:00 UTC"}));
  EXPECT_EQ(next("0 0 * * MON-FRI", "2024-03-01T01:00Z"), "2024-03-04 00:00 UTC");
}

TEST(CronParse, SevenIsSundayToo) {
  EXPECT_EQ(next("0 8 * * 7", "2024-03-01T00:00Z"), "2024-03-03 08:00 UTC");
  EXPECT_EQ(next("0 8 * * 0", "2024-03-01T00:00Z"), "2024-03-03 08:00 UTC");
}

TEST(CronParse, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // The 13th, or any Friday: 2024-09-06 is a Friday, then Fri 13, then Fri 20.
  EXPECT_EQ(next_n("0 0 13 * 5", "2024-09-01T00:00Z", 4),
            (std::vector<std::string>{"2024-09-06 00:00 UTC", "2024-09-13 00:00 UTC", "2024-09-20 00:00 UTC",
                                      "2024-09-27 00:00 UTC"}));
  // A star-led field does not count as a restriction: both must match.
  EXPECT_EQ(next("0 0 */2 * 1", "2024-09-01T00:00Z"), "2024-09-09 00:00 UTC");
  EXPECT_EQ(next("0 0 * * 1", "2024-09-01T00:00Z"), "2024-09-02 00:00 UTC");
}

TEST(CronParse, AcrossMonthAndYearEnds) {
  EXPECT_EQ(next("59 23 31 * *", "2024-04-01T00:00Z"), "2024-05-31 23:59 UTC");  // April has 30 days
  EXPECT_EQ(next("0 0 1 * *", "2024-12-31T23:59Z"), "2025-01-01 00:00 UTC");
  EXPECT_EQ(next("* * * * *", "2024-12-31T23:59:30Z"), "2025-01-01 00:00 UTC");
  EXPECT_EQ(next("0 0 31 12 *", "2024-12-31T00:00Z"), "2025-12-31 00:00 UTC");
}

TEST(CronParse, LeapDays) {
  EXPECT_EQ(next("0 6 29 2 *", "2024-03-01T00:00Z"), "2028-02-29 06:00 UTC");
  EXPECT_EQ(next("0 6 29 2 *", "2096-03-01T00:00Z"), "2104-02-29 06:00 UTC");  // 2100 is no leap year
  EXPECT_EQ(next("0 0 29 * *", "2023-02-01T00:00Z"), "2023-03-29 00:00 UTC");
}

TEST(CronParse, FiresAt) {
  auto schedule = cron("15 3 * * 1");
  EXPECT_TRUE(schedule.fires_at(at("2024-09-02T03:15:42Z")));  // a Monday
  EXPECT_FALSE(schedule.fires_at(at("2024-09-03T03:15:00Z")));
  EXPECT_FALSE(schedule.fires_at(at("2024-09-02T03:16:00Z")));
}

TEST(CronParse, KeepsTheTextTrimmed) {
  EXPECT_EQ(cron("  0  4 * * *  ").text(), "0  4 * * *");
}

TEST(CronErrors, WrongFieldCount) {
  auto e = error_of("0 4 * *");
  EXPECT_EQ(e.message, "a cron line has 5 fields (minute hour day-of-month month day-of-week), this one has 4");
  auto six = error_of("0 0 4 * * *");
  EXPECT_EQ(six.offset, 10u);  // the sixth field
  EXPECT_EQ(error_of("").message, "the cron line is empty");
}

TEST(CronErrors, MacrosSayWhatToWrite) {
  EXPECT_EQ(error_of("@daily").message, "GitHub takes five cron fields, not '@daily'; write '0 0 * * *'");
  EXPECT_EQ(error_of("@reboot").message, "GitHub takes five cron fields, not '@reboot'");
}

TEST(CronErrors, NameTheFieldAndPointAtTheValue) {
  auto minute = error_of("60 4 * * *");
  EXPECT_EQ(minute.message, "minute field: 60 is out of range (0-59)");
  EXPECT_EQ(minute.offset, 0u);
  auto hour = error_of("0 7,24 * * *");
  EXPECT_EQ(hour.message, "hour field: 24 is out of range (0-23)");
  EXPECT_EQ(hour.offset, 4u);
  EXPECT_EQ(error_of("0 0 0 * *").message, "day of month field: 0 is out of range (1-31)");
  EXPECT_EQ(error_of("0 0 * 13 *").message, "month field: 13 is out of range (1-12 or JAN-DEC)");
  auto weekday = error_of("0 0 * * MON-FRY");
  EXPECT_EQ(weekday.message, "day of week field: 'FRY' is not a number or a name (0-7 or SUN-SAT)");
  EXPECT_EQ(weekday.offset, 12u);
  EXPECT_EQ(error_of("x * * * *").message, "minute field: 'x' is not a number (0-59)");
}

TEST(CronErrors, RangesStepsAndLists) {
  EXPECT_EQ(error_of("0 5-2 * * *").message, "hour field: the range 5-2 goes backwards");
  EXPECT_EQ(error_of("*/0 * * * *").message, "minute field: a step of 0 never advances");
  EXPECT_EQ(error_of("*/x * * * *").message, "minute field: the step after '/' must be a positive number");
  EXPECT_EQ(error_of("1,,2 * * * *").message, "minute field: an empty item in a list");
  EXPECT_EQ(error_of("1-2-3 * * * *").message, "minute field: more than one '-'");
  EXPECT_EQ(error_of("99999 * * * *").message, "minute field: 99999 is out of range (0-59)");
  EXPECT_EQ(error_of("1- * * * *").message, "minute field: a number is missing");
}

TEST(CronErrors, AScheduleThatNeverFires) {
  auto e = error_of("0 0 30 2 *");
  EXPECT_EQ(e.message, "the schedule never fires: no month it names has the days it names");
  EXPECT_EQ(e.offset, 4u);
  // Day 31 of a month that has 31 days is fine; with a weekday too it is either.
  cron("0 0 31 1-3 *");
  cron("0 0 30 2 MON");
}

TEST(CronTime, ParseUtc) {
  EXPECT_EQ(format_utc(at("2024-02-29T23:59:59Z")), "2024-02-29 23:59 UTC");
  EXPECT_EQ(format_utc(at("2024-02-29 01:02")), "2024-02-29 01:02 UTC");
  EXPECT_FALSE(parse_utc("2023-02-29T00:00Z"));
  EXPECT_FALSE(parse_utc("2024-01-01"));
  EXPECT_FALSE(parse_utc("2024-01-01T25:00Z"));
  EXPECT_FALSE(parse_utc("2024-01-01T10:00:00+02:00"));
}

}  // namespace
}  // namespace sandci::scheduler
