#include "scheduler/executor.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "scheduler/expression_value.h"
#include "scheduler/value_expression.h"

namespace sandci::scheduler {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// `if: ${{ always() }}` and `if: always()` mean the same.
std::string_view strip_wrapper(std::string_view condition) {
  condition = trim(condition);
  if (condition.starts_with("${{") && condition.ends_with("}}") &&
      condition.find("${{", 3) == std::string_view::npos) {
    condition.remove_prefix(3);
    condition.remove_suffix(2);
  }
  return trim(condition);
}

bool uses_status_function(const std::string& condition) {
  if (trim(condition).empty()) return false;
  auto parsed = parse_expression(strip_wrapper(condition));
  return parsed && (*parsed)->uses_status_function();
}

// continue-on-error is "true", "false" or an expression such as
// `${{ matrix.experimental }}`.

Clock::duration minutes_to_duration(double minutes) {
  // Ten years stands for "never" and keeps time_point arithmetic from overflowing.
  constexpr double kMaxMinutes = 10.0 * 365 * 24 * 60;
  if (!(minutes > 0)) minutes = 0;
  minutes = std::min(minutes, kMaxMinutes);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(minutes * 60.0));
}

Result combined_result(bool any_failure, bool any_cancelled, bool any_success) {
  return any_failure ? Result::failure : any_cancelled ? Result::cancelled : any_success ? Result::success : Result::skipped;
}

std::string format_minutes(double minutes) {
  std::string text = nlohmann::json(minutes).dump();
  if (text.ends_with(".0")) text.resize(text.size() - 2);
  return text + (minutes == 1 ? " minute" : " minutes");
}

}  // namespace

Executor::Executor(const Plan& plan, JobRunner& runner, const Clock& clock,
                   ExecutorOptions options, RunObserver* observer)
    : plan_(plan),
      runner_(runner),
      clock_(clock),
      options_(std::move(options)),
      observer_(observer) {
  if (options_.capacity == 0) options_.capacity = 1;
}

void Executor::cancel() {
  cancel_requested_.store(true);
  runner_.wake();
}

void Executor::publish(EventKind kind, std::size_t job, std::optional<Result> result,
                       const std::string& message) {
  if (!observer_) return;
  RunEvent event;
  event.kind = kind;
  event.time = clock_.now();
  event.job = job;
  if (job != kNoIndex) event.name = concrete_job(job).name;
  event.result = result;
  event.message = message;
  observer_->on_event(event);
}

