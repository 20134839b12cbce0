#include "agent/forge/status.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "agent/forge/codec.h"

namespace sandci::agent::forge {
namespace {

using nlohmann::json;

constexpr std::size_t kReasonLimit = 200;

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string without_trailing_slashes(std::string_view url) {
  while (url.ends_with('/')) url.remove_suffix(1);
  return std::string(url);
}

// owner/name with each segment percent-encoded and the '/' kept.
std::string encoded_repository_path(std::string_view repository) {
  std::string out;
  while (true) {
    const std::size_t slash = repository.find('/');
    out += percent_encode(repository.substr(0, slash));
    if (slash == std::string_view::npos) break;
    out += '/';
    repository.remove_prefix(slash + 1);
  }
  return out;
}

std::string to_json(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  text = trim(text);
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// IMF-fixdate, the only HTTP-date form current servers send: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  static constexpr std::array<std::string_view, 12> kMonths{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::string copy(trim(text));
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  char month_name[4] = {};
  char zone[4] = {};
  if (std::sscanf(copy.c_str(), "%*3s, %2d %3s %4d %2d:%2d:%2d %3s", &day, month_name, &year,
                  &hour, &minute, &second, zone) != 7 ||
      std::string_view(zone) != "GMT") {
    return std::nullopt;
  }
  const auto month = std::find(kMonths.begin(), kMonths.end(), std::string_view(month_name));
  if (month == kMonths.end() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const std::chrono::year_month_day date{
      std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month - kMonths.begin() + 1)),
      std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

std::chrono::seconds seconds_until(std::chrono::system_clock::time_point when,
                                   std::chrono::system_clock::time_point now) {
  const auto wait = std::chrono::ceil<std::chrono::seconds>(when - now);
  return std::max(wait, std::chrono::seconds(0));
}

std::optional<std::chrono::seconds> retry_after_header(const HeaderLookup& headers,
                                                       std::chrono::system_clock::time_point now) {
  auto value = headers("Retry-After");
  if (!value) return std::nullopt;
  if (auto seconds = parse_integer(*value)) {
    return std::chrono::seconds(std::max<std::int64_t>(*seconds, 0));
  }
  if (auto date = parse_http_date(*value)) return seconds_until(*date, now);
  return std::nullopt;
}

bool rate_limit_exhausted(const HeaderLookup& headers) {
  for (std::string_view name : {"x-ratelimit-remaining", "ratelimit-remaining"}) {
    if (auto value = headers(name)) {
      if (auto remaining = parse_integer(*value); remaining && *remaining <= 0) return true;
    }
  }
  return false;
}

std::optional<std::chrono::seconds> rate_limit_reset(const HeaderLookup& headers,
                                                     std::chrono::system_clock::time_point now) {
  for (std::string_view name : {"x-ratelimit-reset", "ratelimit-reset"}) {
    if (auto value = headers(name)) {
      if (auto epoch = parse_integer(*value)) {
        return seconds_until(std::chrono::system_clock::time_point(std::chrono::seconds(*epoch)),
                             now);
      }
    }
  }
  return std::nullopt;
}

// The forge's explanation from an error body: GitHub, Gitea and GitLab put it in
// "message" (GitLab sometimes as an object of field errors), some GitLab answers in "error".
std::string error_message(std::string_view body) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  if (parsed.is_object()) {
    if (auto it = parsed.find("message"); it != parsed.end()) {
      message = it->is_string() ? it->get<std::string>() : to_json(*it);
    } else if (auto error = parsed.find("error"); error != parsed.end() && error->is_string()) {
      message = error->get<std::string>();
    }
    if (auto errors = parsed.find("errors"); errors != parsed.end() && errors->is_array() &&
                                             !errors->empty() && (*errors)[0].is_object()) {
      const json& first = (*errors)[0];
      if (auto detail = first.find("message"); detail != first.end() && detail->is_string()) {
        message += ": " + detail->get<std::string>();
      }
    }
  }
  if (message.empty() && !parsed.is_object()) message = std::string(trim(body));
  // Keep log lines single-line.
  std::replace_if(message.begin(), message.end(),
                  [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return truncate_utf8(message, kReasonLimit);
}

// "refs/heads/main" -> "main", "refs/tags/v1" -> "v1"; anything else as it is.
std::string short_ref(const std::string& ref) {
  for (std::string_view prefix : {"refs/heads/", "refs/tags/"})
    if (ref.rfind(prefix, 0) == 0) return ref.substr(prefix.size());
  return ref;
}

}  // namespace

std::string_view to_string(CommitState state) {
  switch (state) {
    case CommitState::pending: return "pending";
    case CommitState::running: return "running";
    case CommitState::success: return "success";
    case CommitState::failure: return "failure";
    case CommitState::error: return "error";
    case CommitState::cancelled: return "cancelled";
  }
  return "error";
}

std::string_view forge_state(ForgeKind forge, CommitState state) {
  if (forge == ForgeKind::gitlab) {
    switch (state) {
      case CommitState::pending: return "pending";
      case CommitState::running: return "running";
      case CommitState::success: return "success";
      case CommitState::failure:
      case CommitState::error: return "failed";
      case CommitState::cancelled: return "canceled";
    }
    return "failed";
  }
  switch (state) {
    case CommitState::pending:
    case CommitState::running: return "pending";
    case CommitState::success: return "success";
    case CommitState::failure: return "failure";
    case CommitState::error:
    case CommitState::cancelled: return "error";
  }
  return "error";
}

HttpCall build_status_request(const StatusTarget& target, const CommitStatus& status,
                              std::string_view token) {
  HttpCall call;
  call.method = "POST";
  const std::string api = without_trailing_slashes(target.api_url);
  json body = {{"state", forge_state(target.forge, status.state)}};
  if (!status.target_url.empty()) body["target_url"] = status.target_url;

  if (target.forge == ForgeKind::gitlab) {
    const std::string project = target.project_id ? std::to_string(*target.project_id)
                                                  : percent_encode(target.repository);
    call.url = api + "/projects/" + project + "/statuses/" + percent_encode(status.sha);
    if (!token.empty()) call.headers.emplace_back("PRIVATE-TOKEN", std::string(token));
    call.headers.emplace_back("Accept", "application/json");
    if (!status.context.empty()) body["name"] = status.context;
    // GitLab names branches and tags as such ("main"), not as full refs.
    if (!status.ref.empty()) body["ref"] = short_ref(status.ref);
    if (!status.description.empty()) {
      body["description"] = truncate_utf8(status.description, kGitlabDescriptionLimit);
    }
  } else {
    call.url = api + "/repos/" + encoded_repository_path(target.repository) + "/statuses/" +
               percent_encode(status.sha);
    if (target.forge == ForgeKind::github) {
      if (!token.empty()) call.headers.emplace_back("Authorization", "Bearer " + std::string(token));
      call.headers.emplace_back("Accept", "application/vnd.github+json");
      call.headers.emplace_back("X-GitHub-Api-Version", "2022-11-28");
    } else {
      if (!token.empty()) call.headers.emplace_back("Authorization", "token " + std::string(token));
      call.headers.emplace_back("Accept", "application/json");
    }
    if (!status.context.empty()) body["context"] = status.context;
    if (!status.description.empty()) {
      // Gitea and Forgejo set no limit; one cut keeps their statuses like GitHub's.
      body["description"] = truncate_utf8(status.description, kGithubDescriptionLimit);
    }
  }
  call.headers.emplace_back("Content-Type", "application/json");
  call.headers.emplace_back("User-Agent", "sandci");
  call.body = to_json(body);
  return call;
}

StatusAnswer classify_status_answer(ForgeKind forge, int http_status,
                                    const HeaderLookup& headers, std::string_view body,
                                    std::chrono::system_clock::time_point now) {
  using Outcome = StatusAnswer::Outcome;
  StatusAnswer answer;
  answer.reason = error_message(body);
  if (answer.reason.empty()) answer.reason = "HTTP " + std::to_string(http_status);
  answer.retry_after = retry_after_header(headers, now);
  const bool exhausted = rate_limit_exhausted(headers);
  if (!answer.retry_after && exhausted) answer.retry_after = rate_limit_reset(headers, now);

  if (http_status >= 200 && http_status < 300) {
    answer.outcome = Outcome::delivered;
  } else if (forge == ForgeKind::gitlab && http_status == 400 &&
             body.find("Cannot transition status") != std::string_view::npos) {
    answer.outcome = Outcome::delivered;  // the commit already has this state
  } else if (http_status == 408 || http_status == 429 ||
             (http_status >= 500 && http_status < 600)) {
    answer.outcome = Outcome::retry;
  } else if (http_status == 403 &&
             (exhausted || headers("Retry-After") ||
              lowercase(answer.reason).find("rate limit") != std::string::npos)) {
    answer.outcome = Outcome::retry;
  } else {
    answer.outcome = Outcome::refused;
  }
  return answer;
}

}  // namespace sandci::agent::forge
