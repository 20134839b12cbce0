#include "agent/runner/sandbox_job_runner.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include "agent/runner/action_runner.h"
#include "agent/runner/cache_action.h"
#include "agent/runner/command_files.h"
#include "agent/runner/hex.h"
#include "agent/runner/job_image.h"
#include "agent/runner/step_shell.h"
#include "scheduler/step_sequencer.h"
#include "scheduler/uses_ref.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using scheduler::Result;

namespace {

// Where the runner keeps its files inside a sandbox (the private /tmp).
constexpr const char* kRunnerDir = "/tmp/sandci";
constexpr const char* kRunnerTemp = "/tmp/runner";
// $RUNNER_WORKSPACE and $RUNNER_TOOL_CACHE: GitHub's paths, each an empty
// writable folder of the sandbox's own (its memory), so out-of-tree builds
// (`cmake -B ${{ runner.workspace }}/build`) and setup-* actions find them. The
// checkout stays at /workspace, which is not beneath RUNNER_WORKSPACE here.
constexpr const char* kRunnerWorkspace = "/home/runner/work";
constexpr const char* kRunnerToolCache = "/opt/hostedtoolcache";
constexpr std::size_t kMaxCommandFileBytes = 4 << 20;
constexpr const char* kEventPath = "/tmp/sandci/event.json";

// Runs one `run:` step in a single `runsc exec` (each exec costs about as much
// as a trivial step, and each program started inside costs a good part of one):
// it writes the script (with a builtin when it came as an argument), creates
// the file commands, runs the step with stdin from /dev/null, then hands the
// non-empty file commands back on descriptors 3-6 (at most $2 bytes each; an
// action's $GITHUB_STATE on 7) and exits with the step's status. The step itself
// never sees descriptors 3-7. Arguments: script path, byte limit, how the shell
// is chosen ("default": bash if the image has it, else sh; "given"; "custom": the
// script must be executable), "state" or "-" ($GITHUB_STATE too or not), "arg"
// with the script or "stdin" with "", then the shell's command.
constexpr const char* kStepWrapper = R"(s=$1 n=$2 d=$3 x=$4 w=$5; shift 5
if [ "$w" = arg ]; then printf '%s' "$1" > "$s"; else cat > "$s"; fi &&
: > "$GITHUB_OUTPUT" && : > "$GITHUB_ENV" && : > "$GITHUB_PATH" && : > "$GITHUB_STEP_SUMMARY" &&
{ [ "$x" != state ] || : > "$GITHUB_STATE"; } ||
{ echo "sandci: cannot write the step's files in ${s%/*}" >&2; exit 125; }
shift
if [ "$d" = custom ]; then chmod 755 "$s"; fi
if [ "$d" = default ]; then
  if command -v bash >/dev/null 2>&1; then set -- bash -e "$s"; else set -- sh -e "$s"; fi
fi
"$@" </dev/null 3>&- 4>&- 5>&- 6>&- 7>&-
r=$?
k() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then if [ -s "$1" ]; then head -c "$n" -- "$1"; fi
  elif [ -e "$1" ] || [ -L "$1" ]; then echo "sandci: $1 is not a regular file; ignored" >&2; fi
}
k "$GITHUB_OUTPUT" >&3; k "$GITHUB_ENV" >&4; k "$GITHUB_PATH" >&5; k "$GITHUB_STEP_SUMMARY" >&6
if [ "$x" = state ]; then k "$GITHUB_STATE" >&7; fi
exit $r)";

// The same as kStepWrapper for a script of the shell that runs the wrapper
// itself (bash or sh): the exec starts that shell once and the script runs in a
// subshell of it, a fork, not a second program (starting a program inside gVisor
// is the costly part of an exec). The subshell keeps what a script run as
// `bash -e script` sees: $0 is the script's path, no positional parameters, none
// of the wrapper's variables, stdin from /dev/null, descriptors 3-7 closed; its
// own `trap ... EXIT` runs when it ends and cannot touch the hand-back. In bash
// the file commands go back through the `read` builtin, so even a step that
// writes them starts no other program (sh still uses `head`). $0 is the
// script path; arguments: byte limit, "state" or "-", "arg" with the script or
// "stdin" with "", then "pipefail" or "-" (bash's `-o pipefail`).
constexpr const char* kInlineStepWrapper = R"(n=$1 x=$2 w=$3 p=$5
if [ "$w" = arg ]; then printf '%s' "$4" > "$0"; else cat > "$0"; fi &&
: > "$GITHUB_OUTPUT" && : > "$GITHUB_ENV" && : > "$GITHUB_PATH" && : > "$GITHUB_STEP_SUMMARY" &&
{ [ "$x" != state ] || : > "$GITHUB_STATE"; } ||
{ echo "sandci: cannot write the step's files in ${0%/*}" >&2; exit 125; }
(
  if [ "$p" = pipefail ]; then set -o pipefail; fi
  unset n x w p; set -e --
  exec </dev/null 3>&- 4>&- 5>&- 6>&- 7>&-
  . "$0"
)
r=$?
c() { head -c "$n" -- "$1"; }
if [ -n "$BASH_VERSION" ]; then c() { IFS= read -r -N "$n" t < "$1"; printf '%s' "$t"; }; fi
k() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then if [ -s "$1" ]; then c "$1"; fi
  elif [ -e "$1" ] || [ -L "$1" ]; then echo "sandci: $1 is not a regular file; ignored" >&2; fi
}
k "$GITHUB_OUTPUT" >&3; k "$GITHUB_ENV" >&4; k "$GITHUB_PATH" >&5; k "$GITHUB_STEP_SUMMARY" >&6
if [ "$x" = state ]; then k "$GITHUB_STATE" >&7; fi
exit $r)";

// The prefix of a step's files; all sit in kRunnerDir, which exists from the
// start, so a step needs no mkdir.
std::string step_files(std::size_t index) {
  return std::string(kRunnerDir) + "/step-" + std::to_string(index);
}
// A script up to this size rides in the exec's arguments and is written by the
// shell's builtin printf; a longer one (or one holding a NUL) comes on stdin.
constexpr std::size_t kScriptInArgument = 32 * 1024;

std::string timestamp(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03lld", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(ms));
  return buf;
}

