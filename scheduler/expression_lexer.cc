#include "scheduler/expression_lexer.h"

#include <cmath>
#include <optional>

#include "scheduler/expression_value.h"

namespace sandci::scheduler::expr {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_word_char(char c) { return is_word_start(c) || is_digit(c) || c == '-'; }

// Where a word or number stops (the Actions lexer's token boundaries).
bool is_boundary(char c) {
  switch (c) {
    case '(': case ')': case '[': case ']': case ',': case '.':
    case '!': case '<': case '>': case '=': case '&': case '|':
      return true;
    default:
      return is_space(c);
  }
}

// Shortens a token for an error message so hostile input cannot flood logs.
std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 32;
  if (text.size() > kMax) return "'" + std::string(text.substr(0, kMax)) + "...'";
  return "'" + std::string(text) + "'";
}

// A '.' starts a number only where an operand is expected.
bool operand_expected(const std::vector<Token>& tokens) {
  if (tokens.empty()) return true;
  switch (tokens.back().kind) {
    case TokenKind::Comma: case TokenKind::LParen: case TokenKind::LBracket:
    case TokenKind::Not: case TokenKind::Equal: case TokenKind::NotEqual:
    case TokenKind::Less: case TokenKind::LessEqual: case TokenKind::Greater:
    case TokenKind::GreaterEqual: case TokenKind::And: case TokenKind::Or:
      return true;
    default:
      return false;
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::expected<std::vector<Token>, ExpressionError> run() {
    for (;;) {
      while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
      if (pos_ >= text_.size()) break;
      auto error = next();
      if (error) return std::unexpected(*std::move(error));
    }
    tokens_.push_back({TokenKind::End, text_.size(), 0, {}, 0});
    return std::move(tokens_);
  }

 private:
  std::optional<ExpressionError> next() {
    char c = text_[pos_];
    switch (c) {
      case '(': return add(TokenKind::LParen, 1);
      case ')': return add(TokenKind::RParen, 1);
      case '[': return add(TokenKind::LBracket, 1);
      case ']': return add(TokenKind::RBracket, 1);
      case ',': return add(TokenKind::Comma, 1);
      case '*': return add(TokenKind::Star, 1);
      case '\'': return read_string();
      case '!': return peek_is(1, '=') ? add(TokenKind::NotEqual, 2) : add(TokenKind::Not, 1);
      case '<': return peek_is(1, '=') ? add(TokenKind::LessEqual, 2) : add(TokenKind::Less, 1);
      case '>': return peek_is(1, '=') ? add(TokenKind::GreaterEqual, 2) : add(TokenKind::Greater, 1);
      case '=': return peek_is(1, '=') ? add(TokenKind::Equal, 2) : hint_error("==");
      case '&': return peek_is(1, '&') ? add(TokenKind::And, 2) : hint_error("&&");
      case '|': return peek_is(1, '|') ? add(TokenKind::Or, 2) : hint_error("||");
      case '.':
        return operand_expected(tokens_) ? read_number() : add(TokenKind::Dot, 1);
      default:
        if (c == '-' || c == '+' || is_digit(c)) return read_number();
        return read_word();
    }
  }

  bool peek_is(std::size_t ahead, char c) const {
    return pos_ + ahead < text_.size() && text_[pos_ + ahead] == c;
  }

  std::optional<ExpressionError> add(TokenKind kind, std::size_t length) {
    tokens_.push_back({kind, pos_, length, {}, 0});
    pos_ += length;
    return std::nullopt;
  }

  std::optional<ExpressionError> hint_error(std::string_view operator_text) {
    return ExpressionError{pos_, "unexpected token '" + std::string(1, text_[pos_]) +
                                     "' (did you mean '" + std::string(operator_text) + "'?)"};
  }

  std::size_t word_end(std::size_t from, bool allow_dot) const {
    std::size_t end = from;
    while (end < text_.size() && (!is_boundary(text_[end]) || (allow_dot && text_[end] == '.'))) ++end;
    return end;
  }

  std::optional<ExpressionError> read_number() {
    std::size_t end = word_end(pos_ + 1, true);
    std::string_view raw = text_.substr(pos_, end - pos_);
    double value = parse_number(raw);
    if (std::isnan(value)) return ExpressionError{pos_, "invalid number " + quote(raw)};
    tokens_.push_back({TokenKind::Number, pos_, raw.size(), {}, value});
    pos_ = end;
    return std::nullopt;
  }

  std::optional<ExpressionError> read_word() {
    std::size_t end = word_end(pos_ + 1, false);
    std::string_view raw = text_.substr(pos_, end - pos_);
    bool legal = is_word_start(raw.front());
    for (char c : raw.substr(1)) legal = legal && is_word_char(c);
    if (!legal) return ExpressionError{pos_, "unexpected token " + quote(raw)};
    tokens_.push_back({TokenKind::Identifier, pos_, raw.size(), std::string(raw), 0});
    pos_ = end;
    return std::nullopt;
  }

  // 'text' with '' as an escaped quote.
  std::optional<ExpressionError> read_string() {
    std::size_t start = pos_;
    std::string value;
    std::size_t i = pos_ + 1;
    for (;;) {
      if (i >= text_.size()) return ExpressionError{start, "unterminated string literal"};
      if (text_[i] == '\'') {
        if (i + 1 < text_.size() && text_[i + 1] == '\'') {
          value += '\'';
          i += 2;
          continue;
        }
        break;
      }
      value += text_[i++];
    }
    tokens_.push_back({TokenKind::String, start, i + 1 - start, std::move(value), 0});
    pos_ = i + 1;
    return std::nullopt;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

std::expected<std::vector<Token>, ExpressionError> tokenize(std::string_view text) {
  return Lexer(text).run();
}

}  // namespace sandci::scheduler::expr
