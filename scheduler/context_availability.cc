#include "scheduler/context_availability.h"

#include <algorithm>
#include <cctype>

namespace sandci::scheduler {
namespace {

using Names = std::span<const std::string_view>;

// The context lists the table repeats, named by where they apply.
constexpr std::string_view kWorkflowLevel[] = {"github", "inputs", "vars"};
constexpr std::string_view kWorkflowEnv[] = {"github", "secrets", "inputs", "vars"};
constexpr std::string_view kJobIf[] = {"github", "needs", "vars", "inputs"};
constexpr std::string_view kJobLevel[] = {"github", "needs", "strategy", "matrix", "vars", "inputs"};
constexpr std::string_view kJobConcurrency[] = {"github", "needs", "strategy", "matrix", "inputs", "vars"};
constexpr std::string_view kJobContinueOnError[] = {"github", "needs", "strategy", "vars", "matrix",
                                                    "inputs"};
constexpr std::string_view kCredentials[] = {"github", "needs", "strategy", "matrix",
                                             "env",    "vars",  "secrets",  "inputs"};
constexpr std::string_view kContainerEnv[] = {"github", "needs", "strategy", "matrix", "job",
                                              "runner", "env",   "vars",     "secrets", "inputs"};
constexpr std::string_view kJobDefaultsRun[] = {"github", "needs", "strategy", "matrix",
                                                "env",    "vars",  "inputs"};
constexpr std::string_view kJobEnv[] = {"github", "needs", "strategy", "matrix", "vars", "secrets", "inputs"};
constexpr std::string_view kEnvironmentUrl[] = {"github", "needs", "strategy", "matrix", "job",
                                                "runner", "env",   "vars",     "steps",  "inputs"};
constexpr std::string_view kJobOutputs[] = {"github", "needs", "strategy", "matrix", "job",   "runner",
                                            "env",    "vars",  "secrets",  "steps",  "inputs"};
constexpr std::string_view kCallSecrets[] = {"github",  "needs",  "strategy", "matrix",
                                             "secrets", "inputs", "vars"};
constexpr std::string_view kCallWith[] = {"github", "needs", "strategy", "matrix", "inputs", "vars"};
constexpr std::string_view kStep[] = {"github", "needs", "strategy", "matrix", "job",   "runner",
                                      "env",    "vars",  "secrets",  "steps",  "inputs"};
constexpr std::string_view kStepIf[] = {"github", "needs", "strategy", "matrix", "job",
                                        "runner", "env",   "vars",     "steps",  "inputs"};
constexpr std::string_view kStrategy[] = {"github", "needs", "vars", "inputs"};
constexpr std::string_view kCallOutputValue[] = {"github", "jobs", "vars", "inputs"};

constexpr std::string_view kStatus[] = {"always", "cancelled", "success", "failure"};
constexpr std::string_view kHashFiles[] = {"hashFiles"};
constexpr std::string_view kStatusAndHashFiles[] = {"always", "cancelled", "success", "failure", "hashFiles"};

constexpr Names kNone{};

constexpr ContextAvailability kTable[] = {
    {"run-name", kWorkflowLevel, kNone},
    {"concurrency", kWorkflowLevel, kNone},
    {"env", kWorkflowEnv, kNone},
    {"jobs.<job_id>.concurrency", kJobConcurrency, kNone},
    {"jobs.<job_id>.container", kJobLevel, kNone},
    {"jobs.<job_id>.container.credentials", kCredentials, kNone},
    {"jobs.<job_id>.container.env.<env_id>", kContainerEnv, kNone},
    {"jobs.<job_id>.container.image", kJobLevel, kNone},
    {"jobs.<job_id>.continue-on-error", kJobContinueOnError, kNone},
    {"jobs.<job_id>.defaults.run", kJobDefaultsRun, kNone},
    {"jobs.<job_id>.env", kJobEnv, kNone},
    {"jobs.<job_id>.environment", kJobLevel, kNone},
    {"jobs.<job_id>.environment.url", kEnvironmentUrl, kNone},
    {"jobs.<job_id>.if", kJobIf, kStatus},
    {"jobs.<job_id>.name", kJobLevel, kNone},
    {"jobs.<job_id>.outputs.<output_id>", kJobOutputs, kNone},
    {"jobs.<job_id>.runs-on", kJobLevel, kNone},
    {"jobs.<job_id>.secrets.<secrets_id>", kCallSecrets, kNone},
    {"jobs.<job_id>.services", kJobLevel, kNone},
    {"jobs.<job_id>.services.<service_id>.credentials", kCredentials, kNone},
    {"jobs.<job_id>.services.<service_id>.env.<env_id>", kContainerEnv, kNone},
    {"jobs.<job_id>.steps.continue-on-error", kStep, kHashFiles},
    {"jobs.<job_id>.steps.env", kStep, kHashFiles},
    {"jobs.<job_id>.steps.if", kStepIf, kStatusAndHashFiles},
    {"jobs.<job_id>.steps.name", kStep, kHashFiles},
    {"jobs.<job_id>.steps.run", kStep, kHashFiles},
    {"jobs.<job_id>.steps.timeout-minutes", kStep, kHashFiles},
    {"jobs.<job_id>.steps.with", kStep, kHashFiles},
    {"jobs.<job_id>.steps.working-directory", kStep, kHashFiles},
    {"jobs.<job_id>.strategy", kStrategy, kNone},
    {"jobs.<job_id>.timeout-minutes", kJobLevel, kNone},
    {"jobs.<job_id>.with.<with_id>", kCallWith, kNone},
    {"on.workflow_call.inputs.<inputs_id>.default", kWorkflowLevel, kNone},
    {"on.workflow_call.outputs.<output_id>.value", kCallOutputValue, kNone},
};

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

bool listed(Names names, std::string_view name) {
  return std::ranges::any_of(names, [&](std::string_view n) { return iequals(n, name); });
}

std::string joined(Names names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out.empty() ? "none" : out;
}

}  // namespace

std::span<const ContextAvailability> context_availability() { return kTable; }

const ContextAvailability* find_availability(std::string_view key) {
  auto it = std::ranges::find(kTable, key, &ContextAvailability::key);
  return it == std::end(kTable) ? nullptr : &*it;
}

bool is_special_function(std::string_view name) { return listed(kStatusAndHashFiles, name); }

std::optional<std::string> unavailable_message(const ContextAvailability& row,
                                               const ExpressionName& name, std::string_view path) {
  if (name.kind == ExpressionName::Kind::context) {
    if (listed(row.contexts, name.name)) return std::nullopt;
    return "`" + name.name + "` is not available in " + std::string(path) +
           "; available: " + joined(row.contexts);
  }
  if (!is_special_function(name.name) || listed(row.functions, name.name)) return std::nullopt;
  return "`" + name.name + "()` is not available in " + std::string(path) +
         "; functions available there besides the common ones: " + joined(row.functions);
}

}  // namespace sandci::scheduler