RunReport Executor::run() {
  const std::size_t n = plan_.size();
  plan_size_ = n;
  const auto& workflow_jobs = plan_.workflow().jobs;
  report_.jobs.assign(n, JobReport{});
  jobs_.assign(n, JobState{});
  deadline_of_.assign(n, Clock::time_point{});
  groups_.assign(workflow_jobs.size(), GroupState{});
  deferred_.assign(workflow_jobs.size(), {});
  merged_outputs_.assign(workflow_jobs.size(), nullptr);
  started_at_.assign(n, Clock::time_point{});
  finished_at_.assign(n, Clock::time_point{});
  group_result_.assign(workflow_jobs.size(), Result::skipped);
  failed_ancestry_.assign(workflow_jobs.size(), 0);
  info_.assign(workflow_jobs.size(), GroupInfo{});

  publish(EventKind::run_started, kNoIndex);
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const Job& job = workflow_jobs[g];
    GroupInfo& info = info_[g];
    groups_[g].unfinished = plan_.instances(g).size();
    info.timeout = minutes_to_duration(job.timeout_minutes);
    const bool matrix = job.strategy && !job.strategy->matrix.empty();
    info.fail_fast = matrix && job.strategy->fail_fast;
    if (job.strategy && job.strategy->max_parallel)
      info.max_parallel = static_cast<std::size_t>(std::max(1, *job.strategy->max_parallel));
    info.condition_empty = trim(job.if_condition).empty();
    info.uses_status_function = uses_status_function(job.if_condition);
    info.continue_on_error = job.continue_on_error == "true"                                ? 1
                             : job.continue_on_error == "false" || job.continue_on_error.empty() ? 0
                                                                                             : 2;
    info.join = job.call && job.call->expanded;
    info.resolve = !job.env_expression.empty() || !job.timeout_expression.empty() ||
                   (job.strategy && job.strategy->matrix.from_expression()) ||
                   std::any_of(job.steps.begin(), job.steps.end(), [](const Step& step) {
                     return !step.env_expression.empty() || !step.timeout_expression.empty();
                   });
  }
  prepare_scopes();
  job_of_.assign(n, nullptr);
  timeout_minutes_.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i) timeout_minutes_[i] = plan_.job(i).timeout_minutes;
  // A matrix that expanded to nothing is done before the run starts.
  for (std::size_t g = 0; g < groups_.size(); ++g)
    if (groups_[g].unfinished == 0) finish_group(g);
  for (std::size_t i = 0; i < n; ++i) {
    jobs_[i].remaining_needs = plan_.needs(i).size();
    // A need without instances has no edges: it counts as skipped from the start.
    for (std::size_t need : plan_.job_needs(plan_.job_index(i)))
      if (plan_.instances(need).empty() && info_[need].scope == info_[plan_.job_index(i)].scope)
        jobs_[i].need_unsuccessful = true;
    publish(EventKind::job_queued, i);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (jobs_[i].remaining_needs == 0) to_decide_.push_back(i);

  while (true) {
    if (!cancelled_ && cancel_requested_.load()) handle_cancel();
    // Deciding a job can finish it (skipped), which can unblock more jobs.
    while (!to_decide_.empty()) {
      std::size_t i = to_decide_.back();
      to_decide_.pop_back();
      decide(i);
    }
    start_ready();
    if (running_ == 0) break;
    auto completion = runner_.wait(nearest_deadline());
    if (completion) complete(std::move(*completion));
    check_timeouts(clock_.now());
  }

  bool any_failure = false;
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    JobReport& report = report_.jobs[i];
    report.result = jobs_[i].result;
    report.continued_on_error = jobs_[i].result == Result::failure && jobs_[i].continue_on_error;
    if (jobs_[i].started) report.started = started_at_[i];
    report.finished = finished_at_[i];
    if (report.result == Result::failure && !report.continued_on_error) any_failure = true;
  }
  report_.added.assign(added_.begin(), added_.end());
  report_.result = cancelled_ ? Result::cancelled : any_failure ? Result::failure : Result::success;
  publish(EventKind::run_finished, kNoIndex, report_.result);
  return std::move(report_);
}

bool Executor::needs_failed_ancestry(std::size_t job_index) const {
  for (std::size_t need : plan_.job_needs(job_index))
    if (failed_ancestry_[need]) return true;
  return false;
}

EvalContext Executor::job_context(std::size_t i) const {
  const ConcreteJob& concrete = concrete_job(i);
  const Job& job = workflow_job(i);  // the context is built for a runner or a condition: not hot
  EvalContext ctx = options_.context;
  auto& contexts = ctx.contexts;
  if (!contexts.is_object()) contexts = nlohmann::json::object();
  contexts["matrix"] = concrete.matrix.is_null() ? nlohmann::json::object() : concrete.matrix;
  const bool fail_fast = job.strategy ? job.strategy->fail_fast : true;
  const std::size_t max_parallel =
      job.strategy && job.strategy->max_parallel ? static_cast<std::size_t>(*job.strategy->max_parallel)
                                                 : concrete.matrix_total;
  contexts["strategy"] = {{"fail-fast", fail_fast},
                          {"job-index", concrete.matrix_index},
                          {"job-total", concrete.matrix_total},
                          {"max-parallel", max_parallel}};
  nlohmann::json needs = nlohmann::json::object();
  const std::size_t scope = info_[concrete.job_index].scope;
  for (std::size_t need : plan_.job_needs(concrete.job_index)) {
    // A called workflow's first jobs wait for what its caller needs, but see only
    // their own workflow's jobs in `needs`, by their ids there.
    if (info_[need].scope != scope) continue;
    const Job& needed = plan_.workflow().jobs[need];
    const std::string key = needed.frame ? needed.id.substr(needed.frame->scope.size() + 1) : needed.id;
    needs[key] = {{"result", to_string(group_result_[need])}, {"outputs", group_outputs(need)}};
  }
  contexts["needs"] = std::move(needs);
  if (job.frame) {
    const CallValues& values = call_values(*job.frame);
    contexts["inputs"] = values.inputs;
    contexts["secrets"] = values.secrets;
  }
  ctx.status.any_failed = needs_failed_ancestry(concrete.job_index);
  ctx.status.cancelled = cancelled_;
  return ctx;
}

