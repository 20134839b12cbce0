// `sandci runs list|show|cancel|rerun`: looks at and acts on the runs of a running
// agent over its HTTP API. cancel and rerun need the agent's admin token.
#include <cstdint>
#include <ctime>
#include <expected>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/http/http_client.h"
#include "agent/server/routes.h"

namespace sandci::agent {
namespace {

using nlohmann::json;

struct RunsOptions {
  std::string agent = "http://127.0.0.1:8080";
  std::string ca_file;
  std::string token_file;
  std::string actor;
  std::int64_t id = 0;
  bool failed_only = false;
  bool as_json = false;
  std::string repository, ref, state;
  int limit = 20;
  std::int64_t before = 0;
};

// One exchange with the agent; the error is a sentence ready to print.
class AgentApi {
 public:
  explicit AgentApi(const RunsOptions& options) : options_(options), client_(client_options(options)) {}

  std::expected<http::ClientResponse, std::string> send(const std::string& method, const std::string& path,
                                                        const std::string& token = "") const {
    http::ClientRequest request;
    request.method = method;
    request.url = base() + path;
    if (!token.empty()) request.headers.set("Authorization", "Bearer " + token);
    if (!options_.actor.empty()) request.headers.set("X-Sandci-Actor", options_.actor);
    auto answer = client_.send(request);
    if (!answer) return std::unexpected("cannot reach the agent at " + base() + " (is `sandci serve` running?): " + answer.error());
    return answer;
  }

