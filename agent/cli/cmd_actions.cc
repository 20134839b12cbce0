// `sandci actions add|list`: the remote-action cache from the command line, so an
// agent without internet can run workflows that use `owner/repo@ref` once someone
// filled its cache (on the agent itself, or in a copied state folder).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <set>

#include "agent/cli/cli.h"
#include "agent/config/config_loader.h"
#include "agent/runner/remote_actions.h"
#include "sandbox/image_store.h"

namespace sandci::agent {
namespace {

struct ActionsArgs {
  std::string source;     // --source; default: the config's, $SANDCI_ACTIONS_SOURCE, github.com
  std::string state_dir;  // --state-dir; default: the config's, $SANDCI_STATE_DIR, /var/lib/sandci
  std::string config;     // --config: take source, credentials and state folder from the agent's file
};

void error(const std::string& message) { std::cerr << "sandci actions: " << message << "\n"; }

// The command line's choice, else the agent configuration's, else the environment's.
std::expected<ActionsOptions, int> options_from(const ActionsArgs& args) {
  ActionsOptions options;
  options.state_dir = sandbox::default_state_dir();
  if (const char* env = std::getenv("SANDCI_ACTIONS_SOURCE"); env && *env) options.source = env;
  if (!args.config.empty()) {
    auto loaded = config::load_agent_config(args.config, config::Environment::from_process());
    for (const auto& diagnostic : loaded.diagnostics) std::cerr << diagnostic.to_string() << "\n";
    if (!loaded.ok()) return std::unexpected(static_cast<int>(kExitUsage));
    options.state_dir = loaded.config->state_dir;
    options.source = loaded.config->actions.source;
    options.credentials = loaded.config->actions.clone;
  }
  if (!args.source.empty()) options.source = args.source;
  if (!args.state_dir.empty()) options.state_dir = args.state_dir;
  if (auto problem = actions_source_problem(options.source)) {
    error("--source: " + *problem);
    return std::unexpected(static_cast<int>(kExitUsage));
  }
  return options;
}

int do_add(const ActionsArgs& args, const std::vector<std::string>& specs) {
  std::vector<scheduler::UsesRef> refs;
  for (const auto& text : specs) {
    auto ref = parse_action_spec(text);
    if (!ref) {
      error(ref.error());
      return kExitUsage;
    }
    refs.push_back(*ref);
  }
  auto options = options_from(args);
  if (!options) return options.error();
  ActionCache cache(*options);
  int code = kExitOk;
  for (const auto& ref : refs) {
    const std::string spec = ref.repository() + "@" + ref.ref;
    auto resolved = cache.resolve(ref);
    if (resolved && resolved->from_cache) {
      // Filling the cache means reaching the source: an old copy is no success here.
      error("cannot reach " + resolved->url + " (" + resolved->problem + "); the cache still has " + spec + " at " +
            resolved->commit);
      code = kExitRunFailed;
      continue;
    }
    if (!resolved) {
      error(resolved.error());
      code = kExitRunFailed;
      continue;
    }
    if (auto tree = cache.tree(*resolved); !tree) {
      error(tree.error());
      code = kExitRunFailed;
      continue;
    }
    std::cout << resolved->commit << " " << spec << " (" << resolved->url << ")\n";
  }
  return code;
}

std::string short_ref(const std::string& name) {
  for (const char* prefix : {"refs/tags/", "refs/heads/"})
    if (name.starts_with(prefix)) return name.substr(std::string(prefix).size());
  return name;
}

int do_list(const ActionsArgs& args) {
  auto options = options_from(args);
  if (!options) return options.error();
  ActionCache cache(*options);
  const auto repositories = cache.list();
  if (repositories.empty()) {
    std::cout << "no actions cached in " << (options->state_dir / "actions").string()
              << " (fill it with `sandci actions add owner/repo@ref`)\n";
    return kExitOk;
  }
  for (const auto& repository : repositories) {
    std::cout << repository.repository << "  " << repository.url << "\n";
    if (!repository.mirrored) std::cout << "  (no mirror from this source)\n";
    std::set<std::string> shown;
    for (const auto& ref : repository.refs) {
      const bool tag = ref.name.starts_with("refs/tags/");
      std::cout << "  " << (tag ? "tag    " : "branch ") << short_ref(ref.name) << "  " << ref.commit
                << (ref.tree ? "  checked out" : "") << "\n";
      if (ref.tree) shown.insert(ref.commit);
    }
    for (const auto& commit : repository.trees)
      if (!shown.contains(commit)) std::cout << "  commit " << commit << "  checked out\n";
  }
  return kExitOk;
}

void add_common(CLI::App* cmd, const std::shared_ptr<ActionsArgs>& args) {
  cmd->add_option("--source", args->source,
                  "Where owner/repo is fetched from: <source>/<owner>/<repo> (default: the --config file's, "
                  "else $SANDCI_ACTIONS_SOURCE, else https://github.com)");
  cmd->add_option("--state-dir", args->state_dir,
                  "sandci's state folder (default: the --config file's, else $SANDCI_STATE_DIR, else /var/lib/sandci)");
  cmd->add_option("--config", args->config,
                  "The agent's configuration file: its actions source, credentials and state folder");
}

}  // namespace

void add_actions_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("actions", "Manage the cache of remote actions and reusable workflows");
  cmd->require_subcommand(1);
  auto args = std::make_shared<ActionsArgs>();

  auto specs = std::make_shared<std::vector<std::string>>();
  auto* add = cmd->add_subcommand(
      "add", "Fetch owner/repo@ref into the cache (for agents without internet); prints the commit");
  add->add_option("action", *specs, "owner/repo@ref (a tag, branch or commit; repeatable)")->required();
  add_common(add, args);
  add->callback([&action, args, specs] { action = [args, specs] { return do_add(*args, *specs); }; });

  auto* list = cmd->add_subcommand("list", "Show the cached action repositories, their refs and checked-out commits");
  add_common(list, args);
  list->callback([&action, args] { action = [args] { return do_list(*args); }; });
}

}  // namespace sandci::agent
