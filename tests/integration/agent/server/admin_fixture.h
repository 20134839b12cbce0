#pragma once
// Helpers for the admin-action tests on top of AgentTest: POSTs with or without the
// admin token, the run JSON, and `sandci runs ...` run as a child process.
#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {

class AdminTest : public AgentTest {
 protected:
  // POSTs to the agent with `Authorization: Bearer <token>` (none when empty).
  http::ClientResponse post(const std::string& path, const std::string& token = kAdminToken,
                            const std::string& actor = "") {
    http::ClientRequest request;
    request.method = "POST";
    request.url = agent_url() + path;
    request.timeout = 10s;
    if (!token.empty()) request.headers.set("Authorization", "Bearer " + token);
    if (!actor.empty()) request.headers.set("X-Sandci-Actor", actor);
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }

  json run_json(std::int64_t id) { return json::parse(get("/api/runs/" + std::to_string(id)).body, nullptr, false); }

  json actions_of(std::int64_t id) {
    auto body = json::parse(get("/api/runs/" + std::to_string(id) + "/actions").body, nullptr, false);
    return body.is_object() ? body["actions"] : json::array();
  }

  std::size_t run_count() {
    auto body = json::parse(get("/api/runs?limit=500").body, nullptr, false);
    return body.is_object() ? body["runs"].size() : 0;
  }

  // The key of each of the run's jobs, in the order stored.
  std::vector<std::string> job_keys(std::int64_t id) {
    std::vector<std::string> keys;
    auto run = run_json(id);
    if (run.is_object())
      for (const auto& job : run["jobs"]) keys.push_back(job["key"].get<std::string>());
    return keys;
  }

  // `sandci runs <args...> --agent <this agent>`.
  git::testing::CommandResult runs_cli(std::vector<std::string> args, const std::string& agent = "") {
    std::vector<std::string> argv{SANDCI_BINARY, "runs"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--agent");
    argv.push_back(agent.empty() ? agent_url() : agent);
    return git::testing::run(argv);
  }

  std::string admin_token_file() const { return (dir_.path() / "secrets/admin").string(); }
};

// Two independent jobs: `good` always passes, `flaky` fails on the first attempt
// only ($GITHUB_RUN_ATTEMPT), so a re-run of the failed job passes.
inline const char* kFlaky = R"(on: push
jobs:
  good:
    runs-on: linux
    steps:
      - run: echo good-ran
  flaky:
    runs-on: linux
    steps:
      - run: echo "attempt $GITHUB_RUN_ATTEMPT"; test "$GITHUB_RUN_ATTEMPT" -ge 2
)";

inline const char* kSlow = "on: push\njobs:\n  slow:\n    runs-on: x\n    steps:\n      - run: sleep 120\n";

}  // namespace sandci::agent::testing
