// parse_event: one WebhookEvent shape from each forge's payload.
#include <algorithm>
#include <cctype>

#include "agent/forge/json_fields.h"
#include "agent/forge/webhook.h"

namespace sandci::agent::forge {
namespace {

using nlohmann::json;

constexpr std::string_view kZeroSha = "0000000000000000000000000000000000000000";

// Reads fields and keeps the first error, so a parser reads every field it needs and
// checks once instead of after each read.
class FieldReader {
 public:
  explicit FieldReader(const json& root) : root_(root) {}

  // "" when missing or null.
  std::string text(FieldPath path) {
    auto value = optional_string(root_, path);
    if (!value) return fail(value.error()), std::string();
    return value->value_or("");
  }
  std::string required_text(FieldPath path) {
    auto value = required_string(root_, path);
    if (!value) return fail(value.error()), std::string();
    return *value;
  }
  // A commit sha: 40 hex digits, returned in lowercase.
  std::string sha(FieldPath path, bool required = true) {
    std::string value = required ? required_text(path) : text(path);
    if (value.empty()) return value;
    const bool hex = value.size() == 40 && std::all_of(value.begin(), value.end(), [](char c) {
                       return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                     });
    if (!hex) return fail(WebhookError{field_name(path) + " is not a 40-digit hex sha"}), "";
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return value;
  }
  std::optional<std::int64_t> integer(FieldPath path) {
    auto value = optional_integer(root_, path);
    if (!value) return fail(value.error()), std::nullopt;
    return *value;
  }
  std::optional<std::int64_t> positive_integer(FieldPath path) {
    auto value = integer(path);
    if (!value) {
      if (!error_) fail(WebhookError{"no " + field_name(path)});
      return std::nullopt;
    }
    if (*value <= 0) return fail(WebhookError{field_name(path) + " is not positive"}), std::nullopt;
    return value;
  }
  bool boolean(FieldPath path) {
    auto value = optional_bool(root_, path);
    if (!value) return fail(value.error()), false;
    return *value;
  }
  // The value at `path` when it is an array; an error when it is something else.
  const json* array(FieldPath path) {
    const json* node = find_field(root_, path);
    if (node != nullptr && !node->is_array()) {
      fail(WebhookError{field_name(path) + " is not an array"});
      return nullptr;
    }
    return node;
  }
  bool present(FieldPath path) const { return find_field(root_, path) != nullptr; }

  const std::optional<WebhookError>& error() const { return error_; }

 private:
  void fail(WebhookError error) {
    if (!error_) error_ = std::move(error);
  }

