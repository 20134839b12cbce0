#include "scheduler/workflow_loader.h"

#include <algorithm>
#include <fstream>
#include <tuple>

#include "scheduler/did_you_mean.h"
#include "scheduler/loader_parser.h"
#include "scheduler/yaml_source.h"

// The parser's sections live in loader_*.cc; this file holds the top of the
// workflow, the sections workflow and jobs share, and reading files and folders.
namespace sandci::scheduler {
namespace loader {

// ---- workflow-level sections ---------------------------------------------------

RunDefaults WorkflowParser::parse_defaults(const Entry& e) {
  RunDefaults defaults;
  auto fields = mapping(e.value, "'defaults'", KeyPlace::defaults);
  if (const Entry* run = find(fields, "run")) {
    auto run_fields = mapping(run->value, "'defaults.run'", KeyPlace::run_defaults);
    if (const Entry* s = find(run_fields, "shell")) defaults.shell = string_of(*s).value_or("");
    if (const Entry* w = find(run_fields, "working-directory"))
      defaults.working_directory = string_of(*w).value_or("");
  }
  return defaults;
}

Concurrency WorkflowParser::parse_concurrency(const Entry& e) {
  Concurrency concurrency;
  if (e.value.IsScalar()) {
    check_expressions(e.value);
    concurrency.group = e.value.Scalar();
    return concurrency;
  }
  auto fields = mapping(e.value, "'concurrency'", KeyPlace::concurrency);
  if (const Entry* g = find(fields, "group"))
    concurrency.group = string_of(*g).value_or("");
  else if (e.value.IsMap())
    error(where(e), "'concurrency' needs a 'group'");
  if (const Entry* c = find(fields, "cancel-in-progress"))
    concurrency.cancel_in_progress = bool_or_expression(*c);
  return concurrency;
}

void WorkflowParser::check_permissions(const Entry& e) {
  if (e.value.IsNull()) return;
  if (e.value.IsScalar()) {
    const std::string& level = e.value.Scalar();
    if (level != "read-all" && level != "write-all")
      error(where(e), "'permissions' must be read-all, write-all or a mapping of scopes, not " +
                          describe(e.value));
    return;
  }
  const auto scopes = permission_scopes();
  for (const auto& scope : mapping(e.value, "'permissions'")) {
    if (!contains(scopes, scope.key)) {
      // GitHub adds scopes now and then (artifact-metadata, models): an unknown one is
      // as meaningless here as the known ones, so it is noted, never refused.
      note(scope.key_node, "permission scope '" + scope.key + "' is not one sandci knows" +
                               did_you_mean(scope.key, scopes) + "; ignored like the others");
      continue;
    }
    const std::string level = scope.value.IsScalar() ? scope.value.Scalar() : "";
    if (level != "read" && level != "write" && level != "none")
      error(where(scope), "permission '" + scope.key + "' must be read, write or none, not " +
                              describe(scope.value));
    else if (scope.key == "id-token")
      note(scope.key_node, "'id-token' is ignored: sandci issues no OIDC tokens");
  }
}

std::optional<Workflow> WorkflowParser::parse(const YAML::Node& root) {
  Workflow workflow;
  workflow.file = source_.file();
  auto fields = mapping(root, "the workflow", KeyPlace::workflow);
  if (!root.IsMap()) return std::nullopt;
  for (const auto& f : fields) {
    // Workflow-level rows are named by the key alone (run-name, env, concurrency).
    auto scope = scoped(f.key, f.key);
    if (f.key == "name")
      workflow.name = string_of(f).value_or("");
    else if (f.key == "run-name")
      workflow.run_name = string_of(f).value_or("");
    else if (f.key == "permissions")
      check_permissions(f);
    else if (f.key == "on")
      parse_on(f, workflow.on);
    else if (f.key == "env")
      workflow.env = string_map(f);
    else if (f.key == "defaults")
      workflow.defaults = parse_defaults(f);
    else if (f.key == "concurrency")
      workflow.concurrency = parse_concurrency(f);
    else if (f.key == "jobs")
      parse_jobs(f, workflow);
  }
  if (!find(fields, "on")) error(root, "the workflow has no 'on': name the events that run it");
  if (!find(fields, "jobs")) error(root, "the workflow has no 'jobs'");
  if (errors_ > 0) return std::nullopt;
  return workflow;
}

}  // namespace loader

namespace {

void sort_diagnostics(Diagnostics& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.location.file, a.location.line, a.location.column) <
           std::tie(b.location.file, b.location.line, b.location.column);
  });
}

