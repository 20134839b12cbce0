#pragma once
// The `cron:` lines of a `schedule:` trigger, read as GitHub reads them: five
// fields (minute, hour, day of month, month, day of week), always in UTC.
// Each field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
// (a through the field's end), or a comma list of those. Months take JAN..DEC and
// weekdays SUN..SAT (any case; 0 and 7 are both Sunday). As in classic (Vixie)
// cron, when both day fields are restricted a day matches if EITHER does; when one
// of them starts with `*` both must match (so only the other one restricts).
#include <bitset>
#include <chrono>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace sandci::scheduler {

struct CronError {
  std::string message;  // names the field and what is wrong with it
  std::size_t offset = 0;  // where in the cron text the problem starts (0-based)
};

class CronSchedule {
 public:
  using time_point = std::chrono::system_clock::time_point;

  // Reads one cron line. Errors: not five fields, a macro such as @daily (GitHub
  // takes none), a value out of its field's range, an unknown name, a backwards
  // range, a zero step, and a schedule that can never fire (day 31 of February).
  static std::expected<CronSchedule, CronError> parse(std::string_view text);

  // The first whole minute strictly after `after` at which the schedule fires
  // (UTC). Always set for a schedule parse() accepted.
  time_point next_after(time_point after) const;

  // Whether it fires at the minute that holds `at`.
  bool fires_at(time_point at) const;

  // The text as written (surrounding blanks removed): github.event.schedule.
  const std::string& text() const { return text_; }

 private:
  CronSchedule() = default;
  // nullopt when nothing fires within a whole Gregorian cycle (400 years): never.
  std::optional<time_point> find_next(time_point after) const;
  bool day_matches(std::chrono::year_month_day date) const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 (Sunday)..6
  bool day_star_ = false;      // the day-of-month field starts with '*'
  bool weekday_star_ = false;  // the day-of-week field starts with '*'
};

// "2024-03-01 04:05 UTC": how plan output and logs show fire times.
std::string format_utc(CronSchedule::time_point at);

// Reads "YYYY-MM-DDTHH:MM[:SS][Z]" (or with a space for the T) as UTC; nullopt
// when it is not such a time.
std::optional<CronSchedule::time_point> parse_utc(std::string_view text);

}  // namespace sandci::scheduler
