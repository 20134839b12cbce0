#include "agent/runner/action_runner.h"

#include <algorithm>
#include <cctype>

#include "scheduler/expression.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using scheduler::Result;
using scheduler::StepOutcome;

namespace {

constexpr std::uint64_t kMaxMetadataBytes = 1 << 20;

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

void set(scheduler::StringMap& map, const std::string& key, std::string value) {
  for (auto& [k, v] : map)
    if (k == key) return void(v = std::move(value));
  map.emplace_back(key, std::move(value));
}

std::string display_name(const scheduler::UsesRef& ref) {
  if (ref.kind == scheduler::UsesRef::Kind::remote)
    return ref.repository() + (ref.path.empty() ? "" : "/" + ref.path) + "@" + ref.ref;
  return ref.name();
}

std::string inside_local_dir(const scheduler::UsesRef& ref) {
  return ref.path.empty() ? std::string("/workspace") : "/workspace/" + ref.path;
}

// GITHUB_ACTION for a step without an id: "__" and the action's name, as GitHub's
// runner names it ("__acme_tools").
std::string action_id(const scheduler::StepRequest& step, const scheduler::UsesRef& ref) {
  if (!step.step->id.empty()) return step.step->id;
  std::string id = "__";
  for (char c : ref.kind == scheduler::UsesRef::Kind::remote ? ref.repository() : std::string("self"))
    id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

}  // namespace

std::string input_env_name(std::string_view input) {
  std::string out = "INPUT_";
  for (char c : input) out += c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

ActionRunner::ActionRunner(ActionHost& host, ActionRunnerOptions options)
    : host_(host), options_(std::move(options)) {}

// ---- before the sandbox ----------------------------------------------------------

std::vector<sandbox::Mount> ActionRunner::prepare(const scheduler::Job& job) {
  bool needs_node = false;
  prepare_steps(job.steps, 0);
  std::vector<sandbox::Mount> mounts;
  for (auto& [key, fetched] : fetched_) {
    if (!fetched.repository) continue;
    mounts.push_back({fetched.repository->root.string(), fetched.inside_root, true});
    fetched.in_sandbox = true;
  }
  // The runtime is mounted whenever the job uses any action that is not built
  // in: a local action may be written by an earlier step, so its kind is not
  // always known now, and a bind mount costs nothing.
  for (const auto& step : job.steps) {
    if (step.uses.empty()) continue;
    auto ref = scheduler::parse_uses(step.uses);
    if (ref && ref->kind != scheduler::UsesRef::Kind::docker && !host_.is_builtin(*ref)) needs_node = true;
  }
  if (needs_node && options_.node) {
    if (auto runtime = options_.node->get()) {
      node_runtime_ = *runtime;
      mounts.push_back({runtime->dir.string(), kNodeMount, true});
      node_mounted_ = true;
    }
  }
  return mounts;
}

void ActionRunner::prepare_steps(const std::vector<scheduler::Step>& steps, std::size_t depth) {
  if (depth >= kMaxActionDepth) return;
  for (const auto& step : steps) {
    if (step.uses.empty()) continue;
    auto ref = scheduler::parse_uses(step.uses);
    if (!ref || ref->kind == scheduler::UsesRef::Kind::docker || host_.is_builtin(*ref)) continue;
    scheduler::Diagnostics ignored;
    std::optional<scheduler::ActionMetadata> metadata;
    if (ref->kind == scheduler::UsesRef::Kind::remote) {
      if (!options_.source) continue;
      const std::string key = lower(ref->repository() + "@" + ref->ref);
      const bool seen = fetched_.contains(key);
      Fetched& fetched = fetch(*ref);
      if (seen || !fetched.repository) continue;
      metadata = scheduler::load_action_metadata(fetched.repository->root / ref->path, display_name(*ref), ignored);
    } else {
      // The checkout as the job starts; the step reads the action again inside.
      metadata = scheduler::load_action_metadata(options_.workspace / ref->path, ref->name(), ignored);
    }
    if (metadata && metadata->runs == scheduler::ActionRuns::composite) prepare_steps(metadata->steps, depth + 1);
  }
}

ActionRunner::Fetched& ActionRunner::fetch(const scheduler::UsesRef& ref) {
  const std::string key = lower(ref.repository() + "@" + ref.ref);
  auto it = fetched_.find(key);
  if (it != fetched_.end()) return it->second;
  Fetched fetched;
  fetched.repository = options_.source->fetch(ref);
  if (fetched.repository)
    fetched.inside_root = std::string(kActionsMount) + "/" + lower(ref.owner) + "/" + lower(ref.repo) + "/" +
                          fetched.repository->commit;
  return fetched_.emplace(key, std::move(fetched)).first->second;
}

// ---- at the step -----------------------------------------------------------------

StepOutcome ActionRunner::fail(std::size_t index, const std::string& message) {
  host_.log(index, "error: " + message);
  return {Result::failure, {}, {}, message};
}

std::expected<ActionRunner::Located, std::string> ActionRunner::locate(const scheduler::UsesRef& ref,
                                                                        std::size_t index) {
  Located located;
  located.ref = ref;
  located.display = display_name(ref);
  scheduler::Diagnostics diagnostics;
  std::optional<scheduler::ActionMetadata> metadata;
  if (ref.kind == scheduler::UsesRef::Kind::local) {
    // Read inside: an earlier step may have written or changed the action.
    located.inside_dir = inside_local_dir(ref);
    bool found = false;
    for (std::string_view name : scheduler::kActionFileNames) {
      auto text = host_.sandbox().read_file(located.inside_dir + "/" + std::string(name), kMaxMetadataBytes);
      if (!text) continue;
      found = true;
      metadata = scheduler::parse_action_metadata(*text, ref.name() + "/" + std::string(name), diagnostics);
      break;
    }
    if (!found)
      return std::unexpected("'uses: " + ref.name() + "': no action.yml or action.yaml in " + located.inside_dir +
                             " (is the repository checked out there?)");
  } else {
    if (!options_.source)
      return std::unexpected("'uses: " + located.display +
                             "' names a remote action, and this runner has no actions source to fetch it from: "
                             "remote actions need an actions source (the agent's action cache)");
    Fetched& fetched = fetch(ref);
    if (!fetched.repository) return std::unexpected(fetched.repository.error());
    if (!fetched.in_sandbox) {
      // Not seen before the job started: copy it in now.
      host_.log(index, "copying " + ref.repository() + "@" + ref.ref + " into the sandbox");
      auto copied = host_.sandbox().copy_in(fetched.repository->root.string(), fetched.inside_root);
      if (!copied) return std::unexpected("cannot copy " + located.display + " into the sandbox: " + copied.error().message);
      fetched.in_sandbox = true;
    }
    located.inside_dir = fetched.inside_root + (ref.path.empty() ? "" : "/" + ref.path);
    metadata = scheduler::load_action_metadata(fetched.repository->root / ref.path, located.display, diagnostics);
  }
  if (!metadata) return std::unexpected(scheduler::first_error(diagnostics));
  located.metadata = std::move(*metadata);
  return located;
}

StepOutcome ActionRunner::run(const scheduler::StepRequest& step, const scheduler::UsesRef& ref) {
  if (ref.kind == scheduler::UsesRef::Kind::docker)
    return fail(step.index, "'uses: " + ref.name() + "' is refused: jobs cannot pull images from a registry");
  if (depth_ >= kMaxActionDepth)
    return fail(step.index, "'uses: " + display_name(ref) + "': composite actions nest more than " +
                                std::to_string(kMaxActionDepth) + " levels deep");
  auto located = locate(ref, step.index);
  if (!located) return fail(step.index, located.error());
  const nlohmann::json inputs = resolve_inputs(step, *located);
  if (located->metadata.runs == scheduler::ActionRuns::composite) return run_composite(step, *located, inputs);
  return run_node(step, *located, inputs);
}

nlohmann::json ActionRunner::resolve_inputs(const scheduler::StepRequest& step, const Located& action) {
  const auto& metadata = action.metadata;
  nlohmann::json inputs = nlohmann::json::object();
  auto given = [&](std::string_view name) -> const std::string* {
    for (const auto& [key, value] : step.with)
      if (lower(key) == lower(std::string(name))) return &value;
    return nullptr;
  };
  for (const auto& input : metadata.inputs) {
    if (const std::string* value = given(input.name)) {
      inputs[input.name] = *value;
      if (!input.deprecation_message.empty())
        host_.log(step.index, "warning: input '" + input.name + "' of " + action.display +
                                  " is deprecated: " + input.deprecation_message);
      continue;
    }
    std::string value;
    if (input.default_value) {
      // Defaults may read the contexts (`${{ github.token }}`), as the step's own expressions do.
      auto text = step.context ? scheduler::interpolate(*input.default_value, *step.context)
                               : std::expected<std::string, scheduler::ExpressionError>(*input.default_value);
      if (text) value = *text;
      else host_.log(step.index, "warning: default of input '" + input.name + "': " + text.error().message);
    } else if (input.required) {
      host_.log(step.index, "warning: input required and not supplied: '" + input.name + "' (" + action.display + ")");
    }
    inputs[input.name] = value;
  }
  std::vector<std::string> unexpected;
  for (const auto& [key, value] : step.with)
    if (!metadata.find_input(key)) {
      unexpected.push_back(key);
      inputs[key] = value;
    }
  if (!unexpected.empty()) {
    std::string list, valid;
    for (const auto& u : unexpected) list += (list.empty() ? "'" : ", '") + u + "'";
    for (const auto& i : metadata.inputs) valid += (valid.empty() ? "'" : ", '") + i.name + "'";
    host_.log(step.index, "warning: unexpected input(s) " + list + " for " + action.display +
                              "; valid inputs are [" + valid + "]");
  }
  return inputs;
}

scheduler::StringMap ActionRunner::action_env(const scheduler::StepRequest& step, const Located& action) const {
  scheduler::StringMap env = step.env;
  set(env, "GITHUB_ACTION_PATH", action.inside_dir);
  set(env, "GITHUB_ACTION", action_id(step, action.ref));
  if (action.ref.kind == scheduler::UsesRef::Kind::remote) {
    set(env, "GITHUB_ACTION_REPOSITORY", action.ref.repository());
    set(env, "GITHUB_ACTION_REF", action.ref.ref);
  }
  return env;
}

StepOutcome ActionRunner::run_composite(const scheduler::StepRequest& step, const Located& action,
                                        const nlohmann::json& inputs) {
  scheduler::Job composite;
  composite.id = action.display;
  composite.steps = action.metadata.steps;
  // The job's defaults.run do not reach into an action: its steps start in the workspace.
  for (auto& sub : composite.steps)
    if (sub.run && sub.working_directory.empty()) sub.working_directory = "/workspace";
  for (const auto& output : action.metadata.outputs) composite.outputs.emplace_back(output.name, output.value);

  scheduler::EvalContext context = step.context ? *step.context : scheduler::EvalContext{};
  context.contexts["inputs"] = inputs;
  context.contexts["github"]["action_path"] = action.inside_dir;
  if (action.ref.kind == scheduler::UsesRef::Kind::remote) {
    context.contexts["github"]["action_repository"] = action.ref.repository();
    context.contexts["github"]["action_ref"] = action.ref.ref;
  }
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [key, value] : step.env) env[key] = value;
  context.contexts["env"] = env;

  const scheduler::StringMap extra = action_env(step, action);
  scheduler::StringMap env_updates;
  scheduler::StepSequencerOptions options;
  options.cancelled = [this] { return host_.stopped(); };
  ++depth_;
  auto result = scheduler::run_steps(
      composite, std::move(context),
      [&](const scheduler::StepRequest& sub) {
        scheduler::StepRequest nested = sub;
        nested.index = step.index;
        for (const auto& key : {"GITHUB_ACTION_PATH", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTION_REF"})
          for (const auto& [k, v] : extra)
            if (k == key) set(nested.env, k, v);
        host_.log(step.index, "##[group]" + sub.name);
        StepOutcome outcome = host_.run_nested_step(nested);
        host_.log(step.index, "##[endgroup]");
        for (const auto& update : outcome.env_updates) set(env_updates, update.first, update.second);
        return outcome;
      },
      options);
  --depth_;

  StepOutcome outcome;
  outcome.result = result.result;
  outcome.env_updates = std::move(env_updates);
  for (const auto& [key, value] : result.outputs.items())
    outcome.outputs.emplace_back(key, value.is_string() ? value.get<std::string>() : scheduler::to_display_string(value));
  for (const auto& error : result.errors) host_.log(step.index, "warning: " + action.display + ": " + error);
  for (const auto& sub : result.steps)
    if (sub.conclusion == Result::failure) {
      outcome.message = action.display + ": step '" + sub.name + "' failed: " + sub.message;
      break;
    }
  if (outcome.result == Result::cancelled) outcome.message = "cancelled";
  return outcome;
}

StepOutcome ActionRunner::run_node(const scheduler::StepRequest& step, const Located& action,
                                   const nlohmann::json& inputs) {
  const auto& metadata = action.metadata;
  if (!options_.node) return fail(step.index, action.display + " is a JavaScript action, and this runner has no Node.js runtime");
  if (!node_runtime_) {
    auto runtime = options_.node->get();
    if (!runtime) return fail(step.index, action.display + ": " + runtime.error());
    node_runtime_ = *runtime;
  }
  if (!node_mounted_ && !node_copied_) {
    host_.log(step.index, "copying the Node.js runtime into the sandbox");
    auto copied = host_.sandbox().copy_in(node_runtime_->dir.string(), kNodeMount);
    if (!copied) return fail(step.index, "cannot copy the Node.js runtime into the sandbox: " + copied.error().message);
    node_copied_ = true;
  }
  scheduler::StringMap env = action_env(step, action);
  for (const auto& [name, value] : inputs.items())
    set(env, input_env_name(name), value.is_string() ? value.get<std::string>() : value.dump());
  auto script = [&](const std::string& path) {
    return node_runtime_->command(kNodeMount, action.inside_dir + "/" + path);
  };
  auto with_state = [](scheduler::StringMap env, const NameValueList& state) {
    for (const auto& [name, value] : state) set(env, "STATE_" + name, value);
    return env;
  };

  // Registered before pre and main run: post runs even when they fail.
  std::optional<std::size_t> post;
  if (!metadata.post.empty()) {
    PostStep p;
    p.index = step.index;
    p.name = "Post " + step.name;
    p.argv = script(metadata.post);
    p.env = env;
    if (step.context) p.context = *step.context;
    p.condition = metadata.post_if.empty() ? "always()" : metadata.post_if;
    posts_.push_back(std::move(p));
    post = posts_.size() - 1;
  }
  NameValueList state;
  StepOutcome combined;
  if (!metadata.pre.empty()) {
    const std::string condition = metadata.pre_if.empty() ? "always()" : metadata.pre_if;
    auto holds = step.context ? scheduler::evaluate_condition(condition, *step.context) : std::expected<bool, scheduler::ExpressionError>(true);
    if (!holds) return fail(step.index, action.display + ": pre-if: " + holds.error().message);
    if (*holds) {
      host_.log(step.index, "##[group]Pre " + step.name);
      auto pre = host_.run_program({step.index, script(metadata.pre), env, "/workspace", step.timeout});
      host_.log(step.index, "##[endgroup]");
      state = pre.state;
      if (post) posts_[*post].state = state;
      combined.env_updates = pre.outcome.env_updates;
      if (pre.outcome.result != Result::success) {
        pre.outcome.message = "pre: " + pre.outcome.message;
        return pre.outcome;
      }
    } else {
      host_.log(step.index, "pre skipped: pre-if '" + condition + "' does not hold");
    }
  }
  auto main = host_.run_program({step.index, script(metadata.main), with_state(env, state), "/workspace", step.timeout});
  for (const auto& kv : main.state) state.push_back(kv);
  if (post) posts_[*post].state = state;
  for (const auto& [key, value] : main.outcome.env_updates) set(combined.env_updates, key, value);
  main.outcome.env_updates = std::move(combined.env_updates);
  return main.outcome;
}

std::string ActionRunner::run_posts(const scheduler::StatusFunctions& status) {
  std::string failure;
  for (auto it = posts_.rbegin(); it != posts_.rend(); ++it) {
    if (host_.stopped()) break;
    host_.log(it->index, "##[step] " + it->name);
    scheduler::EvalContext context = it->context;
    context.status = status;
    context.contexts["job"]["status"] = status.cancelled ? "cancelled" : status.any_failed ? "failure" : "success";
    auto holds = scheduler::evaluate_condition(it->condition, context);
    if (!holds) {
      host_.log(it->index, "error: post-if: " + holds.error().message);
      if (failure.empty()) failure = "'" + it->name + "': post-if: " + holds.error().message;
      continue;
    }
    if (!*holds) {
      host_.log(it->index, "skipped: post-if '" + it->condition + "' does not hold");
      continue;
    }
    scheduler::StringMap env = it->env;
    for (const auto& [name, value] : it->state) set(env, "STATE_" + name, value);
    auto outcome = host_.run_program({it->index, it->argv, env, "/workspace", std::nullopt});
    if (outcome.outcome.result == Result::failure && failure.empty())
      failure = "'" + it->name + "' failed: " + outcome.outcome.message;
  }
  return failure;
}

}  // namespace sandci::agent
