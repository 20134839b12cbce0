// The workflow parser's reusable workflows: what a callable workflow declares
// (`on: workflow_call`) and what a calling job (`uses:` on a job) passes it.
#include <algorithm>

#include "scheduler/did_you_mean.h"
#include "scheduler/loader_parser.h"
#include "scheduler/uses_ref.h"
#include "scheduler/workflow_loader.h"

namespace sandci::scheduler::loader {
namespace {

constexpr std::string_view kCallInputTypes[] = {"string", "number", "boolean"};

// The keys GitHub allows in a job beside `uses:`; everything else belongs to a
// job that runs steps.
constexpr std::string_view kCallerKeys[] = {"name",     "uses",        "with",        "secrets",
                                            "needs",    "if",          "permissions", "strategy",
                                            "concurrency"};

bool is_workflow_file(std::string_view path) {
  return path.ends_with(".yml") || path.ends_with(".yaml");
}

// GitHub reads called workflows from .github/workflows/; sandci's other workflow
// folders (.sandci, .forgejo, .gitea) are accepted too.
bool in_workflow_folder(std::string_view path) {
  for (const auto& dir : workflow_directories())
    if (path.starts_with(dir + "/")) return true;
  return false;
}

}  // namespace

WorkflowCallTrigger WorkflowParser::parse_workflow_call(const YAML::Node& value) {
  WorkflowCallTrigger call;
  if (value.IsNull() || !value.IsDefined()) return call;
  auto entries = mapping(value, "'workflow_call'", KeyPlace::workflow_call);
  auto named = [this](const Entry& e, std::string_view what) {
    if (!valid_identifier(e.key))
      error(e.key_node, "invalid " + std::string(what) + " id '" + e.key +
                            "': it must start with a letter or '_' and hold only letters, digits, '-' and '_'");
  };
  if (const Entry* inputs = find(entries, "inputs"); inputs && !inputs->value.IsNull()) {
    for (const auto& e : mapping(inputs->value, "'inputs'")) {
      named(e, "input");
      WorkflowCallInput input;
      input.name = e.key;
      auto fields = mapping(e.value, "input '" + e.key + "'", KeyPlace::call_input);
      if (const Entry* d = find(fields, "description")) input.description = string_of(*d).value_or("");
      if (const Entry* r = find(fields, "required")) input.required = bool_of(*r).value_or(false);
      if (const Entry* t = find(fields, "type")) {
        input.type = string_of(*t).value_or("string");
        if (!contains(kCallInputTypes, input.type))
          error(where(*t), "unknown input type '" + input.type + "'" + did_you_mean(input.type, kCallInputTypes) +
                               " (workflow_call inputs are string, number or boolean)");
      } else if (e.value.IsMap()) {
        error(e.key_node, "input '" + e.key + "' of workflow_call needs a 'type' (string, number or boolean)");
      }
      if (const Entry* d = find(fields, "default")) {
        if (!d->value.IsScalar() && !d->value.IsNull()) {
          error(where(*d), "'default' must be a single value, not " + describe(d->value));
        } else {
          auto scope = scoped("on.workflow_call.inputs.<inputs_id>.default",
                              "on.workflow_call.inputs." + e.key + ".default");
          check_expressions(d->value);
          input.default_value = to_json(d->value);
          const bool expression = d->value.Scalar().find("${{") != std::string::npos;
          if (!expression && input.type == "boolean" && !as_bool(d->value))
            error(where(*d), "the default of a boolean input must be true or false");
          if (!expression && input.type == "number" && !as_number(d->value))
            error(where(*d), "the default of a number input must be a number");
        }
      }
      call.inputs.push_back(std::move(input));
    }
  }
  if (const Entry* secrets = find(entries, "secrets"); secrets && !secrets->value.IsNull()) {
    for (const auto& e : mapping(secrets->value, "'secrets'")) {
      named(e, "secret");
      bool required = false;
      // `token:` with nothing after it declares an optional secret, as on GitHub.
      if (!e.value.IsNull()) {
        auto fields = mapping(e.value, "secret '" + e.key + "'", KeyPlace::call_secret);
        if (const Entry* r = find(fields, "required")) required = bool_of(*r).value_or(false);
      }
      call.secrets.emplace_back(e.key, required);
    }
  }
  if (const Entry* outputs = find(entries, "outputs"); outputs && !outputs->value.IsNull()) {
    for (const auto& e : mapping(outputs->value, "'outputs'")) {
      named(e, "output");
      WorkflowCallOutput output;
      output.name = e.key;
      auto fields = mapping(e.value, "output '" + e.key + "'", KeyPlace::call_output);
      if (const Entry* d = find(fields, "description")) output.description = string_of(*d).value_or("");
      if (const Entry* v = find(fields, "value")) {
        auto scope = scoped("on.workflow_call.outputs.<output_id>.value",
                            "on.workflow_call.outputs." + e.key + ".value");
        output.value = string_of(*v).value_or("");
      } else if (e.value.IsMap() || e.value.IsNull()) {
        error(e.key_node, "output '" + e.key + "' needs a 'value', like ${{ jobs.build.outputs.version }}");
      }
      call.outputs.push_back(std::move(output));
    }
  }
  return call;
}

std::vector<std::pair<std::string, SourceLocation>> WorkflowParser::key_locations(const YAML::Node& map,
                                                                                const StringMap& kept) {
  std::vector<std::pair<std::string, SourceLocation>> out;
  for (const auto& [name, value] : kept) {
    SourceLocation at = source_.at(map);
    for (const auto& pair : map)
      if (pair.first.IsScalar() && pair.first.Scalar() == name) at = source_.at(pair.first);
    out.emplace_back(name, at);
  }
  return out;
}

void WorkflowParser::parse_call(const std::vector<Entry>& fields, Job& job) {
  const Entry* uses = find(fields, "uses");
  const std::string what = "job '" + job.id + "'";
  for (const auto& f : fields)
    if (!contains(kCallerKeys, f.key))
      error(f.key_node, "'" + f.key + "' is not allowed in " + what +
                            ", which calls a reusable workflow with 'uses': the called workflow's jobs "
                            "say where and how they run");
  WorkflowCall call;
  call.location = where(*uses);
  if (!uses->value.IsScalar()) {
    error(where(*uses), "'uses' must be a string, not " + describe(uses->value));
    return;
  }
  call.uses = uses->value.Scalar();
  auto ref = parse_uses(call.uses);
  if (!ref) {
    error(where(*uses), ref.error());
    return;
  }
  if (ref->kind == UsesRef::Kind::docker) {
    error(where(*uses), "'uses: " + call.uses + "' on a job must name a reusable workflow file, "
                        "like ./.github/workflows/build.yml; docker:// images are for steps");
    return;
  }
  if (!is_workflow_file(ref->path) || !in_workflow_folder(ref->path)) {
    error(where(*uses), "'uses: " + call.uses + "' on a job must name a workflow file in .github/workflows/ "
                        "(./.github/workflows/build.yml or owner/repo/.github/workflows/build.yml@ref); "
                        "actions are used in steps");
    return;
  }
  call.ref = *ref;
  if (const Entry* with = find(fields, "with")) {
    auto scope = job_key_scope(job.id, "with");
    if (with->value.IsScalar() && !with->value.IsNull())
      error(where(*with), "'with' must be a mapping of input names to values, not " + describe(with->value) +
                              " (GitHub does not allow an expression in its place)");
    else
      call.with = string_map(*with);
    if (with->value.IsMap())
      for (const auto& [key, location] : key_locations(with->value, call.with)) call.with_locations.push_back(location);
  }
  if (const Entry* secrets = find(fields, "secrets")) {
    auto scope = job_key_scope(job.id, "secrets");
    if (secrets->value.IsScalar() && secrets->value.Scalar() == "inherit")
      call.inherit_secrets = true;
    else if (secrets->value.IsScalar() && !secrets->value.IsNull())
      error(where(*secrets), "'secrets' must be 'inherit' or a mapping of secret names to values, not " +
                                 describe(secrets->value));
    else
      call.secrets = string_map(*secrets);
    if (secrets->value.IsMap())
      for (const auto& [key, location] : key_locations(secrets->value, call.secrets))
        call.secret_locations.push_back(location);
  }
  job.call = std::move(call);
}

}  // namespace sandci::scheduler::loader
