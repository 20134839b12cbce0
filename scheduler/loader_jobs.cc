// The workflow parser's jobs: ids, needs (and their cycles), runs-on, container,
// outputs and the other job-level keys; steps and strategy have their own files.
#include <algorithm>
#include <map>
#include <set>

#include "scheduler/did_you_mean.h"
#include "scheduler/loader_parser.h"
#include "scheduler/matrix.h"

namespace sandci::scheduler::loader {

void WorkflowParser::parse_jobs(const Entry& e, Workflow& workflow) {
  if (e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0)) {
    error(where(e), "'jobs' must define at least one job");
    return;
  }
  auto jobs = mapping(e.value, "'jobs'");
  std::vector<std::vector<NeedsRef>> needs;
  for (const auto& job : jobs) {
    std::vector<NeedsRef> job_needs;
    workflow.jobs.push_back(parse_job(job, job_needs));
    needs.push_back(std::move(job_needs));
  }
  check_needs(workflow, needs);
  check_cycles(workflow, needs);
}

Job WorkflowParser::parse_job(const Entry& e, std::vector<NeedsRef>& needs) {
  Job job;
  job.id = e.key;
  job.location = source_.at(e.key_node);
  if (!valid_identifier(job.id))
    error(e.key_node, "invalid job id '" + job.id +
                          "': it must start with a letter or '_' and hold only letters, "
                          "digits, '-' and '_'");
  const std::string what = "job '" + job.id + "'";
  if (e.value.IsNull()) {
    error(e.key_node, what + " has no steps");
    return job;
  }
  auto fields = mapping(e.value, what, KeyPlace::job);
  if (!e.value.IsMap()) return job;
  std::optional<SourceLocation> strategy_at;  // set when the strategy parsed cleanly
  for (const auto& f : fields) {
    auto scope = job_key_scope(job.id, f.key);
    if (f.key == "name") {
      job.name = string_of(f).value_or("");
    } else if (f.key == "needs") {
      std::vector<SourceLocation> locations;
      job.needs = string_list(f, &locations);
      for (std::size_t i = 0; i < job.needs.size(); ++i) needs.push_back({job.needs[i], locations[i]});
    } else if (f.key == "if") {
      check_condition(f);
      job.if_condition = f.value.IsScalar() ? f.value.Scalar() : "";
    } else if (f.key == "runs-on") {
      job.runs_on = string_list(f);
      if (f.value.IsSequence() && job.runs_on.empty()) error(where(f), "'runs-on' must not be empty");
      for (const auto& label : job.runs_on)
        if (names_another_os(label))
          note(where(f), "runs-on '" + label + "': sandci runs Linux jobs; unless the agent's label map names an "
                         "image for it, the job is skipped (no runner for that label)");
    } else if (f.key == "container") {
      job.container = parse_container(f);
    } else if (f.key == "env") {
      job.env = string_map_or_expression(f, job.env_expression);
    } else if (f.key == "timeout-minutes") {
      if (is_expression(f.value))
        job.timeout_expression = expression_of(f);
      else
        job.timeout_minutes = positive_number(f).value_or(job.timeout_minutes);
    } else if (f.key == "continue-on-error") {
      job.continue_on_error = bool_or_expression(f);
    } else if (f.key == "strategy") {
      const std::size_t before = errors_;
      job.strategy = parse_strategy(f);
      if (errors_ == before) strategy_at = where(f);
    } else if (f.key == "outputs") {
      job.outputs = string_map(f);
    } else if (f.key == "defaults") {
      job.defaults = parse_defaults(f);
    } else if (f.key == "steps") {
      job.steps = parse_steps(f, job.id);
    } else if (f.key == "permissions") {
      check_permissions(f);
    } else if (f.key == "environment") {
      check_environment(f);
    } else if (f.key == "concurrency") {
      parse_concurrency(f);  // checked like the workflow's, then dropped
    }
  }
  if (find(fields, "uses"))
    parse_call(fields, job);
  else if (!find(fields, "steps"))
    error(e.key_node, what + " has no steps");
  else
    for (std::string_view key : {"with", "secrets"})
      if (const Entry* f = find(fields, key))
        error(f->key_node, "'" + f->key + "' is only allowed in a job with 'uses' (a reusable workflow call)");
  // A well-formed matrix may still expand to more jobs than Actions allows.
  if (strategy_at && !job.strategy->matrix.empty() && !job.strategy->matrix.from_expression())
    if (auto expanded = expand_matrix(job, 0); !expanded)
      error(*strategy_at, expanded.error().message);
  return job;
}

