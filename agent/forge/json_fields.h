#pragma once
// Type-checked reads of fields from untrusted JSON: a wrong type is an error value
// naming the field, never a nlohmann exception.
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/forge/webhook.h"

namespace sandci::agent::forge {

using FieldPath = std::initializer_list<std::string_view>;

// "a.b.c" for error messages.
std::string field_name(FieldPath path);

// The value at `path`, or nullptr when a step is missing, null, or not an object.
const nlohmann::json* find_field(const nlohmann::json& root, FieldPath path);

// A string field: nullopt when missing or null, an error when of another type.
std::expected<std::optional<std::string>, WebhookError> optional_string(
    const nlohmann::json& root, FieldPath path);
// A string field that must be present and non-empty.
std::expected<std::string, WebhookError> required_string(const nlohmann::json& root,
                                                         FieldPath path);
// An integer field (JSON integer within int64): nullopt when missing or null.
std::expected<std::optional<std::int64_t>, WebhookError> optional_integer(
    const nlohmann::json& root, FieldPath path);
// A boolean field: false when missing or null.
std::expected<bool, WebhookError> optional_bool(const nlohmann::json& root, FieldPath path);

// Parses a JSON object, refusing nesting deeper than `max_depth` (deep nesting would
// make later recursive walks exhaust the stack).
std::expected<nlohmann::json, WebhookError> parse_json_object(std::string_view text,
                                                              int max_depth = 64);

}  // namespace sandci::agent::forge
