#include "scheduler/workflow_calls.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "scheduler/did_you_mean.h"
#include "scheduler/matrix.h"

namespace sandci::scheduler {
namespace {

class Expander {
 public:
  Expander(const CallOptions& options, Diagnostics& out) : options_(options), out_(out) {}

  // `chain`: the files from the top workflow down to `workflow`'s.
  std::optional<Workflow> expand(const Workflow& workflow, std::vector<std::string> chain) {
    Workflow result = workflow;
    result.jobs.clear();
    bool ok = true;
    for (const Job& job : workflow.jobs) {
      if (!job.call || job.call->expanded) {
        result.jobs.push_back(job);
        continue;
      }
      if (job.call->ref.kind == UsesRef::Kind::remote && options_.skip_remote) {
        out_.push_back({job.call->location,
                        "reusable workflow '" + job.call->uses +
                            "' was not checked: it is fetched from the actions source when the run starts",
                        Severity::note});
        result.jobs.push_back(job);
        continue;
      }
      ok = expand_call(job, chain, result) && ok;
    }
    if (!ok) return std::nullopt;
    return result;
  }

 private:
  void error(const SourceLocation& at, std::string message) { out_.push_back({at, std::move(message)}); }

  std::optional<Workflow> load_called(const Job& caller, const std::vector<std::string>& chain,
                                      std::string& file) {
    const WorkflowCall& call = *caller.call;
    file = called_file_name(call.ref, options_.root);
    auto path = chain;
    path.push_back(file);
    if (std::find(chain.begin(), chain.end(), file) != chain.end()) {
      error(call.location, "reusable workflows call each other in a cycle: " + join(path));
      return std::nullopt;
    }
    if (path.size() > kMaxCallDepth) {
      error(call.location, "reusable workflows nest at most " + std::to_string(kMaxCallDepth) +
                               " levels deep (as on GitHub): " + join(path));
      return std::nullopt;
    }
    if (!options_.read) {
      error(call.location, "cannot read reusable workflow '" + call.uses + "': nothing reads workflow files here");
      return std::nullopt;
    }
    auto text = options_.read(call.ref);
    if (!text) {
      error(call.location, "cannot read reusable workflow '" + call.uses + "': " + text.error());
      return std::nullopt;
    }
    Diagnostics called_diagnostics;
    auto called = parse_workflow(*text, file, called_diagnostics, options_.limits);
    out_.insert(out_.end(), called_diagnostics.begin(), called_diagnostics.end());
    if (!called) {
      error(call.location, "reusable workflow '" + call.uses + "' has errors (see above)");
      return std::nullopt;
    }
    if (!called->on.workflow_call) {
      error(call.location, "'" + call.uses + "' is not a reusable workflow: its 'on' does not list workflow_call");
      return std::nullopt;
    }
    auto expanded = expand(*called, path);
    if (!expanded) return std::nullopt;
    return expanded;
  }

  static std::string join(const std::vector<std::string>& chain) {
    std::string text;
    for (const auto& file : chain) text += (text.empty() ? "" : " -> ") + file;
    return text;
  }

  // The caller's `with` and `secrets` against what the called workflow declares.
  bool check_arguments(const Job& caller, const WorkflowCallTrigger& declared) {
    const WorkflowCall& call = *caller.call;
    bool ok = true;
    std::vector<std::string> input_names, secret_names;
    for (const auto& input : declared.inputs) input_names.push_back(input.name);
    for (const auto& [name, required] : declared.secrets) secret_names.push_back(name);
    for (std::size_t k = 0; k < call.with.size(); ++k) {
      const std::string& name = call.with[k].first;
      if (std::find(input_names.begin(), input_names.end(), name) != input_names.end()) continue;
      const SourceLocation at = k < call.with_locations.size() ? call.with_locations[k] : call.location;
      error(at, "job '" + caller.id + "' passes input '" + name + "', which '" + call.uses + "' does not declare" +
                    (input_names.empty() ? std::string(" (it declares no inputs)") : did_you_mean(name, input_names)));
      ok = false;
    }
    for (const auto& input : declared.inputs) {
      if (!input.required || input.default_value) continue;
      const bool given = std::any_of(call.with.begin(), call.with.end(),
                                     [&](const auto& entry) { return entry.first == input.name; });
      if (!given) {
        error(call.location, "job '" + caller.id + "' does not pass the required input '" + input.name + "' of '" +
                                 call.uses + "'");
        ok = false;
      }
    }
    if (call.inherit_secrets) return ok;
    for (std::size_t k = 0; k < call.secrets.size(); ++k) {
      const std::string& name = call.secrets[k].first;
      if (std::find(secret_names.begin(), secret_names.end(), name) != secret_names.end()) continue;
      const SourceLocation at = k < call.secret_locations.size() ? call.secret_locations[k] : call.location;
      error(at, "job '" + caller.id + "' passes secret '" + name + "', which '" + call.uses + "' does not declare" +
                    (secret_names.empty() ? std::string(" (it declares no secrets)")
                                          : did_you_mean(name, secret_names)));
      ok = false;
    }
    for (const auto& [name, required] : declared.secrets) {
      if (!required) continue;
      const bool given = std::any_of(call.secrets.begin(), call.secrets.end(),
                                     [&](const auto& entry) { return entry.first == name; });
      if (!given) {
        error(call.location, "job '" + caller.id + "' does not pass the required secret '" + name + "' of '" +
                                 call.uses + "' (pass it under 'secrets:', or use 'secrets: inherit')");
        ok = false;
      }
    }
    return ok;
  }

