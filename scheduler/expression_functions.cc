// The built-in functions of Actions expressions (CallNode of expression_nodes.h).
#include <charconv>
#include <limits>

#include "scheduler/expression_nodes.h"
#include "scheduler/expression_value.h"

namespace sandci::scheduler::expr {

const std::vector<FunctionInfo>& known_functions() {
  constexpr std::size_t kMany = std::numeric_limits<std::size_t>::max();
  static const std::vector<FunctionInfo> functions = {
      {"contains", Function::Contains, 2, 2},   {"startsWith", Function::StartsWith, 2, 2},
      {"endsWith", Function::EndsWith, 2, 2},   {"format", Function::Format, 1, kMany},
      {"join", Function::Join, 1, 2},           {"toJSON", Function::ToJson, 1, 1},
      {"fromJSON", Function::FromJson, 1, 1},   {"hashFiles", Function::HashFiles, 1, kMany},
      {"success", Function::Success, 0, 0},     {"failure", Function::Failure, 0, 0},
      {"always", Function::Always, 0, 0},       {"cancelled", Function::Cancelled, 0, 0},
  };
  return functions;
}

bool is_status_function(Function function) {
  return function == Function::Success || function == Function::Failure ||
         function == Function::Always || function == Function::Cancelled;
}

namespace {

// contains(search, item): array membership by loose equality, otherwise a
// case-insensitive substring test on primitives.
bool contains(const Value& search, const Value& item) {
  if (search.is_array()) {
    for (const auto& element : search) {
      if (loose_equal(element, item)) return true;
    }
    return false;
  }
  if (!is_primitive(search) || !is_primitive(item)) return false;
  return icontains(to_display_string(search), to_display_string(item));
}

std::string too_long(std::string_view function) {
  return std::string(function) + ": result longer than " + std::to_string(kMaxResultLength) + " bytes";
}

std::expected<std::string, std::string> join(const Value& items, const std::string& separator) {
  if (is_primitive(items)) return to_display_string(items);
  if (!items.is_array()) return "";
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += separator;
    first = false;
    out += to_display_string(item);
    if (out.size() > kMaxResultLength) return std::unexpected(too_long("join()"));
  }
  return out;
}

// format('{0} and {1}', a, b) with '{{' and '}}' for literal braces.
std::expected<std::string, std::string> format(const std::string& pattern,
                                                 const std::vector<Result>& args) {
  std::string out;
  std::size_t i = 0;
  auto invalid = [&] {
    return std::unexpected("format(): invalid format string '" + pattern.substr(0, 64) +
                           (pattern.size() > 64 ? "..." : "") + "'");
  };
  while (i < pattern.size()) {
    char c = pattern[i];
    if (c == '{' && i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      i += 2;
    } else if (c == '}' && i + 1 < pattern.size() && pattern[i + 1] == '}') {
      out += '}';
      i += 2;
    } else if (c == '}') {
      return invalid();
    } else if (c == '{') {
      std::size_t close = pattern.find('}', i + 1);
      if (close == std::string::npos || close == i + 1) return invalid();
      std::size_t index = 0;
      const char* begin = pattern.data() + i + 1;
      const char* end = pattern.data() + close;
      auto [ptr, ec] = std::from_chars(begin, end, index);
      if (ec == std::errc::result_out_of_range) index = std::numeric_limits<std::size_t>::max();
      else if (ec != std::errc() || ptr != end) return invalid();
      // args[0] is the format string itself.
      if (index >= args.size() - 1) {
        return std::unexpected("format(): '{" + std::string(begin, end) + "}' refers to argument " +
                               std::string(begin, end) + " but only " +
                               std::to_string(args.size() - 1) + " were given");
      }
      out += to_display_string(args[index + 1].value());
      if (out.size() > kMaxResultLength) return std::unexpected(too_long("format()"));
      i = close + 1;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::expected<Value, std::string> from_json(const std::string& text) {
  // nlohmann prints recursively; refuse nesting that could exhaust the stack later.
  if (json_text_depth(text) > kMaxJsonDepth) {
    return std::unexpected("fromJSON(): JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                           " levels");
  }
  try {
    return Value::parse(text);
  } catch (const Value::exception& e) {  // parse_error, or out_of_range for huge numbers
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (auto close = what.find("] "); close != std::string::npos) what.erase(0, close + 2);
    // It quotes the offending token, which may be huge.
    if (what.size() > 200) what = what.substr(0, 200) + "...";
    return std::unexpected("fromJSON(): invalid JSON: " + what);
  }
}

}  // namespace

ExpressionError CallNode::error(std::string message) const { return {offset(), std::move(message)}; }

EvalResult CallNode::eval(const EvalContext& ctx) const {
  std::vector<Result> args;
  args.reserve(args_.size());
  for (const auto& arg : args_) {
    auto value = arg->eval(ctx);
    if (!value) return value;
    args.push_back(*std::move(value));
  }
  return call(ctx, args);
}

EvalResult CallNode::call(const EvalContext& ctx, std::vector<Result>& args) const {
  auto arg = [&](std::size_t i) -> const Value& { return args[i].value(); };
  const StatusFunctions& status = ctx.status;
  switch (info_.function) {
    case Function::Success:
      return Result::own(!status.any_failed && !status.cancelled);
    case Function::Failure:
      return Result::own(status.any_failed && !status.cancelled);
    case Function::Always:
      return Result::own(true);
    case Function::Cancelled:
      return Result::own(status.cancelled);
    case Function::Contains:
      return Result::own(contains(arg(0), arg(1)));
    case Function::StartsWith:
      return Result::own(is_primitive(arg(0)) && is_primitive(arg(1)) &&
                         istarts_with(to_display_string(arg(0)), to_display_string(arg(1))));
    case Function::EndsWith:
      return Result::own(is_primitive(arg(0)) && is_primitive(arg(1)) &&
                         iends_with(to_display_string(arg(0)), to_display_string(arg(1))));
    case Function::Format: {
      auto text = format(to_display_string(arg(0)), args);
      if (!text) return std::unexpected(error(text.error()));
      return Result::own(*std::move(text));
    }
    case Function::Join: {
      std::string separator = ",";
      if (args.size() > 1 && is_primitive(arg(1))) separator = to_display_string(arg(1));
      auto text = join(arg(0), separator);
      if (!text) return std::unexpected(error(text.error()));
      return Result::own(*std::move(text));
    }
    case Function::ToJson: {
      auto text = to_json_text(arg(0), 2);
      if (!text) {
        return std::unexpected(error("toJSON(): value nested deeper than " +
                                     std::to_string(kMaxJsonDepth) + " levels"));
      }
      if (text->size() > kMaxResultLength) return std::unexpected(error(too_long("toJSON()")));
      return Result::own(*std::move(text));
    }
    case Function::FromJson: {
      auto value = from_json(to_display_string(arg(0)));
      if (!value) return std::unexpected(error(value.error()));
      return Result::own(*std::move(value));
    }
    case Function::HashFiles: {
      if (!ctx.hash_files) return std::unexpected(error("hashFiles() is not available here"));
      std::vector<std::string> patterns;
      for (const auto& a : args) patterns.push_back(to_display_string(a.value()));
      auto hash = ctx.hash_files(patterns);
      if (!hash) return std::unexpected(error("hashFiles(): " + hash.error()));
      return Result::own(*std::move(hash));
    }
  }
  return std::unexpected(error("internal error: unhandled function"));
}

}  // namespace sandci::scheduler::expr