  const json& root_;
  std::optional<WebhookError> error_;
};

std::string short_ref(std::string_view ref) {
  for (std::string_view prefix : {"refs/heads/", "refs/tags/"}) {
    if (ref.starts_with(prefix)) return std::string(ref.substr(prefix.size()));
  }
  return std::string(ref);
}

std::string deletion_reason(std::string_view ref) {
  const char* what = ref.starts_with("refs/tags/") ? "tag" : "branch";
  return std::string(what) + " '" + short_ref(ref) + "' deleted";
}

bool builds(std::string_view pr_action) {
  return pr_action == "opened" || pr_action == "synchronize" || pr_action == "reopened";
}

std::string not_built(std::string_view event) {
  return "event '" + std::string(event) + "' is not built";
}

WebhookEvent base_event(const WebhookEnvelope& envelope) {
  WebhookEvent event;
  event.forge = envelope.forge;
  event.delivery_id = envelope.delivery_id;
  event.repository = envelope.repository;
  event.project_id = envelope.project_id;
  return event;
}

// --- GitHub, Gitea, Forgejo -------------------------------------------------------

std::expected<WebhookEvent, WebhookError> finish(WebhookEvent event, const FieldReader& reader) {
  if (reader.error()) return std::unexpected(*reader.error());
  return event;
}

std::expected<WebhookEvent, WebhookError> parse_github_push(WebhookEvent event,
                                                            const json& body) {
  FieldReader read(body);
  event.kind = EventKind::push;
  event.event_name = "push";
  event.ref = read.required_text({"ref"});
  event.sha = read.sha({"after"});
  event.before = read.sha({"before"}, false);
  event.clone_url = read.text({"repository", "clone_url"});
  event.sender = read.text({"sender", "login"});
  if (event.sender.empty()) event.sender = read.text({"pusher", "name"});
  event.commit_message = read.text({"head_commit", "message"});
  const bool deleted = read.boolean({"deleted"});
  if (deleted || event.sha == kZeroSha) event.ignored = deletion_reason(event.ref);
  return finish(std::move(event), read);
}

std::expected<WebhookEvent, WebhookError> parse_github_pull_request(WebhookEvent event,
                                                                    const json& body) {
  FieldReader read(body);
  event.kind = EventKind::pull_request;
  event.event_name = "pull_request";
  event.action = read.required_text({"action"});
  // Gitea and Forgejo say "synchronized" where GitHub says "synchronize".
  if (event.action == "synchronized") event.action = "synchronize";
  event.number = read.present({"number"}) ? read.positive_integer({"number"})
                                          : read.positive_integer({"pull_request", "number"});
  event.sha = read.sha({"pull_request", "head", "sha"});
  event.head_ref = read.required_text({"pull_request", "head", "ref"});
  event.base_ref = read.required_text({"pull_request", "base", "ref"});
  event.clone_url = read.text({"repository", "clone_url"});
  event.head_clone_url = read.text({"pull_request", "head", "repo", "clone_url"});
  // A deleted fork leaves head.repo null: the head is then only reachable through the
  // base repository's pull ref, as for any fork.
  const std::string head_repository = read.text({"pull_request", "head", "repo", "full_name"});
  event.from_fork = head_repository != event.repository;
  event.sender = read.text({"sender", "login"});
  if (event.number) event.ref = "refs/pull/" + std::to_string(*event.number) + "/head";
  if (!builds(event.action)) {
    event.ignored = "pull request action '" + event.action + "' is not built";
  }
  return finish(std::move(event), read);
}

std::expected<WebhookEvent, WebhookError> parse_github_like(const WebhookEnvelope& envelope) {
  WebhookEvent event = base_event(envelope);
  event.payload = envelope.body;
  if (envelope.event == "push") return parse_github_push(std::move(event), envelope.body);
  if (envelope.event == "pull_request") {
    return parse_github_pull_request(std::move(event), envelope.body);
  }
  FieldReader read(envelope.body);
  event.event_name = envelope.event;
  event.sender = read.text({"sender", "login"});
  if (envelope.event == "ping") {
    event.kind = EventKind::ping;
    event.ignored = "ping";
  } else {
    event.kind = EventKind::other;
    event.ignored = not_built(envelope.event);
  }
  return finish(std::move(event), read);
}

// --- GitLab -----------------------------------------------------------------------

json gitlab_repository(const WebhookEvent& event, const json& body) {
  FieldReader read(body);
  std::string full_name = event.repository;
  const std::size_t slash = full_name.rfind('/');
  json repository = {
      {"full_name", full_name},
      {"name", slash == std::string::npos ? full_name : full_name.substr(slash + 1)},
      {"owner", {{"login", slash == std::string::npos ? "" : full_name.substr(0, slash)}}},
      {"clone_url", event.clone_url},
      {"html_url", read.text({"project", "web_url"})},
      {"default_branch", read.text({"project", "default_branch"})},
  };
  if (event.project_id) repository["id"] = *event.project_id;
  return repository;
}

json gitlab_commit(const json& commit) {
  FieldReader read(commit);
  return {
      {"id", read.text({"id"})},
      {"message", read.text({"message"})},
      {"timestamp", read.text({"timestamp"})},
      {"url", read.text({"url"})},
      {"author", {{"name", read.text({"author", "name"})}, {"email", read.text({"author", "email"})}}},
  };
}

std::expected<WebhookEvent, WebhookError> parse_gitlab_push(WebhookEvent event,
                                                            const json& body) {
  FieldReader read(body);
  event.kind = EventKind::push;
  event.event_name = "push";
  event.ref = read.required_text({"ref"});
  const std::string after = read.sha({"after"});
  // For a tag, `after` may name the tag object; checkout_sha is the commit (null when the
  // ref was deleted).
  const std::string checkout = read.sha({"checkout_sha"}, false);
  event.sha = checkout.empty() ? after : checkout;
  event.before = read.sha({"before"}, false);
  event.clone_url = read.text({"project", "git_http_url"});
  if (event.clone_url.empty()) event.clone_url = read.text({"repository", "git_http_url"});
  event.sender = read.text({"user_username"});
  if (!event.project_id) event.project_id = read.integer({"project_id"});
  json commits = json::array();
  json head_commit = nullptr;
  if (const json* list = read.array({"commits"})) {
    for (const json& commit : *list) {
      if (!commit.is_object()) continue;
      commits.push_back(gitlab_commit(commit));
      if (commits.back()["id"] == event.sha) head_commit = commits.back();
    }
  }
  if (head_commit.is_object()) event.commit_message = head_commit["message"].get<std::string>();
  if (after == kZeroSha) event.ignored = deletion_reason(event.ref);
  if (read.error()) return std::unexpected(*read.error());

  event.payload = {
      {"ref", event.ref},
      {"before", event.before},
      {"after", event.sha},
      {"created", event.before == kZeroSha},
      {"deleted", after == kZeroSha},
      {"forced", false},
      {"repository", gitlab_repository(event, body)},
      {"head_commit", head_commit},
      {"commits", commits},
      {"pusher", {{"name", read.text({"user_name"})}, {"email", read.text({"user_email"})}}},
      {"sender", {{"login", event.sender}}},
      {"gitlab", body},
  };
  return event;
}

// GitLab's merge request actions under GitHub's pull_request names. An update without
// `oldrev` changed the title, labels or the like, not the commits: GitHub's "edited".
std::string github_action(std::string_view gitlab_action, bool new_commits) {
  if (gitlab_action == "open") return "opened";
  if (gitlab_action == "reopen") return "reopened";
  if (gitlab_action == "close" || gitlab_action == "merge") return "closed";
  if (gitlab_action == "update") return new_commits ? "synchronize" : "edited";
  return std::string(gitlab_action);
}

std::expected<WebhookEvent, WebhookError> parse_gitlab_merge_request(WebhookEvent event,
                                                                     const json& body) {
  FieldReader read(body);
  event.kind = EventKind::pull_request;
  event.event_name = "pull_request";
  const std::string gitlab_action = read.text({"object_attributes", "action"});
  const bool new_commits = !read.text({"object_attributes", "oldrev"}).empty();
  event.action = github_action(gitlab_action, new_commits);
  event.number = read.positive_integer({"object_attributes", "iid"});
  event.sha = read.sha({"object_attributes", "last_commit", "id"});
  event.commit_message = read.text({"object_attributes", "last_commit", "message"});
  event.head_ref = read.required_text({"object_attributes", "source_branch"});
  event.base_ref = read.required_text({"object_attributes", "target_branch"});
  event.clone_url = read.text({"project", "git_http_url"});
  event.head_clone_url = read.text({"object_attributes", "source", "git_http_url"});
  if (event.head_clone_url.empty()) event.head_clone_url = event.clone_url;
  const auto source_id = read.integer({"object_attributes", "source_project_id"});
  const auto target_id = read.integer({"object_attributes", "target_project_id"});
  if (source_id && target_id) {
    event.from_fork = *source_id != *target_id;
  } else {
    const std::string source_path =
        read.text({"object_attributes", "source", "path_with_namespace"});
    event.from_fork = !source_path.empty() && source_path != event.repository;
  }
  event.sender = read.text({"user", "username"});
  if (event.number) {
    event.ref = "refs/merge-requests/" + std::to_string(*event.number) + "/head";
  }
  if (!builds(event.action)) {
    event.ignored = "pull request action '" + event.action + "' is not built";
  }
  if (read.error()) return std::unexpected(*read.error());

  const std::string head_repository =
      event.from_fork ? read.text({"object_attributes", "source", "path_with_namespace"})
                      : event.repository;
  json pull_request = {
      {"number", *event.number},
      {"title", read.text({"object_attributes", "title"})},
      {"html_url", read.text({"object_attributes", "url"})},
      {"state", read.text({"object_attributes", "state"})},
      {"merged", gitlab_action == "merge"},
      {"head",
       {{"ref", event.head_ref},
        {"sha", event.sha},
        {"repo", {{"full_name", head_repository}, {"clone_url", event.head_clone_url}}}}},
      {"base",
       {{"ref", event.base_ref},
        {"repo", {{"full_name", event.repository}, {"clone_url", event.clone_url}}}}},
  };
  event.payload = {
      {"action", event.action},
      {"number", *event.number},
      {"pull_request", std::move(pull_request)},
      {"repository", gitlab_repository(event, body)},
      {"sender", {{"login", event.sender}}},
      {"gitlab", body},
  };
  return event;
}

std::expected<WebhookEvent, WebhookError> parse_gitlab(const WebhookEnvelope& envelope) {
  WebhookEvent event = base_event(envelope);
  FieldReader read(envelope.body);
  const std::string kind = read.required_text({"object_kind"});
  if (read.error()) return std::unexpected(*read.error());
  if (kind == "push" || kind == "tag_push") {
    return parse_gitlab_push(std::move(event), envelope.body);
  }
  if (kind == "merge_request") return parse_gitlab_merge_request(std::move(event), envelope.body);
  event.kind = EventKind::other;
  event.event_name = kind;
  event.sender = read.text({"user", "username"});
  if (event.sender.empty()) event.sender = read.text({"user_username"});
  event.ignored = not_built(envelope.event);
  event.payload = {{"gitlab", envelope.body}};
  return finish(std::move(event), read);
}

}  // namespace

std::expected<WebhookEvent, WebhookError> parse_event(const WebhookEnvelope& envelope) {
  if (!envelope.body.is_object()) return std::unexpected(WebhookError{"body is not a JSON object"});
  try {
    return envelope.forge == ForgeKind::gitlab ? parse_gitlab(envelope)
                                               : parse_github_like(envelope);
  } catch (const nlohmann::json::exception& e) {
    // The readers check types before every access; this is a last line of defence so
    // that no payload can take the daemon down.
    return std::unexpected(WebhookError{std::string("malformed payload: ") + e.what()});
  }
}

}  // namespace sandci::agent::forge
