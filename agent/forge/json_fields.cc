#include "agent/forge/json_fields.h"

#include <algorithm>
#include <limits>

#include "agent/forge/codec.h"

namespace sandci::agent::forge {
namespace {

WebhookError wrong_type(FieldPath path, std::string_view expected) {
  return WebhookError{field_name(path) + " is not " + std::string(expected)};
}

// Deepest nesting of arrays and objects in `text`, ignoring brackets inside strings.
int nesting_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

std::string field_name(FieldPath path) {
  std::string name;
  for (std::string_view step : path) {
    if (!name.empty()) name += '.';
    name += step;
  }
  return name;
}

const nlohmann::json* find_field(const nlohmann::json& root, FieldPath path) {
  const nlohmann::json* node = &root;
  for (std::string_view step : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(step);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node->is_null() ? nullptr : node;
}

std::expected<std::optional<std::string>, WebhookError> optional_string(
    const nlohmann::json& root, FieldPath path) {
  const nlohmann::json* node = find_field(root, path);
  if (node == nullptr) return std::optional<std::string>{};
  if (!node->is_string()) return std::unexpected(wrong_type(path, "a string"));
  return std::optional<std::string>{node->get_ref<const std::string&>()};
}

std::expected<std::string, WebhookError> required_string(const nlohmann::json& root,
                                                         FieldPath path) {
  auto value = optional_string(root, path);
  if (!value) return std::unexpected(value.error());
  if (!*value || (*value)->empty()) return std::unexpected(WebhookError{"no " + field_name(path)});
  return std::move(**value);
}

std::expected<std::optional<std::int64_t>, WebhookError> optional_integer(
    const nlohmann::json& root, FieldPath path) {
  const nlohmann::json* node = find_field(root, path);
  if (node == nullptr) return std::optional<std::int64_t>{};
  if (node->is_number_unsigned()) {
    const auto value = node->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::unexpected(WebhookError{field_name(path) + " is out of range"});
    }
    return std::optional<std::int64_t>{static_cast<std::int64_t>(value)};
  }
  if (node->is_number_integer()) return std::optional<std::int64_t>{node->get<std::int64_t>()};
  return std::unexpected(wrong_type(path, "an integer"));
}

std::expected<bool, WebhookError> optional_bool(const nlohmann::json& root, FieldPath path) {
  const nlohmann::json* node = find_field(root, path);
  if (node == nullptr) return false;
  if (!node->is_boolean()) return std::unexpected(wrong_type(path, "a boolean"));
  return node->get<bool>();
}

std::expected<nlohmann::json, WebhookError> parse_json_object(std::string_view text,
                                                              int max_depth) {
  if (nesting_depth(text) > max_depth) {
    return std::unexpected(WebhookError{"body is nested too deeply"});
  }
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::string message = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix: it means nothing to a sender.
    if (auto end = message.find("] "); message.starts_with("[json.exception") &&
                                       end != std::string::npos) {
      message.erase(0, end + 2);
    }
    return std::unexpected(WebhookError{"body is not JSON: " + truncate_utf8(message, 160)});
  }
  if (!parsed.is_object()) return std::unexpected(WebhookError{"body is not a JSON object"});
  return parsed;
}

}  // namespace sandci::agent::forge
