#include "scheduler/cron.h"

#include <array>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace sandci::scheduler {
namespace {

using namespace std::chrono;

constexpr std::string_view kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::string_view kWeekdayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;  // for messages: "minute", "day of week"
  int min, max;
  const std::string_view* names = nullptr;  // names[i] is the value min + i
  std::size_t name_count = 0;
};

constexpr FieldSpec kFields[] = {
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day of month", 1, 31},
    {"month", 1, 12, kMonthNames, std::size(kMonthNames)},
    // 7 is Sunday too, as in most crons; it is folded onto 0 once read.
    {"day of week", 0, 7, kWeekdayNames, std::size(kWeekdayNames)},
};

// A gap-free stretch of the cron text and where it starts.
struct Token {
  std::string_view text;
  std::size_t offset;
};

std::vector<Token> split_blanks(std::string_view text) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) tokens.push_back({text.substr(start, i - start), start});
  }
  return tokens;
}

std::vector<Token> split(Token token, char separator) {
  std::vector<Token> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= token.text.size(); ++i) {
    if (i == token.text.size() || token.text[i] == separator) {
      parts.push_back({token.text.substr(start, i - start), token.offset + start});
      start = i + 1;
    }
  }
  return parts;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string range_words(const FieldSpec& field) {
  std::string words = std::to_string(field.min) + "-" + std::to_string(field.max);
  if (field.names) words += " or " + upper(field.names[0]) + "-" + upper(field.names[field.name_count - 1]);
  return words;
}

CronError field_error(const FieldSpec& field, Token at, const std::string& problem) {
  return {std::string(field.name) + " field: " + problem, at.offset};
}