// continue-on-error is "true", "false" or an expression such as
// `${{ matrix.experimental }}`.
bool Executor::continue_on_error_holds(std::size_t i) const {
  const unsigned char kind = info_[group(i)].continue_on_error;
  if (kind != 2) return kind == 1;
  auto value = interpolate(workflow_job(i).continue_on_error, job_context(i));
  return value && trim(*value) == "true";
}

std::expected<bool, std::string> Executor::condition_holds(std::size_t i) const {
  const std::size_t g = group(i);
  // Without a status function the condition implies success(), which for jobs
  // means every needed job succeeded (a skipped need counts against it too).
  if (!info_[g].uses_status_function) {
    if (cancelled_ || jobs_[i].need_unsuccessful) return false;
    if (info_[g].condition_empty) return true;
  }
  auto holds = evaluate_condition(workflow_job(i).if_condition, job_context(i));
  if (!holds) return std::unexpected("if: " + holds.error().message);
  return *holds;
}

void Executor::decide(std::size_t i) {
  if (jobs_[i].fail_fast_cancelled) {
    finish(i, Result::cancelled, "cancelled: another job of the matrix failed");
    return;
  }
  const std::size_t g = group(i);
  if (info_[g].join) {
    finish_join(i);
    return;
  }
  if (workflow_job(i).frame) {
    auto allowed = callers_allow(g);
    if (!allowed) {
      finish(i, Result::failure, std::move(allowed.error()));
      return;
    }
    if (!*allowed) {
      finish(i, cancelled_ ? Result::cancelled : Result::skipped, {});
      return;
    }
    if (const CallValues& values = call_values(*workflow_job(i).frame); !values.error.empty()) {
      finish(i, Result::failure, values.error);
      return;
    }
  }
  auto holds = condition_holds(i);
  if (!holds) {
    finish(i, Result::failure, std::move(holds.error()));
  } else if (!*holds) {
    finish(i, cancelled_ ? Result::cancelled : Result::skipped, {});
  } else if (i < plan_size_ && matrix_grows_at_run_time(workflow_job(i))) {
    grow(i);
  } else if (auto resolved = info_[g].resolve ? resolved_job(i) : std::expected<const Job*, std::string>(nullptr);
             !resolved) {
    finish(i, Result::failure, std::move(resolved.error()));
  } else {
    make_ready(i);
  }
}

void Executor::make_ready(std::size_t i) {
  jobs_[i].state = State::ready;
  ready_.push({priority_of(i), i});
}

void Executor::handle_cancel() {
  cancelled_ = true;
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    JobState& job = jobs_[i];
    if (job.state != State::running && job.state != State::ready) continue;
    // As in Actions, jobs whose `if:` still holds (always(), cancelled()) go on.
    auto holds = condition_holds(i);
    if (holds && *holds) continue;
    if (job.state == State::ready) {
      finish(i, Result::cancelled, "cancelled");
    } else if (job.stop == StopReason::none) {
      job.stop = StopReason::cancelled;
      runner_.stop(i);
    }
  }
}

void Executor::start_ready() {
  while (running_ < options_.capacity && !ready_.empty()) {
    const std::size_t i = ready_.top().index;
    ready_.pop();
    if (jobs_[i].state != State::ready) continue;  // finished meanwhile (fail-fast, cancel)
    const std::size_t g = group(i);
    if (info_[g].max_parallel != 0 && groups_[g].running >= info_[g].max_parallel) {
      deferred_[g].push_back(i);
      continue;
    }
    start(i);
  }
}