// Reads at most `limit` bytes; a larger file is refused without reading it all.
std::optional<std::string> read_file(const std::filesystem::path& path, const std::string& name,
                                     std::size_t limit, Diagnostics& out) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    out.push_back({{name, 0, 0}, "cannot read the file: " + ec.message()});
    return std::nullopt;
  }
  if (size > limit) {
    out.push_back({{name, 0, 0}, "the file is " + std::to_string(size) +
                                     " bytes; workflow files are limited to " +
                                     std::to_string(limit) + " bytes"});
    return std::nullopt;
  }
  std::ifstream in{path, std::ios::binary};
  // Read one byte more than allowed so a file that grew meanwhile is still caught.
  std::string text(limit + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit + 1));
  if (in.bad()) {
    out.push_back({{name, 0, 0}, "cannot read the file"});
    return std::nullopt;
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > limit) {
    out.push_back({{name, 0, 0}, "the file is larger than the limit of " + std::to_string(limit) +
                                     " bytes"});
    return std::nullopt;
  }
  return text;
}

bool has_workflow_extension(const std::filesystem::path& path) {
  const auto ext = path.extension();
  return ext == ".yml" || ext == ".yaml";
}

bool is_symbolic_link(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() == std::filesystem::file_type::symlink;
}

// A repository is untrusted input: a workflow folder or file that is a symbolic
// link could make the agent read (and quote in errors) a file outside the checkout.
std::optional<std::string> symlinked_component(const std::filesystem::path& root,
                                               const std::string& relative) {
  std::filesystem::path path = root;
  for (const auto& part : std::filesystem::path{relative}) {
    path /= part;
    if (is_symbolic_link(path)) return path.lexically_normal().string();
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& workflow_directories() {
  static const std::vector<std::string> dirs{".sandci/workflows", ".forgejo/workflows",
                                             ".gitea/workflows", ".github/workflows"};
  return dirs;
}

std::optional<Workflow> parse_workflow(std::string_view text, const std::string& file,
                                       Diagnostics& diagnostics, const LoaderLimits& limits) {
  Diagnostics local;
  std::optional<Workflow> workflow;
  if (text.size() > limits.max_file_bytes) {
    local.push_back({{file, 0, 0}, "the file is " + std::to_string(text.size()) +
                                       " bytes; workflow files are limited to " +
                                       std::to_string(limits.max_file_bytes) + " bytes"});
  } else {
    YamlSource source{text, file};
    if (auto root = source.parse({limits.max_depth, limits.max_nodes, limits.max_expanded_nodes},
                                 local)) {
      try {
        loader::WorkflowParser parser{source, local};
        workflow = parser.parse(*root);
      } catch (const std::exception& e) {
        // yaml-cpp conversions should not throw on checked nodes; never let one escape.
        local.push_back({{file, 0, 0}, std::string{"internal error while validating: "} + e.what()});
        workflow.reset();
      }
    }
  }
  sort_diagnostics(local);
  diagnostics.insert(diagnostics.end(), local.begin(), local.end());
  return workflow;
}

LoadResult load_workflow_file(const std::filesystem::path& file, const LoaderLimits& limits) {
  LoadResult result;
  const std::string name = file.string();
  result.files.push_back(name);
  if (auto text = read_file(file, name, limits.max_file_bytes, result.diagnostics))
    if (auto workflow = parse_workflow(*text, name, result.diagnostics, limits))
      result.workflows.push_back(std::move(*workflow));
  return result;
}

LoadResult load_workflows(const std::filesystem::path& root, const LoaderLimits& limits) {
  LoadResult result;
  std::error_code ec;
  for (const auto& dir : workflow_directories()) {
    if (!std::filesystem::is_directory(root / dir, ec)) continue;
    result.directory = (root / dir).lexically_normal().string();
    if (auto link = symlinked_component(root, dir)) {
      result.diagnostics.push_back(
          {{*link, 0, 0}, "is a symbolic link; workflow folders must be real folders"});
      break;
    }
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(root / dir, ec)) {
      std::error_code type_ec;
      if (has_workflow_extension(entry.path()) &&
          (entry.is_regular_file(type_ec) || entry.is_symlink(type_ec)))
        paths.push_back(entry.path());
    }
    if (ec)
      result.diagnostics.push_back({{result.directory, 0, 0}, "cannot list the folder: " + ec.message()});
    std::sort(paths.begin(), paths.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    for (const auto& path : paths) {
      if (is_symbolic_link(path)) {
        const std::string name = path.lexically_normal().string();
        result.files.push_back(name);
        result.diagnostics.push_back(
            {{name, 0, 0}, "is a symbolic link; workflow files must be regular files"});
        continue;
      }
      auto one = load_workflow_file(path.lexically_normal(), limits);
      result.files.insert(result.files.end(), one.files.begin(), one.files.end());
      for (auto& w : one.workflows) result.workflows.push_back(std::move(w));
      result.diagnostics.insert(result.diagnostics.end(), one.diagnostics.begin(),
                                one.diagnostics.end());
    }
    break;
  }
  sort_diagnostics(result.diagnostics);
  return result;
}

}  // namespace sandci::scheduler