std::expected<int, CronError> value_of(const FieldSpec& field, Token token) {
  if (token.text.empty()) return std::unexpected(field_error(field, token, "a number is missing"));
  const bool digits = std::all_of(token.text.begin(), token.text.end(),
                                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  if (digits) {
    if (token.text.size() > 4)
      return std::unexpected(field_error(field, token, std::string(token.text) + " is out of range (" +
                                                           range_words(field) + ")"));
    const int value = std::stoi(std::string(token.text));
    if (value < field.min || value > field.max)
      return std::unexpected(field_error(field, token, std::to_string(value) + " is out of range (" +
                                                           range_words(field) + ")"));
    return value;
  }
  const std::string name = lower(token.text);
  for (std::size_t i = 0; i < field.name_count; ++i)
    if (field.names[i] == name) return field.min + static_cast<int>(i);
  return std::unexpected(field_error(field, token, "'" + std::string(token.text) + "' is not a number" +
                                                       (field.names ? " or a name" : "") + " (" +
                                                       range_words(field) + ")"));
}

// One comma-separated item: `*`, `a`, `a-b`, each optionally followed by `/step`.
std::expected<std::uint64_t, CronError> item_bits(const FieldSpec& field, Token item) {
  if (item.text.empty()) return std::unexpected(field_error(field, item, "an empty item in a list"));
  auto slash = split(item, '/');
  if (slash.size() > 2) return std::unexpected(field_error(field, slash[2], "more than one '/'"));
  const Token range = slash[0];
  int first = field.min, last = field.max, step = 1;
  if (range.text != "*") {
    auto dash = split(range, '-');
    if (dash.size() > 2) return std::unexpected(field_error(field, dash[2], "more than one '-'"));
    auto from = value_of(field, dash[0]);
    if (!from) return std::unexpected(from.error());
    first = *from;
    if (dash.size() == 2) {
      auto to = value_of(field, dash[1]);
      if (!to) return std::unexpected(to.error());
      last = *to;
      if (last < first)
        return std::unexpected(field_error(field, range, "the range " + std::string(range.text) +
                                                             " goes backwards"));
    } else if (slash.size() == 1) {
      last = first;  // a single value; `a/n` runs from a to the field's end
    }
  }
  if (slash.size() == 2) {
    const Token step_text = slash[1];
    const bool digits = !step_text.text.empty() && step_text.text.size() <= 4 &&
                        std::all_of(step_text.text.begin(), step_text.text.end(),
                                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
    if (!digits)
      return std::unexpected(field_error(field, step_text, "the step after '/' must be a positive number"));
    step = std::stoi(std::string(step_text.text));
    if (step == 0) return std::unexpected(field_error(field, step_text, "a step of 0 never advances"));
  }
  std::uint64_t bits = 0;
  for (int v = first; v <= last; v += step) bits |= std::uint64_t{1} << v;
  return bits;
}

std::expected<std::uint64_t, CronError> field_bits(const FieldSpec& field, Token token) {
  std::uint64_t bits = 0;
  for (const Token& item : split(token, ',')) {
    auto more = item_bits(field, item);
    if (!more) return std::unexpected(more.error());
    bits |= *more;
  }
  return bits;
}

std::string macro_hint(std::string_view macro) {
  const std::string name = lower(macro);
  if (name == "@hourly") return "; write '0 * * * *'";
  if (name == "@daily" || name == "@midnight") return "; write '0 0 * * *'";
  if (name == "@weekly") return "; write '0 0 * * 0'";
  if (name == "@monthly") return "; write '0 0 1 * *'";
  if (name == "@yearly" || name == "@annually") return "; write '0 0 1 1 *'";
  return "";
}

}  // namespace

std::expected<CronSchedule, CronError> CronSchedule::parse(std::string_view text) {
  const auto tokens = split_blanks(text);
  if (tokens.empty()) return std::unexpected(CronError{"the cron line is empty", 0});
  if (tokens.front().text.starts_with('@'))
    return std::unexpected(CronError{"GitHub takes five cron fields, not '" + std::string(tokens.front().text) +
                                         "'" + macro_hint(tokens.front().text),
                                     tokens.front().offset});
  if (tokens.size() != 5)
    return std::unexpected(CronError{
        "a cron line has 5 fields (minute hour day-of-month month day-of-week), this one has " +
            std::to_string(tokens.size()),
        tokens.size() > 5 ? tokens[5].offset : 0});
  std::array<std::uint64_t, 5> bits{};
  for (std::size_t i = 0; i < 5; ++i) {
    auto parsed = field_bits(kFields[i], tokens[i]);
    if (!parsed) return std::unexpected(parsed.error());
    bits[i] = *parsed;
  }
  CronSchedule schedule;
  const std::size_t begin = tokens.front().offset;
  const std::size_t end = tokens.back().offset + tokens.back().text.size();
  schedule.text_ = std::string(text.substr(begin, end - begin));
  schedule.minutes_ = std::bitset<60>(bits[0]);
  schedule.hours_ = std::bitset<24>(bits[1]);
  schedule.days_ = std::bitset<32>(bits[2]);
  schedule.months_ = std::bitset<13>(bits[3]);
  const std::uint64_t sunday_as_7 = (bits[4] >> 7) & 1;
  schedule.weekdays_ = std::bitset<7>((bits[4] | sunday_as_7) & 0x7f);
  schedule.day_star_ = tokens[2].text.starts_with('*');
  schedule.weekday_star_ = tokens[4].text.starts_with('*');
  // Any start will do: a schedule that fires at all fires within one 400-year cycle.
  if (!schedule.find_next(sys_days{2000y / January / 1}))
    return std::unexpected(CronError{"the schedule never fires: no month it names has the days it names",
                                     tokens[2].offset});
  return schedule;
}

bool CronSchedule::day_matches(year_month_day date) const {
  const bool by_day = days_[static_cast<unsigned>(date.day())];
  const bool by_weekday = weekdays_[weekday{sys_days{date}}.c_encoding()];
  if (day_star_ || weekday_star_) return by_day && by_weekday;
  return by_day || by_weekday;
}

std::optional<CronSchedule::time_point> CronSchedule::find_next(time_point after) const {
  const auto start = floor<minutes>(after) + minutes{1};
  const auto first_day = floor<days>(start);
  const int first_minute = static_cast<int>((start - first_day) / minutes{1});
  constexpr int kCycleDays = 146097;  // 400 Gregorian years
  for (int i = 0; i <= kCycleDays; ++i) {
    const sys_days day = first_day + days{i};
    const year_month_day date{day};
    if (!months_[static_cast<unsigned>(date.month())] || !day_matches(date)) continue;
    const int from = i == 0 ? first_minute : 0;
    for (int hour = from / 60; hour < 24; ++hour) {
      if (!hours_[hour]) continue;
      for (int minute = hour == from / 60 ? from % 60 : 0; minute < 60; ++minute)
        if (minutes_[minute]) return time_point{day + hours{hour} + minutes{minute}};
    }
  }
  return std::nullopt;
}

CronSchedule::time_point CronSchedule::next_after(time_point after) const {
  auto next = find_next(after);
  // parse() refuses a schedule that never fires.
  if (!next) throw std::logic_error("cron schedule '" + text_ + "' never fires");
  return *next;
}

bool CronSchedule::fires_at(time_point at) const {
  const auto minute = floor<minutes>(at);
  return find_next(minute - minutes{1}) == time_point{minute};
}

std::string format_utc(CronSchedule::time_point at) {
  const auto day = floor<days>(at);
  const year_month_day date{day};
  const auto in_day = floor<minutes>(at - day);
  const auto hour = floor<hours>(in_day);
  const auto minute = in_day - hour;
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u %02d:%02d UTC", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(hour.count()), static_cast<int>(minute.count()));
  return text;
}

std::optional<CronSchedule::time_point> parse_utc(std::string_view text) {
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) text.remove_suffix(1);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char sep = 0;
  int consumed = 0;
  const std::string copy(text);
  const int n = std::sscanf(copy.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &consumed);
  if (n != 6 || (sep != 'T' && sep != ' ')) return std::nullopt;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty()) {
    int more = 0;
    if (std::sscanf(std::string(rest).c_str(), ":%2d%n", &s, &more) != 1 ||
        static_cast<std::size_t>(more) != rest.size())
      return std::nullopt;
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0) return std::nullopt;
  return time_point{sys_days{date} + hours{h} + minutes{mi} + seconds{s}};
}

}  // namespace sandci::scheduler