void Executor::start(std::size_t i) {
  const std::size_t g = group(i);
  JobState& state = jobs_[i];
  state.state = State::running;
  ++running_;
  ++groups_[g].running;

  JobRequest request;
  request.index = i;
  request.job = job_of_[i] ? job_of_[i] : &workflow_job(i);
  request.concrete = &concrete_job(i);
  request.make_context = [this, i] { return job_context(i); };
  request.timeout = job_of_[i] ? minutes_to_duration(timeout_minutes_[i]) : info_[g].timeout;
  request.observer = observer_;
  state.continue_on_error = continue_on_error_holds(i);

  const auto now = clock_.now();
  state.started = true;
  started_at_[i] = now;
  deadline_of_[i] = now + request.timeout;
  deadlines_.emplace(deadline_of_[i], i);
  publish(EventKind::job_started, i);
  runner_.start(std::move(request));
}

void Executor::complete(JobCompletion completion) {
  const std::size_t i = completion.index;
  if (i >= jobs_.size() || jobs_[i].state != State::running) return;  // not ours to finish
  JobState& state = jobs_[i];
  --running_;
  const std::size_t g = group(i);
  --groups_[g].running;
  if (info_[g].max_parallel != 0) {
    for (std::size_t d : deferred_[g]) ready_.push({priority_of(d), d});
    deferred_[g].clear();
  }

  Result result = completion.outcome.result;
  std::string message = std::move(completion.outcome.message);
  switch (state.stop) {
    case StopReason::timeout:
      result = Result::failure;
      message = "timed out after " + format_minutes(timeout_minutes_[i]);
      break;
    case StopReason::cancelled:
      result = Result::cancelled;
      message = "cancelled";
      break;
    case StopReason::fail_fast:
      result = Result::cancelled;
      message = "cancelled: another job of the matrix failed";
      break;
    case StopReason::none:
      break;
  }
  if (completion.outcome.outputs.is_object() && !completion.outcome.outputs.empty())
    report_.jobs[i].outputs = std::move(completion.outcome.outputs);
  finish(i, result, std::move(message));
  if (result == Result::failure && !state.continue_on_error) fail_fast(i);
}

void Executor::fail_fast(std::size_t failed) {
  const std::size_t g = group(failed);
  if (!info_[g].fail_fast) return;
  for (std::size_t sibling : instances_of(g)) {
    JobState& state = jobs_[sibling];
    switch (state.state) {
      case State::waiting:
        state.fail_fast_cancelled = true;  // finished once its needs are done
        break;
      case State::ready:
        finish(sibling, Result::cancelled, "cancelled: another job of the matrix failed");
        break;
      case State::running:
        if (state.stop == StopReason::none) {
          state.stop = StopReason::fail_fast;
          runner_.stop(sibling);
        }
        break;
      case State::grown:  // a placeholder is no instance of its own matrix
      case State::finished:
        break;
    }
  }
}

void Executor::finish(std::size_t i, Result result, std::string message) {
  JobState& state = jobs_[i];
  state.state = State::finished;
  state.result = result;
  finished_at_[i] = clock_.now();
  publish(EventKind::job_finished, i, result, message);
  if (!message.empty()) report_.jobs[i].message = std::move(message);

  const std::size_t g = group(i);
  GroupState& counts = groups_[g];
  const bool continued = result == Result::failure && state.continue_on_error;
  const Result seen = continued ? Result::success : result;
  counts.any_failure |= seen == Result::failure;
  counts.any_cancelled |= seen == Result::cancelled;
  counts.any_success |= seen == Result::success;
  const bool group_done = --counts.unfinished == 0;
  if (group_done) finish_group(g);
  // The last instance of a grown matrix finishes its placeholder, which reaches the dependents.
  if (counts.unfinished == 1 && i >= plan_size_) {
    const std::size_t placeholder = plan_.instances(g).front();
    if (jobs_[placeholder].state == State::grown) {
      const Result combined = combined_result(counts.any_failure, counts.any_cancelled, counts.any_success);
      std::size_t failed = 0;
      for (std::size_t k : grown_[g]) failed += jobs_[k].result == Result::failure && !jobs_[k].continue_on_error;
      finish(placeholder, combined,
             failed == 0 ? std::string()
                         : std::to_string(failed) + " of " + std::to_string(grown_[g].size()) +
                               " jobs of the matrix failed");
    }
  }
  // Every instance of a job has the same dependents, so the last one to finish
  // reaches them all.
  const bool unsuccessful = group_done && group_result_[g] != Result::success;
  const bool failed = group_done && failed_ancestry_[g];
  for (std::size_t d : dependents_of(i)) {
    JobState& dependent = jobs_[d];
    // Across a call's edge (a called workflow's first jobs after the caller's
    // needs) the caller's `if:` decides, not the called jobs' implied success().
    dependent.need_unsuccessful |= unsuccessful && info_[g].scope == info_[group(d)].scope;
    dependent.failed_ancestry |= failed;
    if (--dependent.remaining_needs == 0) to_decide_.push_back(d);
  }
}