void WorkflowParser::check_environment(const Entry& e) {
  if (e.value.IsNull()) return;
  if (e.value.IsScalar()) {
    check_expressions(e.value);
    return;
  }
  if (!e.value.IsMap()) {
    error(where(e), "'environment' must be a name or a mapping with 'name' and 'url', not " +
                        describe(e.value));
    return;
  }
  constexpr std::string_view kEnvironmentKeys[] = {"name", "url"};
  for (const auto& field : mapping(e.value, "'environment'")) {
    if (!contains(kEnvironmentKeys, field.key)) {
      error(field.key_node, "unknown key '" + field.key + "' in 'environment'" +
                                did_you_mean(field.key, kEnvironmentKeys));
    } else if (field.key == "url") {
      // The url is read after the job ran, so it may use the job's steps.
      auto scope = scoped("jobs.<job_id>.environment.url", scope_.path + ".url");
      string_node(field.value, where(field), "'environment.url'", true);
    } else {
      string_node(field.value, where(field), "'environment." + field.key + "'", true);
    }
  }
}

Container WorkflowParser::parse_container(const Entry& e) {
  Container container;
  if (e.value.IsScalar()) {
    check_expressions(e.value);
    container.image = e.value.Scalar();
    return container;
  }
  auto fields = mapping(e.value, "'container'", KeyPlace::container);
  const std::string path = scope_.path;  // jobs.<id>.container
  if (const Entry* i = find(fields, "image")) {
    auto scope = scoped("jobs.<job_id>.container.image", path + ".image");
    container.image = string_of(*i).value_or("");
  } else if (e.value.IsMap()) {
    error(where(e), "'container' needs an 'image'");
  }
  if (const Entry* env = find(fields, "env")) {
    auto scope = scoped("jobs.<job_id>.container.env.<env_id>", path + ".env");
    container.env = string_map(*env);
  }
  if (const Entry* o = find(fields, "options")) {
    container.options = string_of(*o).value_or("");
    check_container_options(*o, container.options);
  }
  return container;
}

namespace {

struct ContainerFlag {
  std::string_view name;
  bool refused;
  std::string_view why;
};

// Docker run flags people put in `container.options`, and what sandci does with them.
constexpr ContainerFlag kContainerFlags[] = {
    {"--privileged", true, "a job never gets more privileges than its gVisor sandbox gives"},
    {"--network", true, "jobs have no network"},
    {"--net", true, "jobs have no network"},
    {"--network-alias", true, "jobs have no network"},
    {"--add-host", true, "jobs have no network"},
    {"--dns", true, "jobs have no network"},
    {"-p", true, "jobs have no network"},
    {"--publish", true, "jobs have no network"},
    {"--cap-add", true, "a job never gets capabilities beyond its gVisor sandbox"},
    {"--security-opt", true, "a job's confinement is its gVisor sandbox, not a Docker profile"},
    {"-v", true, "a job sees only its checkout, never a folder of the host"},
    {"--volume", true, "a job sees only its checkout, never a folder of the host"},
    {"--mount", true, "a job sees only its checkout, never a folder of the host"},
    {"--device", true, "a job reaches no host device"},
    {"--gpus", true, "a job reaches no host device"},
    {"--pid", true, "a job cannot share the host's processes"},
    {"--ipc", true, "a job cannot share the host's IPC namespace"},
    {"--userns", true, "a job cannot share the host's user namespace"},
    {"--init", false, "every job already has an init process in its sandbox"},
    {"--cpus", false, "the agent's limits (resources in its configuration) apply"},
    {"--memory", false, "the agent's limits (resources in its configuration) apply"},
    {"-m", false, "the agent's limits (resources in its configuration) apply"},
    {"--pids-limit", false, "the agent's limits (resources in its configuration) apply"},
    {"--shm-size", false, "/dev/shm has the sandbox's size"},
    {"--user", false, "steps run as the image's user"},
    {"-u", false, "steps run as the image's user"},
    {"--hostname", false, "the sandbox names itself"},
    {"-h", false, "the sandbox names itself"},
    {"--entrypoint", false, "steps are run by sandci, not by the image's entry point"},
    {"--workdir", false, "steps run in /workspace unless working-directory says otherwise"},
    {"-w", false, "steps run in /workspace unless working-directory says otherwise"},
    {"-e", false, "use container.env or env instead"},
    {"--env", false, "use container.env or env instead"},
    {"--rm", false, "every sandbox is removed after its job"},
    {"--tty", false, "steps have no terminal"},
    {"-t", false, "steps have no terminal"},
};

}  // namespace

