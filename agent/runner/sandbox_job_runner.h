#pragma once
// The glue between the executor and the sandboxes: a scheduler::JobRunner that
// runs each job in its own sandbox (image from `container:` or `runs-on:`, the
// checkout at /workspace), its steps exec'd one after the other as GitHub's
// runner does them: shell scripts written into the sandbox, the file commands
// ($GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH, $GITHUB_STEP_SUMMARY) read back
// after each step, workflow commands (::add-mask:: ...) honoured, every line
// masked before anyone sees it, the built-in actions (checkout,
// upload-artifact, download-artifact, cache) done natively, and other actions
// (local or from the ActionSource: composite and JavaScript) run inside the
// sandbox (see action_runner.h).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/runner/action_node_runtime.h"
#include "agent/runner/action_source.h"
#include "agent/runner/artifacts.h"
#include "agent/runner/cache_store.h"
#include "agent/runner/checkout_action.h"
#include "agent/runner/job_egress.h"
#include "agent/runner/job_timings.h"
#include "agent/runner/job_slots.h"
#include "agent/runner/secret_masker.h"
#include "sandbox/image_store.h"
#include "sandbox/sandbox.h"
#include "sandbox/warm_pool.h"
#include "scheduler/job_runner.h"
#include "scheduler/plan.h"

namespace sandci::agent {

struct JobRunnerConfig {
  const scheduler::Workflow* workflow = nullptr;  // env and defaults.run of the workflow
  std::filesystem::path workspace;  // the checkout on the host, mounted at /workspace
  // Extra read-only mounts at the same path inside (the checkout's alternates).
  std::vector<std::filesystem::path> readonly_mounts;
  std::string default_image = "debian:12";
  std::map<std::string, std::string> runs_on_images;  // runs-on label -> image
  sandbox::ResourceLimits limits;
  // Environment every step sees (GITHUB_SHA, GITHUB_REF, ... CI=true).
  std::vector<std::pair<std::string, std::string>> base_env;
  std::string event_payload = "{}";  // written to $GITHUB_EVENT_PATH
  std::filesystem::path logs_dir;     // one <job>.log per job; step summaries beside them
  std::filesystem::path scratch_dir;  // host temp space for artifact copies
  // Where the run's one event.json is written (empty: scratch_dir). Shared by the
  // workflows of a run, so a sandbox started before planning fits any of them.
  std::filesystem::path event_dir;
  // The agent's capacity across runs: a job holds a slot while its sandbox
  // exists. Null: no limit beyond the executor's own.
  JobSlots* slots = nullptr;
  // Called (from the job's thread) with the job's display name once it holds its
  // slot, i.e. when it really starts; a job stopped while it waits never calls it.
  std::function<void(const std::string&)> job_began;
  // A job's log stops growing past this many bytes (one line says so); 0: no limit.
  std::uint64_t log_limit_bytes = 0;
  // Where each job's phase timings go when it ends (`sandci run --timings`); may be null.
  JobTimingsLog* timings = nullptr;
  // Sandboxes kept started ahead per sandbox spec (sandbox/warm_pool.h); 0: none.
  std::size_t warm_sandboxes = 0;
  // Set (the daemon's capacity): each sandbox started ahead holds one of these
  // slots until a job takes it (the job holds its own) or it is destroyed, is
  // started only when one is free and no job waits, and is destroyed when a
  // job has waited for a slot a moment (JobSlots::try_acquire). Null: warm
  // sandboxes hold no slot (`sandci run`: they come beside its capacity).
  JobSlots* warm_slots = nullptr;
  // The workflow's plan, when known: when its first job of an image asks for a
  // sandbox, the warm pool is told how many of the plan's jobs run in that image
  // (without action mounts), so that it starts sandboxes for the next ones at
  // once and none that no job will take. Null: the pool learns as jobs come.
  const scheduler::Plan* plan = nullptr;
  // Where `uses: owner/repo[/path]@ref` actions come from. Null: a step using a
  // remote action fails, saying that remote actions need an actions source.
  ActionSource* actions = nullptr;
  // Where the Node.js runtime of JavaScript actions is built from the host's node
  // (empty: /var/cache/sandci/node; <scratch_dir>/node when that cannot be written).
  std::filesystem::path node_cache_dir;
  // actions/cache: the agent's store (null: cache steps miss, with a warning) and
  // the scopes this run reads and writes.
  CacheStore* cache = nullptr;
  CacheScope cache_scope;
  // actions/checkout with inputs (path, ref, repository...); see checkout_action.h.
  CheckoutSource checkout;
  // Set: every job gets its own network namespaces and an egress proxy with
  // this grant (job_egress.h), the runsc backend only. Unset: no network at all.
  std::optional<EgressSettings> egress;
};

// Resolves an image name to its root filesystem and config (the image store).
using ImageLookup =
    std::function<std::expected<sandbox::ImageInfo, sandbox::ImageError>(std::string_view)>;

class SandboxJobRunner final : public scheduler::JobRunner {
 public:
  SandboxJobRunner(JobRunnerConfig config, sandbox::SandboxBackend& backend, ImageLookup images,
                   ArtifactStore& artifacts, SecretMasker& masker);
  ~SandboxJobRunner() override;  // stops and joins every job thread