void Executor::finish_group(std::size_t g) {
  GroupState& group = groups_[g];
  group_result_[g] = combined_result(group.any_failure, group.any_cancelled, group.any_success);
  const auto instances = instances_of(g);
  failed_ancestry_[g] = group.any_failure || (instances.empty() ? needs_failed_ancestry(g)
                                                                : jobs_[instances.front()].failed_ancestry);
  // Instances' outputs merge in matrix order; the last instance to set a key wins.
  if (instances_of(g).size() > 1) {
    auto& merged = merged_outputs_[g];
    merged = nlohmann::json::object();
    for (std::size_t i : instances_of(g))
      if (report_.jobs[i].outputs.is_object())
        for (const auto& [key, value] : report_.jobs[i].outputs.items()) merged[key] = value;
  }
}

const nlohmann::json& Executor::group_outputs(std::size_t g) const {
  static const nlohmann::json kNoOutputs = nlohmann::json::object();
  auto instances = instances_of(g);
  const nlohmann::json& outputs = instances.size() > 1 ? merged_outputs_[g]
                                  : instances.empty()    ? kNoOutputs
                                                         : report_.jobs[instances.front()].outputs;
  return outputs.is_object() ? outputs : kNoOutputs;
}

std::optional<Clock::time_point> Executor::nearest_deadline() {
  while (!deadlines_.empty()) {
    const auto [when, i] = deadlines_.top();
    if (jobs_[i].state == State::running && jobs_[i].stop == StopReason::none &&
        deadline_of_[i] == when)
      return when;
    deadlines_.pop();
  }
  return std::nullopt;
}

void Executor::check_timeouts(Clock::time_point now) {
  while (auto deadline = nearest_deadline()) {
    if (*deadline > now) return;
    const std::size_t i = deadlines_.top().second;
    deadlines_.pop();
    jobs_[i].stop = StopReason::timeout;
    runner_.stop(i);
  }
}

// ---- reusable workflows and run-time expressions ---------------------------------

void Executor::prepare_scopes() {
  const auto& jobs = plan_.workflow().jobs;
  const bool calls = std::any_of(jobs.begin(), jobs.end(), [](const Job& job) { return job.frame || job.call; });
  if (!calls) return;
  std::map<std::string, std::size_t> scopes;
  for (std::size_t g = 0; g < jobs.size(); ++g) {
    group_by_id_.emplace(jobs[g].id, g);
    if (jobs[g].frame) info_[g].scope = scopes.emplace(jobs[g].frame->scope, scopes.size() + 1).first->second;
  }
}

std::size_t Executor::group_of(const std::string& id) const {
  auto it = group_by_id_.find(id);
  return it == group_by_id_.end() ? kNoIndex : it->second;
}

EvalContext Executor::caller_context(const CallFrame& frame) const {
  EvalContext ctx = options_.context;
  auto& contexts = ctx.contexts;
  if (!contexts.is_object()) contexts = nlohmann::json::object();
  contexts["matrix"] = frame.matrix.is_null() ? nlohmann::json::object() : frame.matrix;
  ctx.status.cancelled = cancelled_;
  const std::size_t c = group_of(frame.caller);
  if (c == kNoIndex) return ctx;
  const Job& caller = plan_.workflow().jobs[c];
  if (caller.frame) {
    const CallValues& values = call_values(*caller.frame);
    contexts["inputs"] = values.inputs;
    contexts["secrets"] = values.secrets;
  }
  nlohmann::json needs = nlohmann::json::object();
  for (const std::string& id : caller.call->caller_needs) {
    const std::size_t need = group_of(id);
    if (need == kNoIndex) continue;
    const std::string key = caller.frame ? id.substr(caller.frame->scope.size() + 1) : id;
    needs[key] = {{"result", to_string(group_result_[need])}, {"outputs", group_outputs(need)}};
    ctx.status.any_failed = ctx.status.any_failed || failed_ancestry_[need];
  }
  contexts["needs"] = std::move(needs);
  return ctx;
}

