#pragma once
// Splits expression text into tokens. Follows the Actions lexer: identifiers may
// contain '-' (steps.my-step), numbers may start with '-', '+' or '.', and a
// word is read up to the next punctuation or space before it is judged.
#include <cstddef>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/expression.h"

namespace sandci::scheduler::expr {

enum class TokenKind {
  End,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Dot,
  Star,
  Not,
  Equal,
  NotEqual,
  Less,
  LessEqual,
  Greater,
  GreaterEqual,
  And,
  Or,
  Number,      // number holds the value
  String,      // text holds the unescaped value
  Identifier,  // text holds the word (keywords true/false/null are identifiers too)
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::size_t offset = 0;  // into the expression text
  std::size_t length = 0;
  std::string text;
  double number = 0;
};

// Tokens end with one End token at the text's end.
std::expected<std::vector<Token>, ExpressionError> tokenize(std::string_view text);

}  // namespace sandci::scheduler::expr