  // The caller's matrix combinations: one null combination without a matrix.
  std::optional<std::vector<ConcreteJob>> combinations(const Job& caller) {
    if (!caller.strategy || caller.strategy->matrix.empty()) return std::vector<ConcreteJob>{};
    if (caller.strategy->matrix.from_expression()) {
      error(caller.location, "job '" + caller.id + "' calls a reusable workflow with a matrix computed by an "
                                                   "expression; sandci needs the caller's matrix written out");
      return std::nullopt;
    }
    auto expanded = expand_matrix(caller, 0);
    if (!expanded) {
      out_.push_back(expanded.error());
      return std::nullopt;
    }
    return std::move(*expanded);
  }

  bool expand_call(const Job& caller, const std::vector<std::string>& chain, Workflow& into) {
    std::string file;
    auto called = load_called(caller, chain, file);
    if (!called) return false;
    const WorkflowCallTrigger& declared = *called->on.workflow_call;
    if (!check_arguments(caller, declared)) return false;
    auto combos = combinations(caller);
    if (!combos) return false;

    auto scope = std::make_shared<WorkflowScope>();
    scope->env = called->env;
    scope->env_file = file;
    scope->defaults = called->defaults;
    const std::string caller_display = caller.name.empty() ? caller.id : caller.name;

    Job join = caller;
    join.strategy.reset();  // each combination got its own copy of the called jobs
    join.call->expanded = true;
    join.call->caller_needs = caller.needs;
    join.needs.clear();
    join.outputs.clear();
    for (const auto& output : declared.outputs) join.outputs.emplace_back(output.name, output.value);

    const std::size_t copies = combos->empty() ? 1 : combos->size();
    for (std::size_t k = 0; k < copies; ++k) {
      const std::string prefix = combos->empty() ? caller.id : caller.id + "/" + std::to_string(k);
      const std::string display = combos->empty() ? caller_display : (*combos)[k].name;
      auto frame = std::make_shared<CallFrame>();
      frame->caller = caller.id;
      frame->scope = prefix;
      frame->matrix = combos->empty() ? nlohmann::json(nullptr) : (*combos)[k].matrix;
      frame->file = file;
      frame->declared = declared;
      join.call->scopes.push_back(prefix);
      // Frames of calls nested in the called workflow are re-made with the new prefix.
      std::map<const CallFrame*, std::shared_ptr<const CallFrame>> nested;
      for (const Job& original : called->jobs) {
        Job job = original;
        job.id = prefix + "/" + original.id;
        job.name = display + " / " + (original.name.empty() ? original.id : original.name);
        for (auto& need : job.needs) need = prefix + "/" + need;
        if (original.needs.empty()) job.needs = caller.needs;
        if (job.call && job.call->expanded) {
          for (auto& need : job.call->caller_needs) need = prefix + "/" + need;
          if (original.call->caller_needs.empty()) job.call->caller_needs = caller.needs;
          for (auto& s : job.call->scopes) s = prefix + "/" + s;
        }
        if (!original.frame) {
          job.frame = frame;
          job.scope = scope;
        } else {
          auto& renamed = nested[original.frame.get()];
          if (!renamed) {
            auto copy = std::make_shared<CallFrame>(*original.frame);
            copy->caller = prefix + "/" + copy->caller;
            copy->scope = prefix + "/" + copy->scope;
            renamed = copy;
          }
          job.frame = renamed;
        }
        // The called workflow's top-level jobs are what the caller waits for.
        if (!original.frame) join.needs.push_back(job.id);
        into.jobs.push_back(std::move(job));
      }
    }
    into.jobs.push_back(std::move(join));
    return true;
  }

  const CallOptions& options_;
  Diagnostics& out_;
};

}  // namespace

bool has_calls(const Workflow& workflow) {
  return std::any_of(workflow.jobs.begin(), workflow.jobs.end(), [](const Job& job) { return job.call.has_value(); });
}

std::string called_file_name(const UsesRef& ref, const std::string& root) {
  if (ref.kind == UsesRef::Kind::remote) return ref.owner + "/" + ref.repo + "/" + ref.path + "@" + ref.ref;
  if (root.empty()) return ref.path;
  return (std::filesystem::path(root) / ref.path).lexically_normal().string();
}

std::optional<Workflow> expand_calls(const Workflow& workflow, const CallOptions& options, Diagnostics& out) {
  if (!has_calls(workflow)) return workflow;
  Expander expander(options, out);
  return expander.expand(workflow, {workflow.file});
}

}  // namespace sandci::scheduler