namespace {

// A `with:` value, as text once interpolated, read as its declared type.
std::expected<nlohmann::json, std::string> typed_input(const WorkflowCallInput& input, const std::string& text) {
  if (input.type == "boolean") {
    if (text == "true") return true;
    if (text == "false") return false;
    return std::unexpected("input '" + input.name + "' is a boolean, not '" + text + "'");
  }
  if (input.type == "number") {
    const double number = expr::parse_number(text);
    if (std::isnan(number)) return std::unexpected("input '" + input.name + "' is a number, not '" + text + "'");
    return expr::make_number(number);
  }
  return text;
}

nlohmann::json unset_input(const WorkflowCallInput& input) {
  if (input.type == "boolean") return false;
  if (input.type == "number") return 0;
  return "";
}

}  // namespace

const Executor::CallValues& Executor::call_values(const CallFrame& frame) const {
  auto [it, inserted] = call_values_.try_emplace(&frame);
  CallValues& values = it->second;
  if (!inserted) return values;
  values.inputs = nlohmann::json::object();
  values.secrets = nlohmann::json::object();
  const std::size_t c = group_of(frame.caller);
  if (c == kNoIndex) {
    values.error = "the job calling " + frame.file + " ('" + frame.caller + "') is not part of this run";
    return values;
  }
  const WorkflowCall& call = *plan_.workflow().jobs[c].call;
  const EvalContext ctx = caller_context(frame);
  auto fail = [&](std::string message) {
    if (values.error.empty()) values.error = "calling " + frame.file + ": " + std::move(message);
  };
  for (const auto& input : frame.declared.inputs) {
    auto given = std::find_if(call.with.begin(), call.with.end(), [&](const auto& e) { return e.first == input.name; });
    if (given == call.with.end()) {
      if (!input.default_value) {
        values.inputs[input.name] = unset_input(input);
      } else if (input.default_value->is_string()) {
        auto text = interpolate(input.default_value->get<std::string>(), ctx);
        if (!text) fail("default of input '" + input.name + "': " + text.error().message);
        auto typed = text ? typed_input(input, *text) : nlohmann::json(nullptr);
        if (!typed) fail(typed.error());
        values.inputs[input.name] = typed ? *typed : nlohmann::json(nullptr);
      } else {
        values.inputs[input.name] = *input.default_value;
      }
      continue;
    }
    auto text = interpolate(given->second, ctx);
    if (!text) {
      fail("with." + input.name + ": " + text.error().message);
      continue;
    }
    auto typed = typed_input(input, *text);
    if (!typed) fail(typed.error());
    values.inputs[input.name] = typed ? *typed : nlohmann::json(*text);
  }
  if (call.inherit_secrets) {
    if (const auto* secrets = ctx.contexts.contains("secrets") ? &ctx.contexts["secrets"] : nullptr)
      values.secrets = *secrets;
  } else {
    for (const auto& [name, text] : call.secrets) {
      auto value = interpolate(text, ctx);
      if (!value) fail("secrets." + name + ": " + value.error().message);
      values.secrets[name] = value ? *value : "";
    }
  }
  return values;
}

std::expected<bool, std::string> Executor::callers_allow(std::size_t g) const {
  const Job& job = plan_.workflow().jobs[g];
  if (!job.frame) return true;
  const std::size_t c = group_of(job.frame->caller);
  if (c == kNoIndex) return true;
  const Job& caller = plan_.workflow().jobs[c];
  if (!info_[c].uses_status_function) {
    // The caller's implied success(): every job it needs succeeded.
    if (cancelled_) return false;
    for (const std::string& id : caller.call->caller_needs)
      if (const std::size_t need = group_of(id); need != kNoIndex && group_result_[need] != Result::success)
        return false;
  }
  if (!info_[c].condition_empty || info_[c].uses_status_function) {
    auto holds = evaluate_condition(caller.if_condition, caller_context(*job.frame));
    if (!holds) return std::unexpected("if of calling job '" + caller.id + "': " + holds.error().message);
    if (!*holds) return false;
  }
  return callers_allow(c);
}

