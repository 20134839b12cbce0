// `sandci plan`: which workflows an event triggers, their jobs by DAG level and
// the critical path, as text, JSON or Graphviz dot; for scheduled workflows, the
// next three fire times of each cron line. Nothing runs.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/runner/run_engine.h"
#include "scheduler/cron.h"
#include "scheduler/plan.h"
#include "scheduler/workflow_calls.h"
#include "scheduler/trigger.h"
#include "scheduler/workflow_loader.h"

namespace sandci::agent {
namespace {

using scheduler::Plan;
using scheduler::Workflow;

struct PlanArgs {
  std::string path = ".";
  std::string event = "push";
  std::string ref = "refs/heads/main";
  std::string format = "text";
  std::string now;  // UTC time the next schedule times are counted from; empty: now
};

constexpr int kNextFireTimes = 3;

// One workflow file and what the event does with it.
struct WorkflowPlan {
  const Workflow* workflow = nullptr;
  scheduler::TriggerDecision decision;
  std::optional<Plan> plan;  // only for workflows that run
};

scheduler::Event make_event(const PlanArgs& args) {
  scheduler::Event event;
  event.name = args.event;
  if (args.event == "pull_request" || args.event == "pull_request_target") {
    event.base_ref = args.ref;  // the branch the pull request targets
    event.action = "opened";
  } else {
    event.ref = args.ref;
  }
  return event;  // changed paths unknown: path filters are not applied
}

// Each cron line of the workflow with its next fire times after `now`.
std::vector<std::pair<std::string, std::vector<std::string>>> next_fires(const Workflow& workflow,
                                                                         scheduler::CronSchedule::time_point now) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  if (!workflow.on.schedule) return out;
  for (const auto& entry : workflow.on.schedule->crons) {
    std::vector<std::string> times;
    auto t = now;
    for (int i = 0; i < kNextFireTimes; ++i) times.push_back(scheduler::format_utc(t = entry.schedule.next_after(t)));
    out.emplace_back(entry.cron, std::move(times));
  }
  return out;
}

std::string display_name(const Workflow& workflow) {
  return workflow.name.empty() ? std::filesystem::path(workflow.file).filename().string()
                               : workflow.name;
}

std::vector<std::string> names(const Plan& plan, const std::vector<std::size_t>& indices) {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (std::size_t i : indices) out.push_back(plan.concrete(i).name);
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

void print_text(const std::vector<WorkflowPlan>& plans, const scheduler::Event& event,
                const std::string& ref, scheduler::CronSchedule::time_point now) {
  std::cout << "event: " << event.name << " " << ref << "\n";
  for (const auto& entry : plans) {
    const Workflow& workflow = *entry.workflow;
    std::cout << "\n" << display_name(workflow) << " (" << workflow.file << "): "
              << (entry.decision.runs ? "runs" : "does not run") << " - " << entry.decision.reason
              << "\n";
    for (const auto& [cron, times] : next_fires(workflow, now))
      std::cout << "  schedule '" << cron << "': next " << join(times, ", ") << "\n";
    if (!entry.plan) continue;
    const Plan& plan = *entry.plan;
    for (std::size_t level = 0; level < plan.levels().size(); ++level)
      std::cout << "  level " << level << ": " << join(names(plan, plan.levels()[level]), ", ")
                << "\n";
    const std::size_t length = plan.critical_path().size();
    std::cout << "  critical path: " << join(names(plan, plan.critical_path()), " -> ") << " ("
              << length << (length == 1 ? " job" : " jobs") << ")\n";
    for (const auto& job : workflow.jobs)
      if (scheduler::matrix_grows_at_run_time(job)) std::cout << "  note: " << scheduler::grown_matrix_note(job) << "\n";
  }
}

nlohmann::json plan_json(const Plan& plan) {
  nlohmann::json jobs = nlohmann::json::array();
  for (std::size_t i = 0; i < plan.size(); ++i) {
    std::vector<std::size_t> needs(plan.needs(i).begin(), plan.needs(i).end());
    nlohmann::json job = {{"name", plan.concrete(i).name},
                          {"id", plan.job(i).id},
                          {"level", plan.level(i)},
                          {"needs", names(plan, needs)},
                          {"priority", plan.priority(i)}};
    if (!plan.concrete(i).matrix.is_null()) job["matrix"] = plan.concrete(i).matrix;
    if (scheduler::matrix_grows_at_run_time(plan.job(i))) job["grows"] = scheduler::grown_matrix_note(plan.job(i));
    jobs.push_back(std::move(job));
  }
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& level : plan.levels()) levels.push_back(names(plan, level));
  return {{"jobs", std::move(jobs)},
          {"levels", std::move(levels)},
          {"critical_path", names(plan, plan.critical_path())},
          {"critical_path_weight", plan.critical_path_weight()}};
}

void print_json(const std::vector<WorkflowPlan>& plans, const scheduler::Event& event,
                const std::string& ref, scheduler::CronSchedule::time_point now) {
  nlohmann::json workflows = nlohmann::json::array();
  for (const auto& entry : plans) {
    nlohmann::json item = {{"file", entry.workflow->file},
                           {"name", display_name(*entry.workflow)},
                           {"runs", entry.decision.runs},
                           {"reason", entry.decision.reason}};
    if (entry.plan) item["plan"] = plan_json(*entry.plan);
    if (entry.workflow->on.schedule) {
      item["schedules"] = nlohmann::json::array();
      for (const auto& [cron, times] : next_fires(*entry.workflow, now))
        item["schedules"].push_back({{"cron", cron}, {"next", times}});
    }
    workflows.push_back(std::move(item));
  }
  nlohmann::json out = {{"event", {{"name", event.name}, {"ref", ref}}},
                        {"workflows", std::move(workflows)}};
  std::cout << out.dump(2) << "\n";
}

// Graphviz: one cluster per workflow that runs, edges from a job to those that
// need it; the critical path in bold.
void print_dot(const std::vector<WorkflowPlan>& plans) {
  auto quoted = [](const std::string& text) { return nlohmann::json(text).dump(); };
  std::cout << "digraph sandci {\n  rankdir=LR;\n  node [shape=box];\n";
  for (std::size_t w = 0; w < plans.size(); ++w) {
    if (!plans[w].plan) continue;
    const Plan& plan = *plans[w].plan;
    auto node = [w](std::size_t i) { return "w" + std::to_string(w) + "j" + std::to_string(i); };
    std::vector<bool> critical(plan.size(), false);
    for (std::size_t i : plan.critical_path()) critical[i] = true;
    std::cout << "  subgraph cluster_" << w << " {\n    label=" << quoted(display_name(*plans[w].workflow))
              << ";\n";
    for (std::size_t i = 0; i < plan.size(); ++i)
      std::cout << "    " << node(i) << " [label=" << quoted(plan.concrete(i).name)
                << (critical[i] ? ", style=bold" : "") << "];\n";
    for (std::size_t i = 0; i < plan.size(); ++i)
      for (std::size_t need : plan.needs(i))
        std::cout << "    " << node(need) << " -> " << node(i)
                  << (critical[need] && critical[i] ? " [style=bold]" : "") << ";\n";
    std::cout << "  }\n";
  }
  std::cout << "}\n";
}

int run_plan(const PlanArgs& args) {
  auto now = args.now.empty() ? std::optional(std::chrono::system_clock::now()) : scheduler::parse_utc(args.now);
  if (!now) {
    std::cerr << "sandci plan: --now: '" << args.now << "' is not a UTC time such as 2024-05-01T10:00Z\n";
    return kExitUsage;
  }
  std::error_code ec;
  const std::filesystem::path target{args.path};
  if (!std::filesystem::exists(target, ec)) {
    std::cerr << args.path << ": error: no such file or folder\n";
    return kExitUsage;
  }
  const bool folder = std::filesystem::is_directory(target, ec);
  auto loaded = folder ? scheduler::load_workflows(target) : scheduler::load_workflow_file(target);
  for (const auto& diagnostic : loaded.diagnostics) std::cerr << diagnostic.to_string() << "\n";
  if (loaded.files.empty()) {
    std::cerr << args.path << ": error: no workflow files (*.yml, *.yaml) found\n";
    return kExitUsage;
  }
  if (!loaded.ok()) return kExitUsage;

  // Calls of reusable workflows are expanded so that the plan shows the called
  // jobs; remote ones are not fetched here and stay one job each.
  const std::filesystem::path root =
      folder ? target : (target.parent_path().filename() == "workflows" ? target.parent_path().parent_path().parent_path()
                                                                          : target.parent_path());
  scheduler::CallOptions calls;
  calls.read = workflow_reader(root, nullptr);
  calls.root = root.lexically_normal().string();
  calls.skip_remote = true;
  std::vector<scheduler::Workflow> expanded;
  bool errors = false;
  for (const auto& workflow : loaded.workflows) {
    scheduler::Diagnostics diagnostics;
    auto one = scheduler::expand_calls(workflow, calls, diagnostics);
    for (const auto& diagnostic : diagnostics) std::cerr << diagnostic.to_string() << "\n";
    if (!one) {
      errors = true;
      continue;
    }
    expanded.push_back(std::move(*one));
  }
  if (errors) return kExitUsage;

  const scheduler::Event event = make_event(args);
  std::vector<WorkflowPlan> plans;
  for (const auto& workflow : expanded) {
    WorkflowPlan entry{&workflow, scheduler::match_trigger(workflow, event), std::nullopt};
    if (entry.decision.runs) {
      auto plan = Plan::build(workflow);
      if (plan) {
        entry.plan.emplace(std::move(*plan));
      } else {
        for (const auto& diagnostic : plan.error()) std::cerr << diagnostic.to_string() << "\n";
        errors = true;
      }
    }
    plans.push_back(std::move(entry));
  }
  if (errors) return kExitUsage;

  if (args.format == "json") {
    print_json(plans, event, args.ref, *now);
  } else if (args.format == "dot") {
    print_dot(plans);
  } else {
    print_text(plans, event, args.ref, *now);
  }
  return kExitOk;
}

}  // namespace

void add_plan_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("plan", "Show which workflows an event triggers and their job DAG");
  auto args = std::make_shared<PlanArgs>();
  cmd->add_option("path", args->path, "A repository folder or one workflow file")
      ->capture_default_str();
  cmd->add_option("--event", args->event, "The event to plan for")
      ->check(CLI::IsMember({"push", "pull_request", "pull_request_target", "workflow_dispatch", "schedule"}))
      ->capture_default_str();
  cmd->add_option("--ref", args->ref,
                  "push: the pushed ref (refs/heads/X, refs/tags/X or a branch name); "
                  "pull_request(_target): the base branch")
      ->capture_default_str();
  cmd->add_option("--now", args->now,
                  "Count the next schedule times from this UTC time, e.g. 2024-05-01T10:00Z (default: now)");
  cmd->add_option("--format", args->format, "Output format")
      ->check(CLI::IsMember({"text", "json", "dot"}))
      ->capture_default_str();
  cmd->callback([&action, args] {
    action = [args] { return run_plan(*args); };
  });
}

}  // namespace sandci::agent