void WorkflowParser::check_container_options(const Entry& e, const std::string& options) {
  std::size_t at = 0;
  while (at < options.size()) {
    at = options.find_first_not_of(" \t\r\n", at);
    if (at == std::string::npos) break;
    const std::size_t end = std::min(options.find_first_of(" \t\r\n", at), options.size());
    std::string_view word = std::string_view(options).substr(at, end - at);
    at = end;
    if (!word.starts_with("-") || word.find("${{") != std::string_view::npos) continue;
    std::string_view flag = word.substr(0, word.find('='));
    const ContainerFlag* known = nullptr;
    for (const auto& candidate : kContainerFlags)
      if (candidate.name == flag) known = &candidate;
    if (!known)
      note(where(e), "container option '" + std::string(flag) + "' is ignored: sandci runs jobs in gVisor "
                     "sandboxes, not with docker run");
    else if (known->refused)
      error(where(e), "container option '" + std::string(flag) + "' is not supported by sandci: " +
                          std::string(known->why));
    else
      note(where(e), "container option '" + std::string(flag) + "' is ignored: " + std::string(known->why));
  }
}

// ---- dependencies ---------------------------------------------------------------

void WorkflowParser::check_needs(const Workflow& workflow,
                                 const std::vector<std::vector<NeedsRef>>& needs) {
  std::vector<std::string> ids;
  for (const auto& job : workflow.jobs) ids.push_back(job.id);
  for (std::size_t i = 0; i < workflow.jobs.size(); ++i)
    for (const auto& ref : needs[i])
      if (!workflow.find_job(ref.job))
        error(ref.location, "job '" + workflow.jobs[i].id + "' needs '" + ref.job +
                                "', which is not a job in this workflow" +
                                did_you_mean(ref.job, ids));
}

void WorkflowParser::check_cycles(const Workflow& workflow,
                                  const std::vector<std::vector<NeedsRef>>& needs) {
  const std::size_t n = workflow.jobs.size();
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index.emplace(workflow.jobs[i].id, i);
  // Iterative depth-first search in file order; a needs-edge into a job still on
  // the stack closes a cycle.
  enum Color { kWhite, kGray, kBlack };
  std::vector<Color> color(n, kWhite);
  std::set<std::set<std::size_t>> reported;
  for (std::size_t start = 0; start < n; ++start) {
    if (color[start] != kWhite) continue;
    std::vector<std::pair<std::size_t, std::size_t>> stack{{start, 0}};  // job, next needs index
    color[start] = kGray;
    while (!stack.empty()) {
      auto& [job, next] = stack.back();
      if (next == needs[job].size()) {
        color[job] = kBlack;
        stack.pop_back();
        continue;
      }
      auto it = index.find(needs[job][next++].job);
      if (it == index.end()) continue;
      const std::size_t target = it->second;
      if (color[target] == kWhite) {
        color[target] = kGray;
        stack.emplace_back(target, 0);
      } else if (color[target] == kGray) {
        std::vector<std::size_t> cycle;
        for (auto s = stack.size(); s-- > 0;) {
          cycle.push_back(stack[s].first);
          if (stack[s].first == target) break;
        }
        std::reverse(cycle.begin(), cycle.end());
        if (!reported.insert(std::set<std::size_t>(cycle.begin(), cycle.end())).second) continue;
        // Start at the job written first, so the message follows the file.
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        std::string path;
        for (auto j : cycle) path += workflow.jobs[j].id + " -> ";
        path += workflow.jobs[cycle.front()].id;
        const std::string& second = workflow.jobs[cycle.size() > 1 ? cycle[1] : cycle[0]].id;
        SourceLocation at = workflow.jobs[cycle.front()].location;
        for (const auto& ref : needs[cycle.front()])
          if (ref.job == second) {
            at = ref.location;
            break;
          }
        error(at, "dependency cycle: " + path + " (each job needs the next)");
      }
    }
  }
}

}  // namespace sandci::scheduler::loader