void Executor::finish_join(std::size_t i) {
  const std::size_t g = group(i);
  const Job& join = workflow_job(i);
  bool failure = false, cancelled = false, success = false;
  for (std::size_t child : plan_.job_needs(g)) {
    failure |= group_result_[child] == Result::failure;
    cancelled |= group_result_[child] == Result::cancelled;
    success |= group_result_[child] == Result::success;
  }
  Result result = failure ? Result::failure : cancelled ? Result::cancelled : success ? Result::success : Result::skipped;
  std::string message = failure ? "a job of the called workflow failed" : "";
  if (result != Result::skipped) {
    jobs_[i].started = true;
    started_at_[i] = clock_.now();
    publish(EventKind::job_started, i);
  }
  nlohmann::json outputs = nlohmann::json::object();
  if (result != Result::skipped && !join.outputs.empty()) {
    // One evaluation per copy of the called workflow (a caller matrix); the last one wins.
    for (const std::string& scope : join.call->scopes) {
      EvalContext ctx = options_.context;
      if (!ctx.contexts.is_object()) ctx.contexts = nlohmann::json::object();
      nlohmann::json jobs = nlohmann::json::object();
      for (std::size_t child : plan_.job_needs(g)) {
        const Job& called = plan_.workflow().jobs[child];
        if (!called.frame || called.frame->scope != scope) continue;
        jobs[called.id.substr(scope.size() + 1)] = {{"result", to_string(group_result_[child])},
                                                    {"outputs", group_outputs(child)}};
        ctx.contexts["inputs"] = call_values(*called.frame).inputs;
      }
      ctx.contexts["jobs"] = std::move(jobs);
      for (const auto& [name, value] : join.outputs) {
        auto text = interpolate(value, ctx);
        if (text) {
          outputs[name] = *text;
        } else if (result == Result::success) {
          result = Result::failure;
          message = "output '" + name + "' of the called workflow: " + text.error().message;
        }
      }
    }
  }
  if (!outputs.empty()) report_.jobs[i].outputs = std::move(outputs);
  finish(i, result, std::move(message));
}

std::expected<const Job*, std::string> Executor::resolved_job(std::size_t i) {
  const Job& job = workflow_job(i);
  const EvalContext ctx = job_context(i);
  Job copy = job;
  if (!job.env_expression.empty()) {
    auto env = evaluate_env(job.env_expression, ctx);
    if (!env) return std::unexpected("env: " + env.error());
    copy.env = std::move(*env);
    copy.env_expression.clear();
  }
  if (!job.timeout_expression.empty()) {
    auto minutes = evaluate_minutes(job.timeout_expression, ctx);
    if (!minutes) return std::unexpected("timeout-minutes: " + minutes.error());
    copy.timeout_minutes = *minutes;
    copy.timeout_expression.clear();
  }
  // Steps' whole-value expressions see what is known when the job starts (not
  // steps.* or env: those exist only while it runs).
  for (std::size_t k = 0; k < copy.steps.size(); ++k) {
    Step& step = copy.steps[k];
    const std::string what = "step " + std::to_string(k + 1) + " ";
    if (!step.env_expression.empty()) {
      auto env = evaluate_env(step.env_expression, ctx);
      if (!env) return std::unexpected(what + "env: " + env.error() + " (evaluated when the job starts)");
      step.env = std::move(*env);
      step.env_expression.clear();
    }
    if (!step.timeout_expression.empty()) {
      auto minutes = evaluate_minutes(step.timeout_expression, ctx);
      if (!minutes) return std::unexpected(what + "timeout-minutes: " + minutes.error());
      step.timeout_minutes = *minutes;
      step.timeout_expression.clear();
    }
  }
  timeout_minutes_[i] = copy.timeout_minutes;
  resolved_jobs_.push_back(std::move(copy));
  job_of_[i] = &resolved_jobs_.back();
  return job_of_[i];
}