  void start(scheduler::JobRequest request) override;
  void stop(std::size_t index) override;
  std::optional<scheduler::JobCompletion> wait(
      std::optional<scheduler::Clock::time_point> deadline) override;
  void wake() override;

  // Path of a job's log file (masked lines with timestamps).
  std::filesystem::path log_path(std::string_view job_name) const;

 private:
  struct Running;
  class JobExecution;

  void run_job(std::shared_ptr<Running> running, scheduler::JobRequest request,
               scheduler::EvalContext context);
  void complete(std::size_t index, scheduler::JobOutcome outcome);
  // The host file holding the event payload (written on first use), mounted
  // read-only into every sandbox at $GITHUB_EVENT_PATH.
  std::expected<std::filesystem::path, std::string> event_file();
  // The first time a spec without action mounts is asked for: tells the warm
  // pool how many planned jobs run in `image` (see JobRunnerConfig::plan).
  void expect_jobs_of(const sandbox::SandboxSpec& spec, const std::string& image);
  // Planned jobs per image, for jobs whose image is known before they start and
  // that use no action beyond the built-in ones.
  std::map<std::string, std::size_t> planned_jobs_by_image() const;

  JobRunnerConfig config_;
  sandbox::SandboxBackend& backend_;
  std::unique_ptr<sandbox::WarmPool> warm_;  // over backend_; jobs create through it
  std::optional<std::uint64_t> reclaimer_;   // on config_.warm_slots, for warm_
  ImageLookup images_;
  ArtifactStore& artifacts_;
  SecretMasker& masker_;
  NodeRuntimeCache node_runtime_;  // shared by the jobs: built once

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<scheduler::JobCompletion> completions_;
  bool woken_ = false;
  std::map<std::size_t, std::shared_ptr<Running>> running_;
  std::vector<std::thread> threads_;
  std::mutex event_mutex_;
  std::filesystem::path event_file_;
  std::mutex expect_mutex_;
  std::map<std::string, std::size_t> planned_by_image_;  // from planned_jobs_by_image()
  std::set<std::string> expected_specs_;                  // spec_keys already told to the pool
};

// A file-system-safe name for a job's log: "build (linux, 20)" -> "build_linux_20".
std::string log_file_stem(std::string_view job_name);

// The sandbox spec of a job in `image` with no egress, before its action
// mounts and name: the checkout at /workspace, `readonly_mounts` at their own
// paths, the runner's tmpfs folders, the event payload file, the limits;
// `extra_env` after the image's. Every job's spec starts from it, so a sandbox
// started ahead with it matches the job's (sandbox::spec_key). Errors: the
// image's user cannot be resolved.
std::expected<sandbox::SandboxSpec, std::string> job_sandbox_spec(
    const sandbox::ImageInfo& image, const std::filesystem::path& workspace,
    const std::vector<std::filesystem::path>& readonly_mounts, const std::filesystem::path& event_file,
    const sandbox::ResourceLimits& limits, const std::vector<std::string>& extra_env = {});

// Writes the run's event payload to <scratch_dir>/event.json (aside, then
// renamed: never half written) and returns its path; the file jobs mount.
std::expected<std::filesystem::path, std::string> write_event_file(const std::filesystem::path& scratch_dir,
                                                                   const std::string& payload);

// How many of the plan's jobs run in each image, for jobs whose image is known
// before they start (from the matrix at most) and that use no action beyond
// the built-in ones (whose spec is job_sandbox_spec's).
std::map<std::string, std::size_t> planned_jobs_by_image(const scheduler::Plan& plan, const std::string& default_image,
                                                         const std::map<std::string, std::string>& runs_on_images);

// How a warm pool's sandboxes hold `slots` (try_acquire, release); none when null.
sandbox::AheadSlots ahead_slots(JobSlots* slots);

}  // namespace sandci::agent