std::string lookup_with(const scheduler::StringMap& with, std::string_view key,
                        std::string fallback = {}) {
  for (const auto& [k, v] : with)
    if (k == key) return v;
  return fallback;
}

bool is_true(std::string_view value) { return value == "true" || value == "True" || value == "1"; }

void set_env(std::vector<std::pair<std::string, std::string>>& env, const std::string& key,
             std::string value) {
  for (auto& [k, v] : env)
    if (k == key) return void(v = std::move(value));
  env.emplace_back(key, std::move(value));
}

// "uses: actions/checkout@v4" -> "actions/checkout".
std::string action_name(std::string_view uses) {
  auto at = uses.find('@');
  std::string name(uses.substr(0, at));
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// The actions the runner does natively, by action_name().
bool is_builtin_action(std::string_view name) {
  return name == "actions/checkout" || name == "actions/upload-artifact" || name == "actions/download-artifact" ||
         is_cache_action(name);
}

std::string describe_exit(const sandbox::ExitStatus& status) {
  switch (status.kind) {
    case sandbox::ExitKind::kExited: return "exit code " + std::to_string(status.code);
    case sandbox::ExitKind::kSignaled: return "killed by signal " + std::to_string(status.signal);
    case sandbox::ExitKind::kTimedOut: return "timed out";
    case sandbox::ExitKind::kOutOfMemory: return "out of memory: the job hit its memory limit";
    case sandbox::ExitKind::kPidsLimit: return "process limit reached";
    case sandbox::ExitKind::kKilled: return "cancelled";
    case sandbox::ExitKind::kFailed: return "sandbox failed: " + status.detail;
  }
  return "failed";
}

// hashFiles(): SHA-256 over the SHA-256 of each matching file, in path order, as
// GitHub's runner computes it; "" when nothing matches.
std::expected<std::string, std::string> hash_workspace_files(const fs::path& workspace,
                                                             const std::vector<std::string>& patterns) {
  std::string joined;
  for (const auto& p : patterns) joined += p + "\n";
  auto parsed = parse_path_patterns(joined);
  if (!parsed) return std::unexpected("hashFiles: " + parsed.error());
  ExpandOptions expand;
  expand.include_hidden_files = true;
  auto files = expand_path_patterns(workspace, *parsed, expand);
  if (!files) return std::unexpected("hashFiles: " + files.error());
  if (files->files.empty()) return std::string();
  EVP_MD_CTX* outer = EVP_MD_CTX_new();
  EVP_DigestInit_ex(outer, EVP_sha256(), nullptr);
  for (const auto& rel : files->files) {
    fs::path path = workspace / files->root / rel;
    std::ifstream in(path, std::ios::binary);
    EVP_MD_CTX* inner = EVP_MD_CTX_new();
    EVP_DigestInit_ex(inner, EVP_sha256(), nullptr);
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) EVP_DigestUpdate(inner, buf, in.gcount());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(inner, digest, &len);
    EVP_MD_CTX_free(inner);
    EVP_DigestUpdate(outer, digest, len);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(outer, digest, &len);
  EVP_MD_CTX_free(outer);
  return lower_hex(digest, len);
}

bool has_env(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& e : env)
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') return true;
  return false;
}

std::atomic<std::uint64_t> event_file_counter{0};

}  // namespace

std::expected<sandbox::SandboxSpec, std::string> job_sandbox_spec(const sandbox::ImageInfo& image,
                                                                  const fs::path& workspace,
                                                                  const std::vector<fs::path>& readonly_mounts,
                                                                  const fs::path& event_file,
                                                                  const sandbox::ResourceLimits& limits,
                                                                  const std::vector<std::string>& extra_env) {
  sandbox::SandboxSpec spec;
  spec.rootfs = image.rootfs.string();
  spec.image = image.name;  // engine backends: the engine's image of that name
  spec.env = image.config.env;
  if (!has_env(spec.env, "PATH"))
    spec.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has_env(spec.env, "HOME")) spec.env.push_back("HOME=/root");  // an image's own HOME stays, as with docker run
  spec.env.insert(spec.env.end(), extra_env.begin(), extra_env.end());
  auto user = sandbox::resolve_image_user(image.rootfs, image.config.user);
  if (!user) return std::unexpected(user.error().message);
  spec.uid = user->uid;
  spec.gid = user->gid;
  spec.working_dir = "/workspace";
  spec.mounts.push_back({workspace.string(), "/workspace", false});
  for (const auto& dir : readonly_mounts) spec.mounts.push_back({dir.string(), dir.string(), true});
  // The event payload is one host file for the whole run, mounted read-only:
  // no exec to write it into each sandbox.
  spec.tmpfs = {kRunnerDir, kRunnerTemp, kRunnerWorkspace, kRunnerToolCache};
  spec.mounts.push_back({event_file.string(), kEventPath, true});
  spec.limits = limits;
  return spec;
}

std::expected<fs::path, std::string> write_event_file(const fs::path& scratch_dir, const std::string& payload) {
  if (scratch_dir.empty()) return std::unexpected("no scratch folder for the event payload");
  std::error_code ec;
  fs::create_directories(scratch_dir, ec);
  // Written aside and renamed: a sandbox never mounts a half-written file.
  const fs::path file = scratch_dir / "event.json";
  const fs::path staging = scratch_dir / (".event.json." + std::to_string(::getpid()) + "." +
                                          std::to_string(event_file_counter.fetch_add(1)));
  {
    std::ofstream out(staging, std::ios::trunc);
    out << payload;
    if (!out.flush()) return std::unexpected("cannot write the event payload to " + staging.string());
  }
  fs::permissions(staging, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::replace, ec);
  fs::rename(staging, file, ec);
  if (ec) return std::unexpected("cannot write the event payload to " + file.string() + ": " + ec.message());
  return file;
}

std::string log_file_stem(std::string_view job_name) {
  std::string out;
  bool pending_sep = false;
  for (char c : job_name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') {
      if (pending_sep && !out.empty()) out += '_';
      pending_sep = false;
      out += c;
    } else {
      pending_sep = true;
    }
  }
  if (out.empty() || out.front() == '.') out.insert(0, "job");
  return out;
}

