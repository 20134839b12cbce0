#include "scheduler/glob.h"

namespace sandci::scheduler {

bool Glob::Token::accepts(char c) const {
  switch (kind) {
    case Kind::kLiteral:
      return c == literal;
    case Kind::kAnyOne:
      return c != '/';
    case Kind::kClass:
      for (auto [lo, hi] : ranges)
        if (c >= lo && c <= hi) return true;
      return false;
    default:
      return false;  // the star kinds are matched in Glob::matches
  }
}

namespace {

// Parses "[...]" starting at pattern[i] == '['; advances i past the ']'.
std::expected<std::vector<std::pair<char, char>>, std::string> parse_class(std::string_view pattern,
                                                                            std::size_t& i) {
  std::vector<std::pair<char, char>> ranges;
  std::size_t j = i + 1;
  while (j < pattern.size() && pattern[j] != ']') {
    char lo = pattern[j];
    if (lo == '\\' && j + 1 < pattern.size()) lo = pattern[++j];
    char hi = lo;
    if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
      hi = pattern[j + 2];
      j += 2;
      if (hi < lo)
        return std::unexpected("character class range '" + std::string{lo} + "-" +
                               std::string{hi} + "' is reversed");
    }
    ranges.emplace_back(lo, hi);
    ++j;
  }
  if (j >= pattern.size()) return std::unexpected("unterminated character class '['");
  if (ranges.empty()) return std::unexpected("empty character class '[]'");
  i = j + 1;
  return ranges;
}

}  // namespace

std::expected<Glob, std::string> Glob::compile(std::string_view pattern) {
  Glob glob;
  glob.pattern_ = pattern;
  std::size_t i = 0;
  while (i < pattern.size()) {
    char c = pattern[i];
    Token token;
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        i += 2;
        while (i < pattern.size() && pattern[i] == '*') ++i;  // "***" is "**"
        // "**/" at the start or after a '/' also matches zero directories.
        bool at_segment_start = glob.tokens_.empty() || (glob.tokens_.back().kind == Kind::kLiteral &&
                                                         glob.tokens_.back().literal == '/');
        if (at_segment_start && i < pattern.size() && pattern[i] == '/') {
          ++i;
          token.kind = Kind::kAnyDirs;
        } else {
          token.kind = Kind::kDoubleStar;
        }
      } else {
        token.kind = Kind::kStar;
        ++i;
      }
      if (i < pattern.size() && pattern[i] == '+') ++i;  // "*+" is "*"
      glob.tokens_.push_back(std::move(token));
      continue;
    }
    if (c == '+' && !glob.tokens_.empty() && !glob.tokens_.back().one_or_more) {
      glob.tokens_.back().one_or_more = true;
      ++i;
      continue;
    }
    if (c == '[') {
      auto ranges = parse_class(pattern, i);
      if (!ranges) return std::unexpected(ranges.error());
      token.kind = Kind::kClass;
      token.ranges = std::move(*ranges);
    } else if (c == '?') {
      token.kind = Kind::kAnyOne;
      ++i;
    } else {
      if (c == '\\') {
        if (i + 1 >= pattern.size()) return std::unexpected("pattern ends with an escape '\\'");
        c = pattern[++i];
      }
      token.kind = Kind::kLiteral;
      token.literal = c;
      ++i;
    }
    glob.tokens_.push_back(std::move(token));
  }
  return glob;
}

bool Glob::matches(std::string_view text) const {
  // Dynamic programming from the end: next[j] says whether tokens i+1.. match
  // text[j..]; cur[j] the same for tokens i... No backtracking, so no blow-up.
  const std::size_t n = text.size();
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;
  for (std::size_t t = tokens_.size(); t-- > 0;) {
    const Token& token = tokens_[t];
    cur[n] = (token.kind == Kind::kStar || token.kind == Kind::kDoubleStar ||
              token.kind == Kind::kAnyDirs)
                 ? next[n]
                 : 0;
    // For kAnyDirs: some k > j with text[k-1] == '/' and next[k].
    bool dirs_ahead = false;
    for (std::size_t j = n; j-- > 0;) {
      const char c = text[j];
      switch (token.kind) {
        case Kind::kStar:
          cur[j] = next[j] || (c != '/' && cur[j + 1]);
          break;
        case Kind::kDoubleStar:
          cur[j] = next[j] || cur[j + 1];
          break;
        case Kind::kAnyDirs:
          if (c == '/' && next[j + 1]) dirs_ahead = true;
          cur[j] = next[j] || dirs_ahead;
          break;
        default:
          cur[j] = token.accepts(c) && (next[j + 1] || (token.one_or_more && cur[j + 1]));
          break;
      }
    }
    std::swap(cur, next);
  }
  return next[0];
}

std::vector<std::pair<std::size_t, std::string>> check_filter_patterns(
    const std::vector<std::string>& patterns) {
  std::vector<std::pair<std::size_t, std::string>> errors;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    std::string_view p = patterns[i];
    if (p.starts_with('!')) p.remove_prefix(1);
    if (p.empty()) {
      errors.emplace_back(i, "empty pattern");
      continue;
    }
    if (auto glob = Glob::compile(p); !glob) errors.emplace_back(i, glob.error());
  }
  return errors;
}

bool filter_matches(const std::vector<std::string>& patterns, std::string_view text) {
  bool matched = false;
  for (const auto& raw : patterns) {
    std::string_view p = raw;
    const bool negated = p.starts_with('!');
    if (negated) p.remove_prefix(1);
    auto glob = Glob::compile(p);
    if (glob && glob->matches(text)) matched = !negated;
  }
  return matched;
}

}  // namespace sandci::scheduler
