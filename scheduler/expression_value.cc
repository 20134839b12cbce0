#include "scheduler/expression_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

namespace sandci::scheduler::expr {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// sign? (digits ('.' digits?)? | '.' digits) ([eE] sign? digits)? — what .NET's
// Double.TryParse accepts with AllowLeadingSign|AllowDecimalPoint|AllowExponent.
bool is_decimal_literal(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

double parse_decimal(std::string_view s) {
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  // from_chars is locale-independent but rejects a leading '.'; "0" in front is harmless.
  std::string buffer;
  if (s.front() == '.') {
    buffer = "0";
    buffer.append(s);
    s = buffer;
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Overflow gives infinity and underflow zero, as .NET does; tell them apart
    // by the exponent sign.
    auto e = s.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-';
    value = tiny ? 0.0 : kInf;
  } else if (ec != std::errc() || ptr != s.data() + s.size()) {
    return kNaN;
  }
  return negative ? -value : value;
}

// Actions parses hex with Int32.TryParse(AllowHexSpecifier): at most 32 bits,
// read as two's complement (0xFFFFFFFF is -1).
double parse_hex(std::string_view digits) {
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (digits.size() > 8) return kNaN;
  std::uint32_t value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
  return static_cast<double>(static_cast<std::int32_t>(value));
}

double parse_octal(std::string_view digits) {
  std::uint64_t value = 0;
  for (char c : digits) {
    value = value * 8 + static_cast<std::uint64_t>(c - '0');
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) return kNaN;
  }
  return static_cast<double>(value);
}

void normalize_numbers(Value& value) {
  if (value.is_number_float()) {
    value = make_number(value.get<double>());
  } else if (value.is_structured()) {
    for (auto& child : value) normalize_numbers(child);
  }
}

}  // namespace

Kind kind_of(const Value& value) {
  switch (value.type()) {
    case Value::value_t::boolean:
      return Kind::Boolean;
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
    case Value::value_t::number_float:
      return Kind::Number;
    case Value::value_t::string:
      return Kind::String;
    case Value::value_t::array:
      return Kind::Array;
    case Value::value_t::object:
      return Kind::Object;
    default:  // null, discarded, binary: nothing an expression can use
      return Kind::Null;
  }
}

bool is_primitive(const Value& value) {
  Kind kind = kind_of(value);
  return kind != Kind::Array && kind != Kind::Object;
}

double parse_number(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return 0.0;
  if (is_decimal_literal(s)) return parse_decimal(s);
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x' &&
      std::all_of(s.begin() + 2, s.end(), is_hex_digit)) {
    return parse_hex(s.substr(2));
  }
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o' &&
      std::all_of(s.begin() + 2, s.end(), [](char c) { return c >= '0' && c <= '7'; })) {
    return parse_octal(s.substr(2));
  }
  if (s == "Infinity") return kInf;
  if (s == "-Infinity") return -kInf;
  return kNaN;
}

double to_number(const Value& value) {
  switch (kind_of(value)) {
    case Kind::Null:
      return 0.0;
    case Kind::Boolean:
      return value.get<bool>() ? 1.0 : 0.0;
    case Kind::Number:
      return value.get<double>();
    case Kind::String:
      return parse_number(value.get_ref<const std::string&>());
    default:
      return kNaN;
  }
}

Value make_number(double number) {
  // 2^53: every integer up to here is exact in a double.
  constexpr double kExactLimit = 9007199254740992.0;
  if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= kExactLimit &&
      !(number == 0.0 && std::signbit(number))) {
    return Value(static_cast<std::int64_t>(number));
  }
  return Value(number);
}

std::string format_number(double number) {
  if (std::isnan(number)) return "NaN";
  if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
  // %.15G follows the same rules as .NET's "G15": 15 significant digits, no
  // trailing zeros, exponent form below 1E-05 or from 1E+15, two exponent digits.
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.15G", number);
  return buffer;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
  }
  return true;
}