// ---- matrices grown at run time ----------------------------------------------------

double Executor::priority_of(std::size_t i) const {
  return plan_.priority(i < plan_size_ ? i : plan_.instances(group(i)).front());
}

std::span<const std::size_t> Executor::instances_of(std::size_t g) const {
  if (!grown_.empty())
    if (auto it = grown_.find(g); it != grown_.end()) return it->second;
  return plan_.instances(g);
}

void Executor::grow(std::size_t placeholder) {
  const std::size_t g = group(placeholder);
  auto instances = grow_matrix(workflow_job(placeholder), g, job_context(placeholder), options_.matrix);
  if (!instances) {
    finish(placeholder, Result::failure, std::move(instances.error()));
    return;
  }
  if (auto filtered = filter_grown(placeholder, *instances); !filtered) {
    finish(placeholder, Result::failure, std::move(filtered.error()));
    return;
  }
  JobState& state = jobs_[placeholder];
  state.state = State::grown;
  state.started = true;
  started_at_[placeholder] = clock_.now();
  report_.jobs[placeholder].grown = true;
  publish(EventKind::job_started, placeholder);
  const JobState like = state;  // jobs_ grows below
  auto& added = grown_[g];
  for (ConcreteJob& concrete : *instances) {
    const std::size_t i = add_job(std::move(concrete), like);
    added.push_back(i);
    ++groups_[g].unfinished;
    if (observer_) {
      RunEvent event;
      event.kind = EventKind::job_added;
      event.time = clock_.now();
      event.job = i;
      event.name = added_.back().name;
      event.parent = placeholder;
      observer_->on_event(event);
    }
    publish(EventKind::job_queued, i);
  }
  // Decided in matrix order (to_decide_ is a stack); the ready queue starts them in index order anyway.
  for (auto it = added.rbegin(); it != added.rend(); ++it) to_decide_.push_back(*it);
}

std::expected<void, std::string> Executor::filter_grown(std::size_t placeholder,
                                                       std::vector<ConcreteJob>& instances) {
  if (options_.matrix_filters.empty()) return {};
  const std::size_t before = instances.size();
  std::string filters;
  for (const auto& [key, value] : options_.matrix_filters) {
    filters += (filters.empty() ? "" : " ") + key + "=" + value;
    std::erase_if(instances, [&](const ConcreteJob& job) {
      return job.matrix.is_object() && job.matrix.contains(key) && matrix_value_display(job.matrix[key]) != value;
    });
  }
  if (instances.empty())
    return std::unexpected("matrix filter " + filters + " matches none of the " + std::to_string(before) +
                           " combinations of job '" + workflow_job(placeholder).id + "'");
  if (instances.size() == before) return {};
  // strategy.job-index and job-total count what runs, as for a matrix filtered before the run.
  for (std::size_t k = 0; k < instances.size(); ++k) {
    instances[k].matrix_index = k;
    instances[k].matrix_total = instances.size();
  }
  if (observer_) {
    RunEvent event;
    event.kind = EventKind::log_line;
    event.time = clock_.now();
    event.job = placeholder;
    event.name = concrete_job(placeholder).name;
    event.message = "matrix filter " + filters + ": " + std::to_string(instances.size()) + " of " +
                    std::to_string(before) + " combinations run, " + std::to_string(before - instances.size()) +
                    " left out";
    observer_->on_event(event);
  }
  return {};
}

std::size_t Executor::add_job(ConcreteJob concrete, const JobState& like) {
  const std::size_t i = jobs_.size();
  added_.push_back(std::move(concrete));
  JobState state;
  state.need_unsuccessful = like.need_unsuccessful;
  state.failed_ancestry = like.failed_ancestry;
  jobs_.push_back(state);
  report_.jobs.emplace_back();
  deadline_of_.emplace_back();
  started_at_.emplace_back();
  finished_at_.emplace_back();
  job_of_.push_back(nullptr);
  timeout_minutes_.push_back(workflow_job(i).timeout_minutes);
  return i;
}

}  // namespace sandci::scheduler
