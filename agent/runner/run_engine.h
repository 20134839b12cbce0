#pragma once
// One run of a repository's workflows for one event, as `sandci run` and the
// daemon's queue worker both do it: load the workflow files of a checkout, keep the
// ones the event triggers, plan each as a DAG (prepare_run), then execute every
// planned workflow with the executor over gVisor sandboxes (execute_run).
// The two phases are apart so that the daemon can post a pending status for every
// job before the first one starts. Knows nothing of terminals, HTTP or forges:
// callers watch a run through the hooks.
#include <atomic>
#include <cstddef>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/runner/action_source.h"
#include "agent/runner/command_files.h"
#include "agent/runner/job_slots.h"
#include "agent/runner/sandbox_job_runner.h"
#include "agent/runner/secret_masker.h"
#include "sandbox/sandbox.h"
#include "scheduler/executor.h"
#include "scheduler/plan.h"
#include "scheduler/workflow.h"
#include "scheduler/workflow_calls.h"

namespace sandci::agent {

// The commit a run is about and its checkout on the host.
struct RunSource {
  std::string sha = std::string(40, '0');
  std::string ref;                // refs/heads/main, refs/tags/v1, refs/pull/3/head
  std::string repository;         // owner/name
  std::filesystem::path workspace;  // mounted at /workspace
  std::vector<std::filesystem::path> object_dirs;  // the checkout's alternates, read-only
};

// The event that triggers the run, as workflows see it.
struct RunTrigger {
  std::string event = "push";  // push, pull_request, workflow_dispatch
  std::string action = "opened";  // pull_request's action
  std::string base_ref = "main";  // pull_request: the base branch
  std::string head_ref;           // pull_request: the head branch
  nlohmann::json payload = nlohmann::json::object();  // $GITHUB_EVENT_PATH
  NameValueList inputs;             // workflow_dispatch inputs
  std::string actor = "sandci";
};

// What of the triggered workflows to run (both empty: everything).
struct RunSelection {
  std::vector<std::string> jobs;  // these jobs and what they need
  NameValueList matrix;              // matrix key=value filters
};

struct PlannedWorkflow {
  std::unique_ptr<scheduler::Workflow> workflow;  // on the heap: the plan points into it
  scheduler::Plan plan;
  std::string file;  // relative to the workspace, e.g. .github/workflows/ci.yml
  std::string name;  // the workflow's name, else its file name
};

// A triggered workflow that cannot run: its file is invalid, a reusable workflow
// it calls cannot be read or fetched, its jobs cannot be planned. As on GitHub it
// fails on its own and the repository's other workflows still run.
struct BrokenWorkflow {
  std::string file;  // relative to the workspace, e.g. .github/workflows/fuzz.yml
  std::string name;  // the workflow's name when it could be read, else its file name
  // Why, ready to print (file:line:col: error: ...), paths relative to the workspace.
  std::vector<std::string> messages;
};

struct PreparedRun {
  std::vector<PlannedWorkflow> workflows;
  // Triggered workflows that cannot run (a file that cannot be read is counted as
  // triggered: its `on:` is unknown). Empty with a job selection: see prepare_run.
  std::vector<BrokenWorkflow> broken;
  // Workflows the event does not trigger, as "file: reason".
  std::vector<std::string> not_triggered;
  // What the loader noted and ignored (file:line:col: note: ...), to show people.
  std::vector<std::string> notes;
  // The selection's matrix filters, for matrices grown while the run goes on
  // (planned ones are filtered already).
  NameValueList matrix_filters;
};

struct PrepareError {
  enum class Kind { invalid, no_workflows, selection };
  Kind kind = Kind::invalid;
  // Ready to print, with paths relative to the workspace (file:line:col: ...).
  std::vector<std::string> messages;
};

// Loads and validates the workflows in `source.workspace`, keeps those `trigger`
// starts, expands their reusable-workflow calls (local files from the workspace,
// remote ones through `actions`; without one a remote call is an error), resolves
// matrices written as expressions that need no job's outputs, applies `selection`
// and plans each. A workflow that fails any of this goes to `broken` and the others
// are prepared; an error (Kind::invalid, every message) only when every triggered
// workflow is broken. With a job selection (`--job`, a re-run) broken workflows
// are left out and their messages become notes; when no workflow has the job the
// selection error carries them too. An empty `workflows` and `broken` with no
// error means nothing is triggered (see not_triggered).
std::expected<PreparedRun, PrepareError> prepare_run(const RunSource& source, const RunTrigger& trigger,
                                                     const RunSelection& selection = {},
                                                     ActionSource* actions = nullptr);

// Whether a job of the run may take a sandbox of `image` started ahead with no
// action mounts (a job's spec from job_sandbox_spec): one of the jobs
// planned_jobs_by_image counts, in any of the run's workflows.
bool plans_job_of_image(const PreparedRun& run, const std::string& image, const std::string& default_image,
                        const std::map<std::string, std::string>& labels);

// Reads the workflow file a job's `uses:` names: local ones under `root` (never
// through a symbolic link, never outside it, at most 1 MiB), remote ones from
// `actions` ("remote reusable workflows need an actions source" without one).
scheduler::WorkflowReader workflow_reader(const std::filesystem::path& root, ActionSource* actions);

// What jobs run with.
struct RunEnvironment {
  sandbox::SandboxBackend* backend = nullptr;
  ImageLookup images;
  SecretMasker* masker = nullptr;  // every secret value is added to it by the caller
  NameValueList secrets;              // the `secrets` context
  std::string default_image = "debian:12";
  std::map<std::string, std::string> labels;  // runs-on label -> image
  sandbox::ResourceLimits limits;
  std::size_t capacity = 1;      // jobs of this run at once
  JobSlots* slots = nullptr;     // shared by concurrent runs (the daemon); may be null
  std::uint64_t log_limit_bytes = 0;  // per job; 0: no limit
  JobTimingsLog* timings = nullptr;  // each job's phase timings go here; may be null
  std::size_t warm_sandboxes = 0;    // sandboxes started ahead per spec (JobRunnerConfig)
  JobSlots* warm_slots = nullptr;    // what they hold (JobRunnerConfig::warm_slots); null: nothing
  std::optional<EgressSettings> egress;  // set: the jobs' egress grant (JobRunnerConfig); unset: no network
  ActionSource* actions = nullptr;  // remote actions (`uses: owner/repo@ref`); null: such steps fail
  std::filesystem::path node_cache_dir;  // JavaScript actions' Node.js runtime; empty: /var/cache/sandci/node
  std::filesystem::path run_dir;   // event.json, scratch space, artifacts
  std::filesystem::path logs_dir;  // one <job>.log per job
  // When set, each workflow's logs go to the folder it gives instead (jobs of
  // the same name in two workflows then keep their own logs).
  std::function<std::filesystem::path(const PlannedWorkflow&)> workflow_logs_dir;
  // Set per workflow by execute_run when a run holds several: the folder name that
  // keeps its artifacts, scratch files and (without workflow_logs_dir) logs apart
  // from the others', whose jobs may have the same names.
  std::string workflow_scope;
  std::string run_id;              // GITHUB_RUN_ID
  std::string run_number = "1";
  std::string run_attempt = "1";
  std::string server_url;
  CacheStore* cache = nullptr;  // actions/cache entries, kept across runs; null: none kept
  CheckoutFunction checkout;    // actions/checkout with inputs; empty: only the fast path
};

// How a caller watches each workflow: `started` returns the observer for its
// events (may be null); `finished` gets its report.
struct WorkflowHooks {
  std::function<scheduler::RunObserver*(const PlannedWorkflow&)> started;
  std::function<void(const PlannedWorkflow&, const scheduler::RunReport&)> finished;
  // A job of the workflow holds its capacity slot and starts (the executor's
  // job_started comes earlier, when it is dispatched, before it waits for a slot).
  std::function<void(const PlannedWorkflow&, const std::string& job_name)> job_began;
};

enum class RunResult { success, failure, cancelled };

// Runs the prepared workflows side by side, as GitHub does, their jobs sharing
// `env.capacity` (and env.slots, when set); the hooks are called from each
// workflow's own thread, so they must be thread-safe. `cancel` is polled (set it
// to stop the run: sandboxes are killed in every workflow). failure when a job
// failed or `run.broken` is not empty.
RunResult execute_run(const PreparedRun& run, const RunSource& source, const RunTrigger& trigger,
                      const RunEnvironment& env, std::atomic<bool>& cancel, const WorkflowHooks& hooks = {});

// The workflow's `concurrency:` group with its expressions evaluated (github,
// inputs... as jobs see them); empty when it has none. An expression that fails
// leaves the group as written.
std::string concurrency_group(const PlannedWorkflow& workflow, const RunSource& source, const RunTrigger& trigger,
                              const RunEnvironment& env);

// Where a run's cache steps read and write, as GitHub scopes caches: a push (or
// any other event) writes its ref and reads it, then the default branch (the
// payload's repository.default_branch, else main); a pull request writes
// refs/pull/<n>/merge and reads it, then its base branch.
CacheScope cache_scope(const RunSource& source, const RunTrigger& trigger);

// Whether the workflow's `concurrency:` cancels the run in progress
// (`cancel-in-progress`, evaluated like the group); false when it cannot be evaluated.
bool concurrency_cancels(const PlannedWorkflow& workflow, const RunSource& source, const RunTrigger& trigger,
                         const RunEnvironment& env);

// "refs/heads/main" -> "main" (also tags and pull refs).
std::string short_ref_name(const std::string& ref);

}  // namespace sandci::agent