int icompare(std::string_view a, std::string_view b) {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    auto ca = static_cast<unsigned char>(ascii_upper(a[i]));
    auto cb = static_cast<unsigned char>(ascii_upper(b[i]));
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

namespace {

// One side of a comparison after the Actions coercion: a kind, the number when
// the kind is Number, and the original value otherwise.
struct Operand {
  Kind kind;
  double number = 0;
  const Value* value;
};

Operand make_operand(const Value& value) {
  Kind kind = kind_of(value);
  return {kind, kind == Kind::Number ? value.get<double>() : 0.0, &value};
}

void to_number_operand(Operand& operand) {
  operand.number = to_number(*operand.value);
  operand.kind = Kind::Number;
}

// Mirrors the runner's CoerceTypes: number/string pairs become numbers; a boolean
// or null on either side becomes a number and coercion is retried.
void coerce(Operand& left, Operand& right) {
  for (;;) {
    if (left.kind == right.kind) return;
    if (left.kind == Kind::Number && right.kind == Kind::String) {
      to_number_operand(right);
    } else if (left.kind == Kind::String && right.kind == Kind::Number) {
      to_number_operand(left);
    } else if (left.kind == Kind::Boolean || left.kind == Kind::Null) {
      to_number_operand(left);
      continue;
    } else if (right.kind == Kind::Boolean || right.kind == Kind::Null) {
      to_number_operand(right);
      continue;
    }
    return;
  }
}

const std::string& str(const Operand& operand) {
  return operand.value->get_ref<const std::string&>();
}

}  // namespace

bool loose_equal(const Value& left_value, const Value& right_value) {
  Operand left = make_operand(left_value), right = make_operand(right_value);
  coerce(left, right);
  if (left.kind != right.kind) return false;
  switch (left.kind) {
    case Kind::Null:
      return true;
    case Kind::Number:
      return left.number == right.number;  // false when either is NaN
    case Kind::String:
      return iequals(str(left), str(right));
    case Kind::Boolean:
      return left.value->get<bool>() == right.value->get<bool>();
    case Kind::Array:
    case Kind::Object:
      return left.value == right.value;
  }
  return false;
}

bool loose_less(const Value& left_value, const Value& right_value) {
  Operand left = make_operand(left_value), right = make_operand(right_value);
  coerce(left, right);
  if (left.kind != right.kind) return false;
  switch (left.kind) {
    case Kind::Number:
      return left.number < right.number;
    case Kind::String:
      return icompare(str(left), str(right)) < 0;
    case Kind::Boolean:
      return !left.value->get<bool>() && right.value->get<bool>();
    default:
      return false;
  }
}

bool loose_greater(const Value& left, const Value& right) { return loose_less(right, left); }

const Value* find_property(const Value& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it != object.end()) return &*it;
  for (auto item = object.begin(); item != object.end(); ++item) {
    if (iequals(item.key(), key)) return &item.value();
  }
  return nullptr;
}

std::size_t nesting_depth(const Value& value, std::size_t limit) {
  std::size_t deepest = 0;
  std::vector<std::pair<const Value*, std::size_t>> pending{{&value, 0}};
  while (!pending.empty()) {
    auto [current, depth] = pending.back();
    pending.pop_back();
    if (!current->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const auto& child : *current) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

std::size_t json_text_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::optional<std::string> to_json_text(const Value& value, int indent) {
  if (nesting_depth(value, kMaxJsonDepth) > kMaxJsonDepth) return std::nullopt;
  Value copy = value;
  normalize_numbers(copy);
  return copy.dump(indent, ' ', false, Value::error_handler_t::replace);
}

}  // namespace sandci::scheduler::expr

namespace sandci::scheduler {

bool is_truthy(const Value& value) {
  switch (expr::kind_of(value)) {
    case expr::Kind::Null:
      return false;
    case expr::Kind::Boolean:
      return value.get<bool>();
    case expr::Kind::Number: {
      double number = value.get<double>();
      return number != 0.0 && !std::isnan(number);
    }
    case expr::Kind::String:
      return !value.get_ref<const std::string&>().empty();
    default:
      return true;
  }
}

std::string to_display_string(const Value& value) {
  switch (value.type()) {
    case Value::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Value::value_t::number_integer:
      return std::to_string(value.get<std::int64_t>());
    case Value::value_t::number_unsigned:
      return std::to_string(value.get<std::uint64_t>());
    case Value::value_t::number_float:
      return expr::format_number(value.get<double>());
    case Value::value_t::string:
      return value.get<std::string>();
    case Value::value_t::array:
    case Value::value_t::object: {
      // Too deep to print safely: fall back to the kind name, as Actions prints.
      auto text = expr::to_json_text(value, -1);
      return text ? *std::move(text) : (value.is_array() ? "Array" : "Object");
    }
    default:
      return "";
  }
}

}  // namespace sandci::scheduler
