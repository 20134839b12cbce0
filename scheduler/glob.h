#pragma once
// GitHub Actions filter patterns (branches, tags, paths):
//   *   any run of characters except '/'
//   **  any run of characters including '/'; a leading "**/" may also match nothing
//   ?   exactly one character except '/'
//   +   one or more of the preceding character or class
//   []  one character of a class: [abc], [a-z0-9]
//   \   takes the next character literally
// A pattern list is evaluated in order; a pattern starting with '!' negates, and
// later patterns override earlier ones.
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::scheduler {

class Glob {
 public:
  // Compiles one pattern (without a leading '!'); errors are messages such as
  // "unterminated character class".
  static std::expected<Glob, std::string> compile(std::string_view pattern);

  // Whole-string match. Runs in O(pattern length x text length).
  bool matches(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  enum class Kind { kLiteral, kClass, kAnyOne, kStar, kDoubleStar, kAnyDirs };
  struct Token {
    Kind kind = Kind::kLiteral;
    char literal = 0;
    std::vector<std::pair<char, char>> ranges;  // kClass: inclusive ranges
    bool one_or_more = false;                   // followed by '+'
    bool accepts(char c) const;
  };

  std::string pattern_;
  std::vector<Token> tokens_;
};

// Checks a filter list: every pattern compiles. Returns one message per bad pattern,
// prefixed with the pattern's index in the list.
std::vector<std::pair<std::size_t, std::string>> check_filter_patterns(
    const std::vector<std::string>& patterns);

// True when the last pattern in `patterns` that matches `text` is a positive one
// (no leading '!'). Patterns that do not compile never match.
bool filter_matches(const std::vector<std::string>& patterns, std::string_view text);

}  // namespace sandci::scheduler