 private:
  static http::ClientOptions client_options(const RunsOptions& options) {
    http::ClientOptions out;
    out.ca_file = options.ca_file;
    return out;
  }
  std::string base() const {
    std::string url = options_.agent;
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
  }
  const RunsOptions& options_;
  http::HttpClient client_;
};

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// A non-2xx answer as a message and exit code: what the user can fix is a usage error.
int report_refusal(const http::ClientResponse& answer, std::int64_t id) {
  const std::string body = trimmed(answer.body);
  switch (answer.status) {
    case 401:
      std::cerr << "sandci runs: the agent refused the admin token (401): check --token-file\n";
      return kExitUsage;
    case 403:
      std::cerr << "sandci runs: the agent refused (403): " << body << "\n";
      return kExitUsage;
    case 404:
      std::cerr << "sandci runs: " << (id > 0 ? "no run " + std::to_string(id) + " on the agent" : "not found") << " (404)\n";
      return kExitUsage;
    case 400:
      std::cerr << "sandci runs: the agent refused the request (400): " << body << "\n";
      return kExitUsage;
    default:
      std::cerr << "sandci runs: the agent answered " << answer.status << ": " << body << "\n";
      return kExitRunFailed;
  }
}

std::string format_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string field(const json& object, const char* name) {
  if (!object.contains(name)) return "";
  const json& value = object[name];
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::optional<json> parse_object(const http::ClientResponse& answer) {
  auto parsed = json::parse(answer.body, nullptr, false);
  if (!parsed.is_object()) {
    std::cerr << "sandci runs: the agent's answer is not JSON\n";
    return std::nullopt;
  }
  return parsed;
}

// The token list and show send when --token-file is given: private repositories'
// runs are shown only to a viewer or the admin token. Empty without the option.
std::expected<std::string, std::string> viewing_token(const RunsOptions& options) {
  if (options.token_file.empty()) return std::string();
  return read_admin_token(options.token_file);
}

int list_runs(const RunsOptions& options) {
  auto token = viewing_token(options);
  if (!token) {
    std::cerr << "sandci runs: " << token.error() << "\n";
    return kExitUsage;
  }
  std::string query = "?limit=" + std::to_string(options.limit);
  if (!options.repository.empty()) query += "&repository=" + server::percent_encode(options.repository);
  if (!options.ref.empty()) query += "&ref=" + server::percent_encode(options.ref);
  if (!options.state.empty()) query += "&state=" + server::percent_encode(options.state);
  if (options.before > 0) query += "&before=" + std::to_string(options.before);
  auto answer = AgentApi(options).send("GET", "/api/runs" + query, *token);
  if (!answer) {
    std::cerr << "sandci runs: " << answer.error() << "\n";
    return kExitRunFailed;
  }
  if (answer->status != 200) return report_refusal(*answer, 0);
  if (options.as_json) {
    std::cout << trimmed(answer->body) << "\n";
    return kExitOk;
  }
  auto reply = parse_object(*answer);
  if (!reply) return kExitRunFailed;
  for (const auto& run : (*reply)["runs"]) {
    std::cout << "#" << field(run, "id") << "  " << field(run, "state") << "  " << field(run, "repository") << "  "
              << field(run, "ref") << "  " << field(run, "sha").substr(0, 12) << "  " << field(run, "trigger") << "  "
              << format_time(run.value("created_ms", std::int64_t{0})) << "\n";
  }
  if (reply->contains("next_before"))
    std::cout << "(more: --before " << field(*reply, "next_before") << ")\n";
  return kExitOk;
}

int show_run(const RunsOptions& options) {
  auto token = viewing_token(options);
  if (!token) {
    std::cerr << "sandci runs: " << token.error() << "\n";
    return kExitUsage;
  }
  AgentApi api(options);
  const std::string path = "/api/runs/" + std::to_string(options.id);
  auto answer = api.send("GET", path, *token);
  if (!answer) {
    std::cerr << "sandci runs: " << answer.error() << "\n";
    return kExitRunFailed;
  }
  if (answer->status != 200) return report_refusal(*answer, options.id);
  auto run = parse_object(*answer);
  if (!run) return kExitRunFailed;
  auto actions_answer = api.send("GET", path + "/actions", *token);
  json actions = json::array();
  if (actions_answer && actions_answer->status == 200) {
    auto parsed = json::parse(actions_answer->body, nullptr, false);
    if (parsed.is_object() && parsed.contains("actions")) actions = parsed["actions"];
  }
  if (options.as_json) {
    (*run)["actions"] = actions;
    std::cout << run->dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "run " << field(*run, "id") << ": " << field(*run, "repository") << " " << field(*run, "ref") << " "
            << field(*run, "sha") << " (" << field(*run, "event") << ", attempt " << field(*run, "attempt") << ")\n"
            << "state: " << field(*run, "state");
  if (!field(*run, "message").empty()) std::cout << ": " << field(*run, "message");
  std::cout << "\nqueued " << format_time(run->value("created_ms", std::int64_t{0})) << ", started "
            << format_time(run->value("started_ms", std::int64_t{0})) << ", finished "
            << format_time(run->value("finished_ms", std::int64_t{0})) << " (UTC)\n";
  if (run->contains("jobs") && !(*run)["jobs"].empty()) {
    std::cout << "jobs:\n";
    for (const auto& job : (*run)["jobs"]) {
      std::cout << "  " << field(job, "state") << "  " << field(job, "key");
      if (!field(job, "message").empty()) std::cout << "  (" << field(job, "message") << ")";
      std::cout << "\n";
    }
  }
  if (!actions.empty()) {
    std::cout << "actions:\n";
    for (const auto& a : actions) {
      std::cout << "  " << format_time(a.value("at_ms", std::int64_t{0})) << "  " << field(a, "action") << " by "
                << field(a, "actor");
      if (!field(a, "detail").empty()) std::cout << ": " << field(a, "detail");
      std::cout << "\n";
    }
  }
  return kExitOk;
}

// cancel and rerun: POST with the admin token.
int act_on_run(const RunsOptions& options, const std::string& verb) {
  auto token = read_admin_token(options.token_file);
  if (!token) {
    std::cerr << "sandci runs: " << token.error() << "\n";
    return kExitUsage;
  }
  std::string path = "/api/runs/" + std::to_string(options.id) + "/" + verb;
  if (verb == "rerun" && options.failed_only) path += "?failed_only=1";
  auto answer = AgentApi(options).send("POST", path, *token);
  if (!answer) {
    std::cerr << "sandci runs: " << answer.error() << "\n";
    return kExitRunFailed;
  }
  if (answer->status == 409) {
    std::cerr << "sandci runs: " << trimmed(answer->body) << "\n";
    return kExitRunFailed;
  }
  if (answer->status != 202) return report_refusal(*answer, options.id);
  auto reply = parse_object(*answer);
  if (!reply) return kExitRunFailed;
  if (verb == "cancel") {
    std::cout << "run " << options.id << ": "
              << (field(*reply, "state") == "cancelled" ? "cancelled" : "cancel requested (the agent is stopping it)")
              << "\n";
  } else {
    std::cout << "queued run " << field(*reply, "run") << " (re-run of " << options.id;
    if (reply->contains("jobs") && !(*reply)["jobs"].empty())
      std::cout << ", " << (*reply)["jobs"].size() << " failed jobs";
    std::cout << "): " << field(*reply, "url") << "\n";
  }
  return kExitOk;
}

void add_agent_options(CLI::App& cmd, RunsOptions& options) {
  cmd.add_option("--agent", options.agent, "The agent's base URL")->capture_default_str();
  cmd.add_option("--ca-file", options.ca_file, "CA bundle for an agent served over HTTPS");
}

void add_admin_options(CLI::App& cmd, RunsOptions& options) {
  cmd.add_option("id", options.id, "The run's number")->required()->check(CLI::PositiveNumber);
  cmd.add_option("--token-file", options.token_file, "File holding the agent's admin token")->required();
  cmd.add_option("--actor", options.actor, "Your name, recorded with the action (default: admin)");
}

}  // namespace

void add_runs_command(CLI::App& app, CommandAction& action) {
  auto* runs = app.add_subcommand("runs", "List, show, cancel or re-run the runs of a running agent");
  runs->require_subcommand(1);
  auto opts = std::make_shared<RunsOptions>();

  auto* list = runs->add_subcommand("list", "Recent runs, newest first");
  add_agent_options(*list, *opts);
  list->add_option("--repository", opts->repository, "Only this repository (owner/name)");
  list->add_option("--ref", opts->ref, "Only this ref (refs/heads/main)");
  list->add_option("--state", opts->state, "Only runs in this state")
      ->check(CLI::IsMember({"queued", "running", "success", "failure", "error", "cancelled"}));
  list->add_option("--limit", opts->limit, "How many")->capture_default_str()->check(CLI::Range(1, 500));
  list->add_option("--before", opts->before, "Only runs older than this run number (paging)");
  list->add_flag("--json", opts->as_json, "Print the agent's JSON");
  list->add_option("--token-file", opts->token_file, "File holding a viewer or the admin token (private repositories)");
  list->callback([&action, opts] { action = [opts] { return list_runs(*opts); }; });

  auto* show = runs->add_subcommand("show", "A run: its jobs and what admins did to it");
  add_agent_options(*show, *opts);
  show->add_option("id", opts->id, "The run's number")->required()->check(CLI::PositiveNumber);
  show->add_flag("--json", opts->as_json, "Print JSON");
  show->add_option("--token-file", opts->token_file, "File holding a viewer or the admin token (private repositories)");
  show->callback([&action, opts] { action = [opts] { return show_run(*opts); }; });

  auto* cancel = runs->add_subcommand("cancel", "Cancel a queued or running run (admin token)");
  add_agent_options(*cancel, *opts);
  add_admin_options(*cancel, *opts);
  cancel->callback([&action, opts] { action = [opts] { return act_on_run(*opts, "cancel"); }; });

  auto* rerun = runs->add_subcommand("rerun", "Run a finished run's commit again (admin token)");
  add_agent_options(*rerun, *opts);
  add_admin_options(*rerun, *opts);
  rerun->add_flag("--failed-only", opts->failed_only, "Only the jobs that did not succeed (and what they need)");
  rerun->callback([&action, opts] { action = [opts] { return act_on_run(*opts, "rerun"); }; });
}

}  // namespace sandci::agent
