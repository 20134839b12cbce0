// `sandci enqueue`: asks a running agent to start a run for a repository and ref
// by hand (forges do not redeliver a webhook the agent missed). Authenticated with
// the agent's admin token.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/http/http_client.h"

namespace sandci::agent {
namespace {

struct EnqueueOptions {
  std::string agent = "http://127.0.0.1:8080";
  std::string token_file;
  std::string repository;
  std::string ref = "main";
  std::string sha;
  std::string forge;
  std::string event = "push";
  std::string ca_file;
};

int enqueue(const EnqueueOptions& options) {
  const auto token = read_admin_token(options.token_file);
  if (!token) {
    std::cerr << "sandci enqueue: " << token.error() << "\n";
    return kExitUsage;
  }
  nlohmann::json body = {{"repository", options.repository}, {"ref", options.ref}, {"event", options.event}};
  if (!options.sha.empty()) body["sha"] = options.sha;
  if (!options.forge.empty()) body["forge"] = options.forge;
  http::ClientOptions client_options;
  client_options.ca_file = options.ca_file;
  http::HttpClient client(client_options);
  http::ClientRequest request;
  request.method = "POST";
  request.url = options.agent + "/api/enqueue";
  request.headers.set("Authorization", "Bearer " + *token);
  request.headers.set("Content-Type", "application/json");
  request.body = body.dump();
  auto answer = client.send(request);
  if (!answer) {
    std::cerr << "sandci enqueue: " << answer.error() << "\n";
    return kExitRunFailed;
  }
  if (answer->status != 202) {
    std::cerr << "sandci enqueue: the agent answered " << answer->status << ": " << answer->body;
    return answer->status == 400 || answer->status == 404 ? kExitUsage : kExitRunFailed;
  }
  auto reply = nlohmann::json::parse(answer->body, nullptr, false);
  if (reply.is_object() && reply.contains("run"))
    std::cout << "queued run " << reply["run"].dump() << ": " << reply.value("url", "") << "\n";
  else
    std::cout << answer->body;
  return kExitOk;
}

}  // namespace

void add_enqueue_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("enqueue", "Ask a running agent to run a repository's ref now");
  auto opts = std::make_shared<EnqueueOptions>();
  cmd->add_option("repository", opts->repository, "owner/name, as configured")->required();
  cmd->add_option("--ref", opts->ref, "Branch, tag or full ref")->capture_default_str();
  cmd->add_option("--sha", opts->sha, "Exact commit (default: the ref's commit when the run starts)");
  cmd->add_option("--event", opts->event, "push or workflow_dispatch")
      ->capture_default_str()
      ->check(CLI::IsMember({"push", "workflow_dispatch"}));
  cmd->add_option("--forge", opts->forge, "github, gitea, forgejo or gitlab (when the name is on several)");
  cmd->add_option("--agent", opts->agent, "The agent's base URL")->capture_default_str();
  cmd->add_option("--token-file", opts->token_file, "File holding the agent's admin token")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--ca-file", opts->ca_file, "CA bundle for an agent served over HTTPS");
  cmd->callback([&action, opts] {
    action = [opts] { return enqueue(*opts); };
  });
}

}  // namespace sandci::agent
