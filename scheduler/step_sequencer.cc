#include "scheduler/step_sequencer.h"

#include <utility>

namespace sandci::scheduler {
namespace {

bool continue_on_error_holds(const std::string& text, const EvalContext& ctx) {
  if (text.empty() || text == "false") return false;
  if (text == "true") return true;
  auto value = interpolate(text, ctx);
  return value && *value == "true";
}

std::string error_text(std::string_view what, const ExpressionError& error) {
  return std::string(what) + ": " + error.message;
}

class Sequencer {
 public:
  Sequencer(const Job& job, EvalContext context, const StepCallback& run_step,
            const StepSequencerOptions& options)
      : job_(job), ctx_(std::move(context)), run_step_(run_step), options_(options) {
    if (!ctx_.contexts.is_object()) ctx_.contexts = nlohmann::json::object();
    if (!ctx_.contexts.contains("env") || !ctx_.contexts["env"].is_object())
      ctx_.contexts["env"] = nlohmann::json::object();
    ctx_.contexts["steps"] = nlohmann::json::object();
    // Step status functions look at earlier steps only, not at the needs.
    ctx_.status = {};
  }

  StepsResult run() {
    for (std::size_t i = 0; i < job_.steps.size(); ++i) run_one(i);
    result_.result = ctx_.status.cancelled ? Result::cancelled
                     : ctx_.status.any_failed ? Result::failure
                                              : Result::success;
    evaluate_job_outputs();
    return std::move(result_);
  }

 private:
  void run_one(std::size_t index) {
    const Step& step = job_.steps[index];
    if (options_.cancelled && options_.cancelled()) ctx_.status.cancelled = true;

    StepReport report;
    report.name = display_name(step);
    auto holds = evaluate_condition(step.if_condition, ctx_);
    if (!holds) {
      report.message = error_text("if", holds.error());
      finish(index, step, std::move(report), Result::failure, {}, false);
      return;
    }
    if (!*holds) {
      publish(EventKind::step_finished, index, report.name, Result::skipped, {});
      record(step, Result::skipped, Result::skipped, {});
      result_.steps.push_back(std::move(report));
      return;
    }

    const bool continue_on_error = continue_on_error_holds(step.continue_on_error, ctx_);
    StepRequest request;
    std::string error;
    if (!prepare(index, step, report.name, request, error)) {
      report.message = std::move(error);
      finish(index, step, std::move(report), Result::failure, {}, continue_on_error);
      return;
    }
    publish(EventKind::step_started, index, report.name, std::nullopt, {});
    StepOutcome outcome = run_step_(request);
    for (auto& [key, value] : outcome.env_updates) ctx_.contexts["env"][key] = value;
    report.message = std::move(outcome.message);
    finish(index, step, std::move(report), outcome.result, outcome.outputs, continue_on_error);
  }

  // Substitutes the step's expressions; false (and `error`) when one fails.
  bool prepare(std::size_t index, const Step& step, const std::string& name, StepRequest& request,
               std::string& error) {
    request.index = index;
    request.step = &step;
    request.name = name;
    request.context = &ctx_;
    if (step.timeout_minutes)
      request.timeout = std::chrono::duration<double>(*step.timeout_minutes * 60.0);
    for (const auto& [key, value] : ctx_.contexts["env"].items())
      request.env.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
    for (const auto& [key, value] : step.env) {
      auto text = interpolate(value, ctx_);
      if (!text) return (error = error_text("env." + key, text.error()), false);
      set(request.env, key, std::move(*text));
    }
    for (const auto& [key, value] : step.with) {
      auto text = interpolate(value, ctx_);
      if (!text) return (error = error_text("with." + key, text.error()), false);
      request.with.emplace_back(key, std::move(*text));
    }
    if (step.run) {
      auto text = interpolate(*step.run, ctx_);
      if (!text) return (error = error_text("run", text.error()), false);
      request.run = std::move(*text);
    }
    return true;
  }

  void finish(std::size_t index, const Step& step, StepReport report, Result outcome,
              const StringMap& outputs, bool continue_on_error) {
    const Result conclusion =
        outcome == Result::failure && continue_on_error ? Result::success : outcome;
    if (conclusion == Result::failure) ctx_.status.any_failed = true;
    if (conclusion == Result::cancelled) ctx_.status.cancelled = true;
    report.outcome = outcome;
    report.conclusion = conclusion;
    publish(EventKind::step_finished, index, report.name, conclusion, report.message);
    record(step, outcome, conclusion, outputs);
    result_.steps.push_back(std::move(report));
  }

  void record(const Step& step, Result outcome, Result conclusion, const StringMap& outputs) {
    if (step.id.empty()) return;
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : outputs) out[key] = value;
    ctx_.contexts["steps"][step.id] = {{"outputs", std::move(out)},
                                       {"outcome", to_string(outcome)},
                                       {"conclusion", to_string(conclusion)}};
  }

  void evaluate_job_outputs() {
    for (const auto& [key, value] : job_.outputs) {
      auto text = interpolate(value, ctx_);
      if (!text) {
        result_.errors.push_back(error_text("outputs." + key, text.error()));
        continue;
      }
      result_.outputs[key] = std::move(*text);
    }
  }

  std::string display_name(const Step& step) {
    if (step.name.empty()) return default_step_name(step);
    auto text = interpolate(step.name, ctx_);
    return text ? *text : step.name;  // a label: keep it as written rather than fail
  }

  static void set(StringMap& map, const std::string& key, std::string value) {
    for (auto& [k, v] : map)
      if (k == key) return void(v = std::move(value));
    map.emplace_back(key, std::move(value));
  }

  void publish(EventKind kind, std::size_t index, const std::string& name,
               std::optional<Result> result, const std::string& message) {
    if (!options_.observer) return;
    RunEvent event;
    event.kind = kind;
    if (options_.clock) event.time = options_.clock->now();
    event.job = options_.job;
    event.step = index;
    event.name = name;
    event.result = result;
    event.message = message;
    options_.observer->on_event(event);
  }

  const Job& job_;
  EvalContext ctx_;
  const StepCallback& run_step_;
  const StepSequencerOptions& options_;
  StepsResult result_;
};

}  // namespace

std::string default_step_name(const Step& step) {
  if (!step.uses.empty()) return "Run " + step.uses;
  if (step.run) {
    std::string_view script = *step.run;
    while (!script.empty() && (script.front() == '\n' || script.front() == ' '))
      script.remove_prefix(1);
    return "Run " + std::string(script.substr(0, script.find('\n')));
  }
  return "Run step";
}

StepsResult run_steps(const Job& job, EvalContext context, const StepCallback& run_step,
                      const StepSequencerOptions& options) {
  return Sequencer(job, std::move(context), run_step, options).run();
}

}  // namespace sandci::scheduler
