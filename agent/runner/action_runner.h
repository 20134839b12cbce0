#pragma once
// Steps that use an action: `uses: ./path` (an action in the job's checkout) and
// `uses: owner/repo[/path]@ref` (fetched through the ActionSource), run inside the
// job's sandbox, never on the host.
//  - composite actions: their steps run as sub-steps of the step (each logged in a
//    ##[group] with its own name), with the `inputs` context, github.action_path
//    and $GITHUB_ACTION_PATH; outputs mapped through `outputs.<id>.value`; nested
//    composite actions up to kMaxActionDepth levels;
//  - JavaScript actions (node16/20/24): run on the runner's Node.js runtime,
//    mounted read-only; INPUT_<NAME> env; `pre` runs at the action's step just
//    before `main` (GitHub runs it at job start: running it at the step gives it
//    the step's real inputs and skips it with the step); `post` runs at the end
//    of the job in reverse order, also after a failure (`post-if` defaults to
//    always()), with STATE_<name> from $GITHUB_STATE and ::save-state::.
// Remote actions the job names, and those composite actions they use that can be
// seen before the job starts, are fetched before the sandbox is created and
// mounted read-only at /tmp/sandci/actions/<owner>/<repo>/<commit>; one found only
// while the job runs (a local composite action written by an earlier step that
// uses a remote one) is copied in then (that needs tar in the image).
#include <chrono>
#include <expected>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runner/action_node_runtime.h"
#include "agent/runner/action_source.h"
#include "agent/runner/command_files.h"
#include "sandbox/sandbox.h"
#include "scheduler/action_metadata.h"
#include "scheduler/step_sequencer.h"
#include "scheduler/uses_ref.h"

namespace sandci::agent {

inline constexpr std::size_t kMaxActionDepth = 10;
inline constexpr const char* kActionsMount = "/tmp/sandci/actions";
inline constexpr const char* kNodeMount = "/tmp/sandci/node";

// A program run inside the sandbox the way a `run:` step's script is: the job's
// environment, the file commands ($GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH,
// $GITHUB_STEP_SUMMARY, and $GITHUB_STATE) read back, workflow commands applied.
struct ProgramRequest {
  std::size_t index = 0;           // the job's step it belongs to (logs, step files)
  std::vector<std::string> argv;   // inside the sandbox
  scheduler::StringMap env;        // on top of the job's base environment
  std::string working_dir;         // inside; empty: /workspace
  std::optional<std::chrono::duration<double>> timeout;
};

struct ProgramOutcome {
  scheduler::StepOutcome outcome;  // result, outputs (with ::set-output::), env updates
  NameValueList state;             // $GITHUB_STATE and ::save-state::, in order
};

// What the job running a step lends to the action it uses.
class ActionHost {
 public:
  virtual ~ActionHost() = default;
  // Masks and logs a line under the job's step `step`.
  virtual void log(std::size_t step, std::string_view text) = 0;
  // Runs one step of a composite action as the job runs its own (run script,
  // built-in or action), without the step's header line.
  virtual scheduler::StepOutcome run_nested_step(const scheduler::StepRequest& step) = 0;
  virtual ProgramOutcome run_program(const ProgramRequest& request) = 0;
  // Whether the job does `ref` natively (actions/checkout, ...).
  virtual bool is_builtin(const scheduler::UsesRef& ref) const = 0;
  virtual sandbox::Sandbox& sandbox() = 0;
  virtual bool stopped() const = 0;
};

struct ActionRunnerOptions {
  ActionSource* source = nullptr;     // null: remote actions fail their step, saying why
  NodeRuntimeCache* node = nullptr;   // null: JavaScript actions fail their step
  std::filesystem::path workspace;    // the checkout on the host (/workspace inside)
};

class ActionRunner {
 public:
  ActionRunner(ActionHost& host, ActionRunnerOptions options);

  // Before the sandbox exists: fetches the remote actions `job` uses (and those
  // the composite actions it uses name, as far as they can be read now) and says
  // what to mount: each fetched repository, and the Node.js runtime when a
  // JavaScript action is among them. Never fails: a fetch error is kept and fails
  // the step that uses the action, if that step runs.
  std::vector<sandbox::Mount> prepare(const scheduler::Job& job);

  // Runs a step whose `uses:` names `ref` (local or remote; never a built-in).
  scheduler::StepOutcome run(const scheduler::StepRequest& step, const scheduler::UsesRef& ref);

  // At the end of the job: the post steps registered by the JavaScript actions
  // that ran, newest first, each if its post-if holds for the job's `status`.
  // Returns a failure message when one failed (empty when none did).
  std::string run_posts(const scheduler::StatusFunctions& status);

 private:
  struct Fetched {
    std::expected<FetchedRepository, std::string> repository = std::unexpected(std::string());
    std::string inside_root;  // where the repository is inside the sandbox
    bool in_sandbox = false;  // mounted, or copied in
  };
  struct Located {
    scheduler::UsesRef ref;
    scheduler::ActionMetadata metadata;
    std::string inside_dir;  // the action's folder inside the sandbox
    std::string display;     // "./tools/greet", "acme/tools/lint@v2"
  };
  // A JavaScript action's `post`, run when the job's steps are done.
  struct PostStep {
    std::size_t index = 0;
    std::string name;
    std::vector<std::string> argv;
    scheduler::StringMap env;
    NameValueList state;
    scheduler::EvalContext context;  // the step's, for post-if
    std::string condition;
  };

  void prepare_steps(const std::vector<scheduler::Step>& steps, std::size_t depth);
  Fetched& fetch(const scheduler::UsesRef& ref);
  std::expected<Located, std::string> locate(const scheduler::UsesRef& ref, std::size_t index);
  scheduler::StepOutcome fail(std::size_t index, const std::string& message);
  scheduler::StepOutcome run_composite(const scheduler::StepRequest& step, const Located& action,
                                       const nlohmann::json& inputs);
  scheduler::StepOutcome run_node(const scheduler::StepRequest& step, const Located& action,
                                  const nlohmann::json& inputs);
  nlohmann::json resolve_inputs(const scheduler::StepRequest& step, const Located& action);
  scheduler::StringMap action_env(const scheduler::StepRequest& step, const Located& action) const;

  ActionHost& host_;
  ActionRunnerOptions options_;
  std::map<std::string, Fetched> fetched_;  // by "owner/repo@ref", lower case
  bool node_mounted_ = false;
  bool node_copied_ = false;
  std::optional<NodeRuntime> node_runtime_;
  std::size_t depth_ = 0;  // composite actions being run, nested
  std::vector<PostStep> posts_;
};

// "INPUT_<NAME>": upper case, spaces as '_' (what @actions/core's getInput reads).
std::string input_env_name(std::string_view input);

}  // namespace sandci::agent
