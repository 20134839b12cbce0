#pragma once
// Value semantics of GitHub Actions expressions, shared by the evaluator and the
// public helpers in expression.h: number parsing and display, loose equality and
// ordering with the Actions coercion rules, case-insensitive string matching and
// depth-guarded JSON output.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "scheduler/expression.h"

namespace sandci::scheduler::expr {

enum class Kind { Null, Boolean, Number, String, Array, Object };

Kind kind_of(const Value& value);
bool is_primitive(const Value& value);

// JavaScript Number()-like conversion used for coercion: trims whitespace, "" -> 0,
// decimal with optional sign and exponent, 0x.. (32-bit, as Actions), 0o..,
// "Infinity"/"-Infinity"; anything else -> NaN.
double parse_number(std::string_view text);
// null -> 0, bool -> 1/0, string -> parse_number, array/object -> NaN.
double to_number(const Value& value);
// Integral doubles that fit exactly become JSON integers, so they print without ".0".
Value make_number(double number);
// Actions number display: integers as such, other numbers like .NET "G15"
// (15 significant digits), NaN, Infinity, -Infinity.
std::string format_number(double number);

// ASCII case-insensitive (Actions uses OrdinalIgnoreCase).
bool iequals(std::string_view a, std::string_view b);
int icompare(std::string_view a, std::string_view b);
bool icontains(std::string_view haystack, std::string_view needle);
bool istarts_with(std::string_view text, std::string_view prefix);
bool iends_with(std::string_view text, std::string_view suffix);

// Loose equality and ordering (`==`, `<`, ...). Objects and arrays are equal only
// when they are the same value (same address), as Actions compares references.
bool loose_equal(const Value& left, const Value& right);
bool loose_less(const Value& left, const Value& right);
bool loose_greater(const Value& left, const Value& right);

// Looks a property up: exact key first, then ASCII case-insensitively (Actions
// contexts are case-insensitive). nullptr when missing.
const Value* find_property(const Value& object, std::string_view key);

// Deepest nesting of arrays/objects, computed without recursion (input may be
// hostile); stops counting once above `limit`.
std::size_t nesting_depth(const Value& value, std::size_t limit);
// Nesting depth of JSON text (brackets outside strings), without parsing it.
std::size_t json_text_depth(std::string_view text);

inline constexpr std::size_t kMaxJsonDepth = 512;

// JSON text with integral floats printed as integers and invalid UTF-8 replaced;
// indent < 0 means compact. nullopt when the value is nested deeper than
// kMaxJsonDepth (printing is recursive).
std::optional<std::string> to_json_text(const Value& value, int indent);

}  // namespace sandci::scheduler::expr