// State shared between the executor's thread (stop) and the job's thread.
struct SandboxJobRunner::Running {
  std::atomic<bool> stop{false};
  std::mutex mutex;
  sandbox::Sandbox* sandbox = nullptr;  // set while the sandbox exists
};

// Everything about running one job; lives on the job's thread.
class SandboxJobRunner::JobExecution final : public ActionHost {
 public:
  JobExecution(SandboxJobRunner& runner, Running& running, scheduler::JobRequest request,
               scheduler::EvalContext context)
      : runner_(runner), running_(running), request_(std::move(request)), context_(std::move(context)),
        job_(*request_.job), name_(request_.concrete->name) {}

  // Runs the job up to its outcome; the sandbox (and its slot) outlive it until tear_down().
  scheduler::JobOutcome run() {
    const auto started = Clock::now();
    auto outcome = run_timed();
    timings_.total = Clock::now() - started;
    return outcome;
  }

  // Destroys the sandbox once the job's end has been reported: the jobs that
  // needed this one start meanwhile. The runner's thread waits for it, so no
  // sandbox outlives the runner. Then the slot is free and the timings are final.
  void tear_down() {
    if (sandbox_owned_) {
      PhaseTimer timer(timings_, JobPhase::kTeardown);
      sandbox_owned_.reset();
      egress_.reset();  // after the sandbox that used its namespace
    }
    slot_.reset();
    if (runner_.config_.timings) {
      timings_.index = request_.index;
      timings_.job = name_;
      runner_.config_.timings->add(std::move(timings_));
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  // Adds the time until it goes out of scope to a phase.
  class PhaseTimer {
   public:
    PhaseTimer(JobTimings& timings, JobPhase phase) : timings_(timings), phase_(phase) {}
    ~PhaseTimer() { timings_[phase_] += Clock::now() - start_; }

   private:
    JobTimings& timings_;
    JobPhase phase_;
    Clock::time_point start_ = Clock::now();
  };

  // Time already booked to the phases a step's own duration must not include.
  std::chrono::nanoseconds booked_in_steps() const {
    return timings_[JobPhase::kRunnerFiles] + timings_[JobPhase::kFileCommands] + timings_[JobPhase::kArtifacts];
  }

  scheduler::JobOutcome run_timed() {
    {
      PhaseTimer timer(timings_, JobPhase::kPrepare);
      open_log();
      prepare_env_context();
    }
    if (auto label = missing_runner(job_, context_, runner_.config_.runs_on_images)) {
      const std::string why = no_runner_reason(*label);
      log_line(kNoStep, why + ": the job is skipped (map the label to an image to run it)");
      return {Result::skipped, {}, why};
    }
    auto slot_wait = std::make_optional<PhaseTimer>(timings_, JobPhase::kSlot);
    slot_.emplace(runner_.config_.slots, running_.stop);
    slot_wait.reset();
    if (!slot_->held()) return fail("cancelled while waiting for a free slot");
    if (runner_.config_.job_began) runner_.config_.job_began(name_);
    ActionRunnerOptions action_options;
    action_options.source = runner_.config_.actions;
    action_options.node = &runner_.node_runtime_;
    action_options.workspace = runner_.config_.workspace;
    actions_.emplace(*this, action_options);
    action_mounts_ = actions_->prepare(job_);
    auto sandbox = create_sandbox();
    if (!sandbox) return fail(sandbox.error());
    {
      std::lock_guard lock(running_.mutex);
      running_.sandbox = sandbox->get();
    }
    if (running_.stop) (*sandbox)->kill();
    auto outcome = run_in(**sandbox);
    {
      std::lock_guard lock(running_.mutex);
      running_.sandbox = nullptr;
    }
    // Stopped now, so nothing it left running uses CPU while the end is reported;
    // destroyed (bundle, cgroup, runsc state) by tear_down().
    (*sandbox)->kill();
    sandbox_owned_ = std::move(*sandbox);
    log_egress(kNoStep, true);
    return outcome;
  }

  scheduler::JobOutcome fail(std::string message) {
    log_line(kNoStep, "error: " + message);
    scheduler::JobOutcome outcome;
    outcome.result = running_.stop ? Result::cancelled : Result::failure;
    outcome.message = runner_.masker_.mask(message);
    return outcome;
  }

  static constexpr std::size_t kNoStep = scheduler::kNoIndex;

  void open_log() {
    std::error_code ec;
    fs::create_directories(runner_.config_.logs_dir, ec);
    log_.open(runner_.log_path(name_), std::ios::out | std::ios::trunc);
  }

  // Masks a line, writes it to the job's log and publishes it.
  void log_line(std::size_t step, std::string_view text,
                std::chrono::system_clock::time_point when = std::chrono::system_clock::now()) {
    std::string masked = runner_.masker_.mask(text);
    const std::string stamp = timestamp(when);
    if (!within_log_limit(stamp.size() + 1 + masked.size())) return;
    if (log_.is_open()) log_ << stamp << ' ' << masked << '\n' << std::flush;
    if (!request_.observer) return;
    scheduler::RunEvent event;
    event.kind = scheduler::EventKind::log_line;
    event.time = std::chrono::steady_clock::now();
    event.job = request_.index;
    event.step = step;
    event.name = name_;
    event.message = std::move(masked);
    request_.observer->on_event(event);
  }

  // A job flooding its log must not fill the agent's disk: past the limit, one
  // line says so and later lines are dropped (the job itself goes on).
  bool within_log_limit(std::size_t line_bytes) {
    const std::uint64_t limit = runner_.config_.log_limit_bytes;
    if (limit == 0) return true;
    if (log_truncated_) return false;
    log_bytes_ += line_bytes + 1;
    if (log_bytes_ <= limit) return true;
    log_truncated_ = true;
    const std::string notice = "sandci: this log reached its limit of " + std::to_string(limit >> 20) +
                               " MiB; later lines are left out";
    if (log_.is_open()) log_ << timestamp(std::chrono::system_clock::now()) << ' ' << notice << '\n' << std::flush;
    if (request_.observer) {
      scheduler::RunEvent event;
      event.kind = scheduler::EventKind::log_line;
      event.time = std::chrono::steady_clock::now();
      event.job = request_.index;
      event.name = name_;
      event.message = notice;
      request_.observer->on_event(event);
    }
    return false;
  }

  // The env context: workflow env, then job env, then the container's env, each
  // interpolated with what came before it.
  void prepare_env_context() {
    auto& ctx = context_;
    if (!ctx.contexts.contains("env") || !ctx.contexts["env"].is_object())
      ctx.contexts["env"] = nlohmann::json::object();
    auto add = [&](const scheduler::StringMap& env, std::string_view where) {
      for (const auto& [key, value] : env) {
        auto text = scheduler::interpolate(value, ctx);
        if (text)
          ctx.contexts["env"][key] = *text;
        else
          errors_.push_back(std::string(where) + " env." + key + ": " + text.error().message);
      }
    };
    // A called (reusable) workflow's jobs take its env, not the caller's.
    add(job_.scope ? job_.scope->env : runner_.config_.workflow->env, "workflow");
    add(job_.env, "job");
    if (job_.container) add(job_.container->env, "container");
    ctx.contexts["job"] = {{"status", "success"}};
    const fs::path workspace = runner_.config_.workspace;
    ctx.hash_files = [workspace](const std::vector<std::string>& patterns) {
      return hash_workspace_files(workspace, patterns);
    };
  }

  std::expected<std::unique_ptr<sandbox::Sandbox>, std::string> create_sandbox() {
    if (!errors_.empty()) return std::unexpected(errors_.front());
    auto image_name = choose_image(job_, context_, runner_.config_.default_image,
                                   runner_.config_.runs_on_images);
    if (!image_name) return std::unexpected(image_name.error());
    const auto image_started = Clock::now();
    auto image = runner_.images_(*image_name);
    if (!image) return std::unexpected(image.error().message);
    image_ = *image;
    image_has_bash_ = has_bash(image_.rootfs);

    std::string network_namespace;
    if (auto started = start_egress(network_namespace); !started) return std::unexpected(started.error());
    log_line(kNoStep, "image " + image_.name + ", sandbox gVisor (runsc), network " +
                          (egress_ ? "through the egress proxy only" : "none"));
    auto event_file = runner_.event_file();
    if (!event_file) return std::unexpected(event_file.error());
    auto base = job_sandbox_spec(image_, runner_.config_.workspace, runner_.config_.readonly_mounts, *event_file,
                                 runner_.config_.limits, egress_env_);
    if (!base) return std::unexpected(base.error());
    sandbox::SandboxSpec spec = std::move(*base);
    spec.network_namespace = network_namespace;
    // Names resolve through the proxy only: a nameserver on the job's own
    // loopback refuses at once instead of timing out.
    if (egress_) spec.mounts.push_back({egress_->resolv_conf(), "/etc/resolv.conf", true});
    for (const auto& mount : action_mounts_) spec.mounts.push_back(mount);
    spec.name_hint = log_file_stem(name_);
    if (action_mounts_.empty()) runner_.expect_jobs_of(spec, *image_name);
    const auto create_started = Clock::now();
    timings_[JobPhase::kImage] += create_started - image_started;
    auto created = runner_.warm_->create(spec, running_.stop);
    const auto create_time = Clock::now() - create_started;
    if (!created) return std::unexpected("cannot start the sandbox: " + created.error().message);
    const auto bundle = (*created)->start_timings().bundle;
    timings_[JobPhase::kBundle] += bundle;
    timings_[JobPhase::kSandboxStart] += create_time - bundle;
    return std::move(*created);
  }

  // Whether the image's root holds bash where Debian-like images keep it. A
  // symbolic link is followed on the host: a relative one stays in the image.
  static bool has_bash(const fs::path& rootfs) {
    if (rootfs.empty()) return false;
    std::error_code ec;
    return fs::is_regular_file(rootfs / "usr/bin/bash", ec) || fs::is_regular_file(rootfs / "bin/bash", ec);
  }

  // A job whose repository is granted network gets its own namespaces and
  // proxy (job_egress.h); any other job, none.
  std::expected<void, std::string> start_egress(std::string& network_namespace) {
    if (!runner_.config_.egress) return {};
    auto egress = JobEgress::start(*runner_.config_.egress, log_file_stem(name_));
    if (!egress) return std::unexpected("cannot set up the job's network egress: " + egress.error());
    egress_ = std::move(*egress);
    egress_env_ = egress_->env();
    network_namespace = egress_->network_namespace();
    return {};
  }

  // The proxy's refusals since the last call, one line each; at the job's end
  // also the summary.
  void log_egress(std::size_t step, bool job_ended) {
    if (!egress_) return;
    for (const auto& line : egress_->take_refusals()) log_line(step, line);
    if (job_ended) log_line(kNoStep, egress_->summary());
  }

  scheduler::JobOutcome run_in(sandbox::Sandbox& box) {
    sandbox_ = &box;

    scheduler::StepSequencerOptions options;
    options.cancelled = [this] { return running_.stop.load(); };
    options.observer = request_.observer;
    options.job = request_.index;
    auto steps = scheduler::run_steps(
        job_, context_, [this](const scheduler::StepRequest& step) { return run_step(step); },
        options);

    scheduler::JobOutcome outcome;
    outcome.result = steps.result;
    outcome.outputs = steps.outputs;
    for (const auto& error : steps.errors) log_line(kNoStep, "error: " + error);
    cache_steps_.run_post(steps.result == Result::success && !running_.stop, builtin(nullptr));
    for (const auto& step : steps.steps) {
      if (step.conclusion == Result::failure) {
        outcome.message = "step '" + step.name + "' failed: " + step.message;
        break;
      }
    }
    // Actions' post steps: after the job's steps, whatever became of them.
    const std::string post_failure = actions_->run_posts(
        {steps.result == Result::failure, steps.result == Result::cancelled || running_.stop.load()});
    if (!post_failure.empty() && outcome.result == Result::success) {
      outcome.result = Result::failure;
      outcome.message = "post step " + post_failure;
    }
    outcome.message = runner_.masker_.mask(outcome.message);
    return outcome;
  }

  scheduler::StepOutcome run_step(const scheduler::StepRequest& step) {
    const auto started = Clock::now();
    const auto booked = booked_in_steps();
    auto outcome = run_step_untimed(step);
    log_egress(step.index, false);
    timings_.steps.push_back({step.name, (Clock::now() - started) - (booked_in_steps() - booked)});
    return outcome;
  }

  scheduler::StepOutcome run_step_untimed(const scheduler::StepRequest& step) {
    log_line(step.index, "##[step] " + step.name);
    return dispatch_step(step);
  }

  scheduler::StepOutcome dispatch_step(const scheduler::StepRequest& step) {
    if (running_.stop) return {Result::cancelled, {}, {}, "cancelled"};
    if (!step.step->uses.empty()) return run_builtin(step);
    return run_script(step);
  }

  // ---- ActionHost: what the actions a step uses may ask of the job ----
  void log(std::size_t step, std::string_view text) override { log_line(step, text); }
  scheduler::StepOutcome run_nested_step(const scheduler::StepRequest& step) override { return dispatch_step(step); }
  bool is_builtin(const scheduler::UsesRef& ref) const override {
    return ref.kind == scheduler::UsesRef::Kind::remote && is_builtin_action(ref.name());
  }
  sandbox::Sandbox& sandbox() override { return *sandbox_; }
  bool stopped() const override { return running_.stop.load(); }
  ProgramOutcome run_program(const ProgramRequest& request) override {
    StepExec exec;
    exec.index = request.index;
    exec.mode = "given";
    exec.command = request.argv;
    exec.env = request.env;
    exec.working_dir = request.working_dir.empty() ? std::string("/workspace") : request.working_dir;
    exec.timeout = request.timeout;
    exec.state = true;
    return exec_step(exec);
  }

  scheduler::StepOutcome run_action(const scheduler::StepRequest& step) {
    auto ref = scheduler::parse_uses(step.step->uses);
    if (!ref) return step_failure(step.index, ref.error());
    return actions_->run(step, *ref);
  }

  scheduler::StepOutcome run_builtin(const scheduler::StepRequest& step) {
    const std::string action = action_name(step.step->uses);
    if (action == "actions/checkout") return masked(run_checkout(builtin(&step), runner_.config_.checkout));
    if (is_cache_action(action)) return masked(cache_steps_.run(action, builtin(&step)));
    if (action == "actions/upload-artifact") {
      PhaseTimer timer(timings_, JobPhase::kArtifacts);
      return upload_artifact(step);
    }
    if (action == "actions/download-artifact") {
      PhaseTimer timer(timings_, JobPhase::kArtifacts);
      return download_artifact(step);
    }
    return run_action(step);
  }

  // What checkout and cache get from this job; a post step (null) logs outside any step.
  BuiltinStep builtin(const scheduler::StepRequest* step) {
    const std::size_t index = step ? step->index : kNoStep;
    return {step, sandbox_, [this, index](std::string_view line) { log_line(index, line); },
            [this](std::string_view what) { return scratch(what); }};
  }
  scheduler::StepOutcome masked(scheduler::StepOutcome outcome) {
    outcome.message = runner_.masker_.mask(outcome.message);
    return outcome;
  }

  scheduler::StepOutcome step_failure(std::size_t index, std::string message) {
    log_line(index, "error: " + message);
    return {Result::failure, {}, {}, runner_.masker_.mask(message)};
  }

  fs::path scratch(std::string_view what) {
    fs::path dir = runner_.config_.scratch_dir /
                   (log_file_stem(name_) + "-" + std::to_string(request_.index)) /
                   (std::string(what) + "-" + std::to_string(++scratch_counter_));
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    return dir;
  }

  scheduler::StepOutcome upload_artifact(const scheduler::StepRequest& step) {
    const std::string name = lookup_with(step.with, "name", "artifact");
    const std::string path = lookup_with(step.with, "path");
    if (path.empty()) return step_failure(step.index, "upload-artifact: `path` is required");
    ArtifactStore::UploadOptions options;
    auto if_none = parse_if_no_files_found(lookup_with(step.with, "if-no-files-found", "warn"));
    if (!if_none) return step_failure(step.index, "upload-artifact: " + if_none.error());
    options.if_no_files_found = *if_none;
    options.include_hidden_files = is_true(lookup_with(step.with, "include-hidden-files"));
    options.overwrite = is_true(lookup_with(step.with, "overwrite"));
    auto patterns = parse_path_patterns(path);
    if (!patterns) return step_failure(step.index, "upload-artifact: " + patterns.error());

    // Copy the patterns' fixed leading folders out of the sandbox; the store then
    // selects files there with the same patterns and never follows a link out.
    fs::path host = scratch("upload");
    for (const auto& pattern : *patterns) {
      if (pattern.exclude) continue;
      std::string root = "/workspace";
      for (const auto& seg : pattern.segments) {
        if (seg.find_first_of("*?[") != std::string::npos) break;
        root += "/" + seg;
      }
      // A path that does not exist is not an error here: the store reports
      // "no files found" as `if-no-files-found` says.
      (void)sandbox_->copy_out({root}, host.string());
    }
    // Nothing copied out (no pattern's folder exists) is "no files found", which
    // `if-no-files-found` decides about, not a missing folder.
    std::error_code made;
    fs::create_directories(host / "workspace", made);
    auto uploaded = runner_.artifacts_.upload(name, host / "workspace", path, options);
    std::error_code ec;
    fs::remove_all(host, ec);
    if (!uploaded) return step_failure(step.index, "upload-artifact: " + uploaded.error());
    if (!uploaded->warning.empty()) log_line(step.index, "warning: " + uploaded->warning);
    else
      log_line(step.index, "uploaded artifact '" + name + "': " +
                               std::to_string(uploaded->file_count) + " files, " +
                               std::to_string(uploaded->bytes) + " bytes");
    return {};
  }

  scheduler::StepOutcome download_artifact(const scheduler::StepRequest& step) {
    const std::string name = lookup_with(step.with, "name");
    auto subdir = resolve_download_path(lookup_with(step.with, "path"));
    if (!subdir) return step_failure(step.index, "download-artifact: " + subdir.error());
    fs::path host = scratch("download");
    auto downloaded = name.empty() ? runner_.artifacts_.download_all(host, *subdir)
                                   : runner_.artifacts_.download(name, host, *subdir);
    if (!downloaded) {
      std::error_code ec;
      fs::remove_all(host, ec);
      return step_failure(step.index, "download-artifact: " + downloaded.error());
    }
    auto copied = sandbox_->copy_in(host.string(), "/workspace");
    std::error_code ec;
    fs::remove_all(host, ec);
    if (!copied) return step_failure(step.index, "download-artifact: " + copied.error().message);
    log_line(step.index, "downloaded " + (name.empty() ? std::string("all artifacts") : "artifact '" + name + "'") +
                             ": " + std::to_string(downloaded->file_count) + " files");
    return {};
  }

  // One program run as a step: the wrapper, the file commands, the output.
  struct StepExec {
    std::size_t index = 0;
    std::string mode = "default";  // how the wrapper picks the shell: default, given, custom
    std::string script;            // written to the script file first ("" for programs)
    std::string script_path;
    std::vector<std::string> command;  // after the wrapper's arguments (default mode: none)
    scheduler::StringMap env;
    std::string working_dir;
    std::optional<std::chrono::duration<double>> timeout;
    bool state = false;  // $GITHUB_STATE too (actions)
    // "bash" or "sh": the exec starts that shell, which runs the wrapper and the
    // script in a subshell (kInlineStepWrapper); empty: kStepWrapper and `command`.
    std::string inline_shell;
    bool pipefail = false;  // inline bash: `set -o pipefail` (GitHub's `shell: bash`)
  };

  scheduler::StepOutcome run_script(const scheduler::StepRequest& step) {
    const std::string prefix = step_files(step.index);
    std::string shell_name = step.step->shell;
    if (shell_name.empty()) shell_name = job_.defaults.shell;
    if (shell_name.empty())
      shell_name = job_.scope ? job_.scope->defaults.shell : runner_.config_.workflow->defaults.shell;
    // In an image without bash the default shell (bash, else sh) is chosen inside, by the wrapper.
    auto shell = resolve_shell(shell_name, true);
    if (!shell) return step_failure(step.index, shell.error());
    StepExec exec;
    exec.index = step.index;
    exec.script_path = prefix + "-script" + shell->extension;
    exec.script = step.run ? *step.run : std::string();
    const bool known_shell = shell_name.empty() || shell_name == "bash" || shell_name == "sh" || shell_name == "python";
    exec.mode = shell_name.empty() ? "default" : known_shell ? "given" : "custom";
    if (!shell_name.empty()) exec.command = shell->argv(exec.script_path);
    // One program per step where the shell can run the wrapper itself. An image
    // without bash keeps the wrapper that looks for bash at each step.
    if ((shell_name.empty() || shell_name == "bash") && image_has_bash_) {
      exec.inline_shell = "bash";
      exec.pipefail = shell_name == "bash";
    } else if (shell_name == "sh") {
      exec.inline_shell = "sh";
    }
    exec.env = step.env;
    exec.working_dir = working_directory(step);
    exec.timeout = step.timeout;
    return exec_step(exec).outcome;
  }

  ProgramOutcome exec_step(const StepExec& step) {
    const std::string prefix = step_files(step.index);
    const std::string script_path = step.script_path.empty() ? prefix + "-script" : step.script_path;
    const std::string& script = step.script;
    const bool in_argument = script.size() <= kScriptInArgument && script.find('\0') == std::string::npos;

    sandbox::ExecRequest exec;
    const std::string files[] = {prefix + "-output", prefix + "-env", prefix + "-path", prefix + "-summary",
                                 prefix + "-state"};
    if (!step.inline_shell.empty()) {
      exec.argv = {step.inline_shell, "-c", kInlineStepWrapper, script_path,
                   std::to_string(kMaxCommandFileBytes + 1), step.state ? "state" : "-",
                   in_argument ? "arg" : "stdin", in_argument ? script : std::string(),
                   step.pipefail ? "pipefail" : "-"};
    } else {
      exec.argv = {"/bin/sh", "-c", kStepWrapper, "sandci-step", script_path,
                   std::to_string(kMaxCommandFileBytes + 1), step.mode, step.state ? "state" : "-",
                   in_argument ? "arg" : "stdin", in_argument ? script : std::string()};
      for (const auto& arg : step.command) exec.argv.push_back(arg);
    }
    exec.env = step_env(step.env, files, step.state);
    exec.working_dir = step.working_dir;
    if (step.timeout) exec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*step.timeout);

    sandbox::ExecIo io;
    {
      PhaseTimer timer(timings_, JobPhase::kRunnerFiles);
      if (!in_argument) io.stdin_data = script;
      io.capture_count = step.state ? 5 : 4;
      io.capture_max_bytes = kMaxCommandFileBytes;
    }
    StepOutputProcessor processor(runner_.masker_);
    auto status = sandbox_->exec(
        exec, [&](const sandbox::OutputLine& line) { handle_output(step.index, processor, line); }, io);
    ProgramOutcome outcome;
    outcome.outcome = finish_script(step.index, step.timeout, status, io.captured, processor.outputs());
    outcome.state = processor.state();
    if (step.state && io.captured.size() >= 5 && !io.captured[4].empty()) {
      if (io.captured[4].size() > kMaxCommandFileBytes)
        log_line(step.index, "warning: $GITHUB_STATE: more than the limit of " +
                                 std::to_string(kMaxCommandFileBytes) + " bytes; ignored");
      else if (auto state = parse_name_value_file(io.captured[4], NameValueFile::kOutput))
        for (auto& kv : *state) outcome.state.push_back(std::move(kv));
      else
        log_line(step.index, "warning: $GITHUB_STATE: " + state.error().to_string());
    }
    return outcome;
  }

  void handle_output(std::size_t step, StepOutputProcessor& processor, const sandbox::OutputLine& line) {
    for (const auto& shown : processor.process(line.text)) log_line(step, shown, line.time);
  }

  std::vector<std::string> step_env(const scheduler::StringMap& extra, const std::string (&files)[5], bool state) {
    std::vector<std::pair<std::string, std::string>> env = runner_.config_.base_env;
    set_env(env, "GITHUB_JOB", job_.id);
    set_env(env, "GITHUB_EVENT_PATH", kEventPath);
    set_env(env, "RUNNER_TEMP", kRunnerTemp);
    set_env(env, "RUNNER_WORKSPACE", kRunnerWorkspace);
    set_env(env, "RUNNER_TOOL_CACHE", kRunnerToolCache);
    for (const auto& [key, value] : extra) set_env(env, key, value);
    set_env(env, "GITHUB_OUTPUT", files[0]);
    set_env(env, "GITHUB_ENV", files[1]);
    set_env(env, "GITHUB_PATH", files[2]);
    set_env(env, "GITHUB_STEP_SUMMARY", files[3]);
    if (state) set_env(env, "GITHUB_STATE", files[4]);
    if (!path_prefix_.empty()) {
      std::string path = path_prefix_;
      std::string base = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
      for (const auto& e : image_.config.env)
        if (e.rfind("PATH=", 0) == 0) base = e.substr(5);
      for (const auto& [k, v] : env)
        if (k == "PATH") base = v;
      set_env(env, "PATH", path + ":" + base);
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
  }

  // `working-directory` as GitHub reads it: expressions evaluated with what the
  // step's own expressions saw (`${{ matrix.dir }}`), relative to the workspace.
  std::string working_directory(const scheduler::StepRequest& step) const {
    std::string wd = step.step->working_directory;
    if (wd.empty()) wd = job_.defaults.working_directory;
    if (wd.empty())
      wd = job_.scope ? job_.scope->defaults.working_directory : runner_.config_.workflow->defaults.working_directory;
    if (wd.find("${{") != std::string::npos && step.context) {
      if (auto evaluated = scheduler::interpolate(wd, *step.context)) wd = *evaluated;
    }
    if (wd.empty()) return "/workspace";
    if (wd.front() == '/') return wd;
    return "/workspace/" + wd;
  }

  scheduler::StepOutcome finish_script(std::size_t index, std::optional<std::chrono::duration<double>> timeout,
                                       const sandbox::ExitStatus& status,
                                       const std::vector<std::string>& files,
                                       scheduler::StringMap legacy_outputs) {
    scheduler::StepOutcome outcome;
    outcome.outputs = std::move(legacy_outputs);
    if (running_.stop || status.kind == sandbox::ExitKind::kKilled) {
      outcome.result = Result::cancelled;
      outcome.message = "cancelled";
      return outcome;
    }
    {
      PhaseTimer timer(timings_, JobPhase::kFileCommands);
      read_file_commands(index, files, outcome);
    }
    if (!status.success()) {
      outcome.result = Result::failure;
      outcome.message = describe_exit(status);
      if (status.kind == sandbox::ExitKind::kTimedOut && timeout)
        outcome.message = "timed out after " + format_minutes(timeout->count());
      log_line(index, "error: " + outcome.message);
    }
    return outcome;
  }

  static std::string format_minutes(double seconds) {
    std::ostringstream out;
    out << seconds / 60.0 << " minutes";
    return out.str();
  }

  // `files`: what the step left in $GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH and
  // $GITHUB_STEP_SUMMARY, each cut one byte past the limit.
  void read_file_commands(std::size_t index, const std::vector<std::string>& files,
                          scheduler::StepOutcome& outcome) {
    static const char* const kNames[] = {"$GITHUB_OUTPUT", "$GITHUB_ENV", "$GITHUB_PATH", "$GITHUB_STEP_SUMMARY"};
    auto read = [&](const std::string& content) -> std::string {
      if (content.size() <= kMaxCommandFileBytes) return content;
      const std::size_t i = static_cast<std::size_t>(&content - files.data());
      log_line(index, std::string("warning: ") + (i < 4 ? kNames[i] : "a file command") +
                          ": more than the limit of " + std::to_string(kMaxCommandFileBytes) + " bytes; ignored");
      return {};
    };
    if (files.size() < 4) return;
    if (auto outputs = parse_name_value_file(read(files[0]), NameValueFile::kOutput))
      for (auto& kv : *outputs) outcome.outputs.push_back(std::move(kv));
    else
      log_line(index, "warning: $GITHUB_OUTPUT: " + outputs.error().to_string());
    if (auto env = parse_name_value_file(read(files[1]), NameValueFile::kEnv))
      outcome.env_updates = std::move(*env);
    else
      log_line(index, "warning: $GITHUB_ENV: " + env.error().to_string());
    if (auto paths = parse_path_file(read(files[2]))) {
      for (const auto& p : *paths) path_prefix_ = path_prefix_.empty() ? p : p + ":" + path_prefix_;
    } else {
      log_line(index, "warning: $GITHUB_PATH: " + paths.error().to_string());
    }
    auto summary = parse_step_summary(read(files[3]));
    if (!summary.markdown.empty()) {
      std::ofstream out(runner_.config_.logs_dir / (log_file_stem(name_) + ".summary.md"), std::ios::app);
      out << runner_.masker_.mask(summary.markdown) << "\n";
    }
  }

  SandboxJobRunner& runner_;
  Running& running_;
  scheduler::JobRequest request_;
  scheduler::EvalContext context_;
  const scheduler::Job& job_;
  std::string name_;
  std::ofstream log_;
  std::vector<std::string> errors_;
  sandbox::ImageInfo image_;
  bool image_has_bash_ = false;  // steps of the default shell and `shell: bash` start bash alone
  std::uint64_t log_bytes_ = 0;
  bool log_truncated_ = false;
  sandbox::Sandbox* sandbox_ = nullptr;
  std::optional<SlotLease> slot_;  // held until the sandbox is gone
  std::unique_ptr<JobEgress> egress_;  // outlives sandbox_owned_ (declared before it)
  std::vector<std::string> egress_env_;
  std::unique_ptr<sandbox::Sandbox> sandbox_owned_;  // after run(), until tear_down()
  std::string path_prefix_;  // from $GITHUB_PATH, newest first
  JobTimings timings_;
  int scratch_counter_ = 0;
  std::optional<ActionRunner> actions_;  // set before the sandbox is created
  std::vector<sandbox::Mount> action_mounts_;
  CacheSteps cache_steps_{runner_.config_.cache, runner_.config_.cache_scope};
};

SandboxJobRunner::SandboxJobRunner(JobRunnerConfig config, sandbox::SandboxBackend& backend,
                                   ImageLookup images, ArtifactStore& artifacts, SecretMasker& masker)
    : config_(std::move(config)), backend_(backend),
      // Two starts side by side at most: what two cores run at once; more only
      // slow each other down.
      warm_(std::make_unique<sandbox::WarmPool>(backend_, config_.warm_sandboxes,
                                                std::min<std::size_t>(2, config_.warm_sandboxes),
                                                ahead_slots(config_.warm_slots))),
      images_(std::move(images)), artifacts_(artifacts), masker_(masker),
      node_runtime_(config_.node_cache_dir, config_.scratch_dir.empty() ? fs::path() : config_.scratch_dir / "node") {
  if (config_.warm_sandboxes > 0) planned_by_image_ = planned_jobs_by_image();
  if (config_.warm_sandboxes > 0 && config_.warm_slots)
    reclaimer_ = config_.warm_slots->add_reclaimer([pool = warm_.get()] { return pool->drop_idle(); });
}

sandbox::AheadSlots ahead_slots(JobSlots* slots) {
  if (!slots) return {};
  return {[slots] { return slots->try_acquire(); }, [slots] { slots->release(); }};
}

std::map<std::string, std::size_t> SandboxJobRunner::planned_jobs_by_image() const {
  if (!config_.plan) return {};
  return agent::planned_jobs_by_image(*config_.plan, config_.default_image, config_.runs_on_images);
}

std::map<std::string, std::size_t> planned_jobs_by_image(const scheduler::Plan& plan, const std::string& default_image,
                                                         const std::map<std::string, std::string>& runs_on_images) {
  std::map<std::string, std::size_t> counts;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const scheduler::Job& job = plan.job(i);
    // An action other than the built-in ones adds mounts: another spec, learnt when it comes.
    const bool plain = std::none_of(job.steps.begin(), job.steps.end(), [](const scheduler::Step& step) {
      return !step.uses.empty() && !is_builtin_action(action_name(step.uses));
    });
    if (!plain) continue;
    scheduler::EvalContext context;
    const auto& matrix = plan.concrete(i).matrix;
    if (!matrix.is_null()) context.contexts["matrix"] = matrix;
    // An image that depends on more than the matrix is not counted: its jobs teach the pool.
    if (auto image = choose_image(job, context, default_image, runs_on_images)) ++counts[*image];
  }
  return counts;
}

void SandboxJobRunner::expect_jobs_of(const sandbox::SandboxSpec& spec, const std::string& image) {
  if (config_.warm_sandboxes == 0) return;
  std::lock_guard lock(expect_mutex_);
  auto planned = planned_by_image_.find(image);
  if (planned == planned_by_image_.end()) return;
  if (!expected_specs_.insert(sandbox::spec_key(spec)).second) return;
  warm_->expect(spec, planned->second);
}

SandboxJobRunner::~SandboxJobRunner() {
  if (reclaimer_) config_.warm_slots->remove_reclaimer(*reclaimer_);
  {
    std::lock_guard lock(mutex_);
    for (auto& [index, running] : running_) {
      running->stop = true;
      std::lock_guard box_lock(running->mutex);
      if (running->sandbox) running->sandbox->kill();
    }
  }
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

std::expected<fs::path, std::string> SandboxJobRunner::event_file() {
  std::lock_guard lock(event_mutex_);
  if (!event_file_.empty()) return event_file_;
  auto written =
      write_event_file(config_.event_dir.empty() ? config_.scratch_dir : config_.event_dir, config_.event_payload);
  if (!written) return written;
  event_file_ = *written;
  return event_file_;
}

fs::path SandboxJobRunner::log_path(std::string_view job_name) const {
  return config_.logs_dir / (log_file_stem(job_name) + ".log");
}

void SandboxJobRunner::start(scheduler::JobRequest request) {
  auto running = std::make_shared<Running>();
  std::lock_guard lock(mutex_);
  running_[request.index] = running;
  // The contexts read the executor's state: build them here, on its thread.
  scheduler::EvalContext context = request.make_context ? request.make_context() : scheduler::EvalContext{};
  threads_.emplace_back([this, running, request = std::move(request), context = std::move(context)]() mutable {
    run_job(running, std::move(request), std::move(context));
  });
}

void SandboxJobRunner::run_job(std::shared_ptr<Running> running, scheduler::JobRequest request,
                               scheduler::EvalContext context) {
  const std::size_t index = request.index;
  scheduler::JobOutcome outcome;
  std::optional<JobExecution> execution;
  try {
    execution.emplace(*this, *running, std::move(request), std::move(context));
    outcome = execution->run();
  } catch (const std::exception& e) {
    // A bug of ours must not take the whole run down: the job fails, visibly.
    outcome.result = Result::failure;
    outcome.message = std::string("internal error: ") + e.what();
  }
  complete(index, std::move(outcome));
  // Off the critical path: the executor already has the job's end.
  if (execution) execution->tear_down();
}

void SandboxJobRunner::complete(std::size_t index, scheduler::JobOutcome outcome) {
  std::lock_guard lock(mutex_);
  running_.erase(index);
  completions_.push_back({index, std::move(outcome)});
  changed_.notify_all();
}

void SandboxJobRunner::stop(std::size_t index) {
  std::lock_guard lock(mutex_);
  auto it = running_.find(index);
  if (it == running_.end()) return;
  it->second->stop = true;
  std::lock_guard box_lock(it->second->mutex);
  if (it->second->sandbox) it->second->sandbox->kill();
}

std::optional<scheduler::JobCompletion> SandboxJobRunner::wait(
    std::optional<scheduler::Clock::time_point> deadline) {
  std::unique_lock lock(mutex_);
  auto ready = [this] { return !completions_.empty() || woken_; };
  if (deadline)
    changed_.wait_until(lock, *deadline, ready);
  else
    changed_.wait(lock, ready);
  woken_ = false;
  if (completions_.empty()) return std::nullopt;
  auto completion = std::move(completions_.front());
  completions_.pop_front();
  return completion;
}

void SandboxJobRunner::wake() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  changed_.notify_all();
}

}  // namespace sandci::agent
