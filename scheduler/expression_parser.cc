// Recursive-descent parser for Actions expressions (parse_expression of
// expression.h). Precedence, loosest first: ||, &&, == !=, < <= > >=, !, then
// property access and calls. Every nesting level (parentheses, !, calls,
// indexes) counts against kMaxExpressionDepth so hostile input cannot overflow
// the stack while parsing, evaluating or destroying the tree.
#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string_view>

#include "scheduler/expression.h"
#include "scheduler/expression_lexer.h"
#include "scheduler/expression_nodes.h"
#include "scheduler/expression_value.h"

namespace sandci::scheduler {
namespace {

using expr::Accessor;
using expr::CompareOp;
using expr::NodePtr;
using expr::Token;
using expr::TokenKind;

constexpr std::array<std::string_view, 11> kContexts = {
    "github", "env",   "vars", "matrix", "needs",   "steps",
    "secrets", "inputs", "job", "runner", "strategy"};

// Case-insensitive Levenshtein distance (names are short; the word is cut to
// 64 characters so a hostile 64 KiB word stays cheap).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  a = a.substr(0, 64);
  std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t substitute = previous[j - 1] + (expr::iequals(a.substr(i - 1, 1), b.substr(j - 1, 1)) ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within a typo's reach.
template <typename Names>
std::string did_you_mean(std::string_view word, const Names& candidates, std::string_view suffix = "") {
  std::string_view best;
  std::size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    std::size_t distance = edit_distance(word, candidate);
    std::size_t reach = candidate.size() <= 4 ? 1 : 2;
    if (distance <= reach && (best.empty() || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best.empty()) return "";
  return " (did you mean '" + std::string(best) + std::string(suffix) + "'?)";
}

std::vector<std::string_view> function_names() {
  std::vector<std::string_view> names;
  for (const auto& info : expr::known_functions()) names.emplace_back(info.name);
  return names;
}

const expr::FunctionInfo* find_function(std::string_view name) {
  for (const auto& info : expr::known_functions()) {
    if (expr::iequals(info.name, name)) return &info;
  }
  return nullptr;
}

std::optional<std::string_view> find_context(std::string_view name) {
  for (std::string_view context : kContexts) {
    if (expr::iequals(context, name)) return context;
  }
  return std::nullopt;
}

std::string arity_message(const expr::FunctionInfo& info, std::size_t got) {
  auto plural = [](std::size_t n) { return std::to_string(n) + (n == 1 ? " argument" : " arguments"); };
  std::string name = std::string(info.name) + "()";
  std::string expected;
  if (info.max_args == 0) {
    expected = "takes no arguments";
  } else if (info.min_args == info.max_args) {
    expected = "takes " + plural(info.min_args);
  } else if (info.max_args == std::numeric_limits<std::size_t>::max()) {
    expected = "takes at least " + plural(info.min_args);
  } else {
    expected = "takes " + std::to_string(info.min_args) + " to " + plural(info.max_args);
  }
  return name + " " + expected + ", got " + std::to_string(got);
}

class ParsedExpression : public Expression {
 public:
  ParsedExpression(NodePtr root, bool uses_status) : root_(std::move(root)), uses_status_(uses_status) {}

  std::expected<Value, ExpressionError> evaluate(const EvalContext& ctx) const override {
    auto result = root_->eval(ctx);
    if (!result) return std::unexpected(std::move(result.error()));
    return std::move(*result).take();
  }

  bool uses_status_function() const override { return uses_status_; }

 private:
  NodePtr root_;
  bool uses_status_;
};

class Parser {
 public:
  using NodeResult = std::expected<NodePtr, ExpressionError>;

  Parser(std::string_view text, std::vector<Token> tokens) : text_(text), tokens_(std::move(tokens)) {}

  NodeResult parse() {
    if (peek().kind == TokenKind::End) return std::unexpected(ExpressionError{0, "expected an expression"});
    auto root = parse_or();
    if (!root) return root;
    if (peek().kind != TokenKind::End) return std::unexpected(unexpected(peek()));
    return root;
  }

  bool uses_status_function() const { return uses_status_; }

 private:
  // Counts one nesting level for as long as it lives.
  class Nesting {
   public:
    explicit Nesting(std::size_t& depth) : depth_(depth) { ++depth_; }
    ~Nesting() { --depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    bool too_deep() const { return depth_ > kMaxExpressionDepth; }

   private:
    std::size_t& depth_;
  };

  ExpressionError too_deep(const Token& at) const {
    return {at.offset, "expression nested too deeply (limit " + std::to_string(kMaxExpressionDepth) + " levels)"};
  }

  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& token = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return token;
  }

  ExpressionError unexpected(const Token& token) const {
    if (token.kind == TokenKind::End) return {token.offset, "unexpected end of expression"};
    std::string_view raw = text_.substr(token.offset, token.length);
    std::string shown = raw.size() > 32 ? std::string(raw.substr(0, 32)) + "..." : std::string(raw);
    return {token.offset, "unexpected token '" + shown + "'"};
  }

  std::optional<ExpressionError> expect(TokenKind kind) {
    if (peek().kind != kind) return unexpected(peek());
    next();
    return std::nullopt;
  }

  NodeResult parse_or() { return parse_logical(TokenKind::Or); }

  // `a && b && c` (is_and) or `a || b || c`, stored flat.
  NodeResult parse_logical(TokenKind op) {
    bool is_and = op == TokenKind::And;
    auto first = is_and ? parse_equality() : parse_logical(TokenKind::And);
    if (!first || peek().kind != op) return first;
    std::size_t offset = (*first)->offset();
    std::vector<NodePtr> operands;
    operands.push_back(*std::move(first));
    while (peek().kind == op) {
      next();
      auto operand = is_and ? parse_equality() : parse_logical(TokenKind::And);
      if (!operand) return operand;
      operands.push_back(*std::move(operand));
    }
    return std::make_unique<expr::LogicalNode>(offset, is_and, std::move(operands));
  }

  static std::optional<CompareOp> equality_op(TokenKind kind) {
    if (kind == TokenKind::Equal) return CompareOp::Equal;
    if (kind == TokenKind::NotEqual) return CompareOp::NotEqual;
    return std::nullopt;
  }

  static std::optional<CompareOp> relational_op(TokenKind kind) {
    switch (kind) {
      case TokenKind::Less: return CompareOp::Less;
      case TokenKind::LessEqual: return CompareOp::LessEqual;
      case TokenKind::Greater: return CompareOp::Greater;
      case TokenKind::GreaterEqual: return CompareOp::GreaterEqual;
      default: return std::nullopt;
    }
  }

  NodeResult parse_equality() { return parse_comparison(true); }

  // Equality chains over relational chains over unary operands.
  NodeResult parse_comparison(bool equality) {
    auto op_of = equality ? equality_op : relational_op;
    auto operand = [&]() { return equality ? parse_comparison(false) : parse_unary(); };
    auto first = operand();
    if (!first || !op_of(peek().kind)) return first;
    std::size_t offset = (*first)->offset();
    auto chain = std::make_unique<expr::CompareNode>(offset, *std::move(first));
    while (auto op = op_of(peek().kind)) {
      next();
      auto right = operand();
      if (!right) return right;
      chain->add(*op, *std::move(right));
    }
    return chain;
  }

  NodeResult parse_unary() {
    if (peek().kind != TokenKind::Not) return parse_postfix();
    const Token& bang = next();
    Nesting nesting(depth_);
    if (nesting.too_deep()) return std::unexpected(too_deep(bang));
    auto operand = parse_unary();
    if (!operand) return operand;
    return std::make_unique<expr::NotNode>(bang.offset, *std::move(operand));
  }

  NodeResult parse_postfix() {
    bool is_literal = false;
    auto base = parse_primary(is_literal);
    if (!base) return base;
    TokenKind kind = peek().kind;
    if (kind != TokenKind::Dot && kind != TokenKind::LBracket) return base;
    // Actions allows no property access on literals ('a'.b, 1[0]).
    if (is_literal) return std::unexpected(unexpected(peek()));
    auto access = std::make_unique<expr::AccessNode>((*base)->offset(), *std::move(base));
    while (peek().kind == TokenKind::Dot || peek().kind == TokenKind::LBracket) {
      auto accessor = next().kind == TokenKind::Dot ? parse_property() : parse_index();
      if (!accessor) return std::unexpected(std::move(accessor.error()));
      access->add(*std::move(accessor));
    }
    return access;
  }

  std::expected<Accessor, ExpressionError> parse_property() {
    const Token& name = peek();
    if (name.kind == TokenKind::Star) {
      next();
      return Accessor{Accessor::Kind::Wildcard, {}, nullptr};
    }
    if (name.kind != TokenKind::Identifier) return std::unexpected(unexpected(name));
    next();
    return Accessor{Accessor::Kind::Property, name.text, nullptr};
  }

  std::expected<Accessor, ExpressionError> parse_index() {
    const Token& bracket = tokens_[pos_ - 1];
    if (peek().kind == TokenKind::Star && peek(1).kind == TokenKind::RBracket) {
      next();
      next();
      return Accessor{Accessor::Kind::Wildcard, {}, nullptr};
    }
    Nesting nesting(depth_);
    if (nesting.too_deep()) return std::unexpected(too_deep(bracket));
    auto index = parse_or();
    if (!index) return std::unexpected(std::move(index.error()));
    if (auto error = expect(TokenKind::RBracket)) return std::unexpected(*std::move(error));
    return Accessor{Accessor::Kind::Index, {}, *std::move(index)};
  }

  NodeResult parse_primary(bool& is_literal) {
    const Token& token = peek();
    is_literal = true;
    switch (token.kind) {
      case TokenKind::Number:
        next();
        return std::make_unique<expr::LiteralNode>(token.offset, expr::make_number(token.number));
      case TokenKind::String:
        next();
        return std::make_unique<expr::LiteralNode>(token.offset, Value(token.text));
      case TokenKind::LParen:
        is_literal = false;
        return parse_group();
      case TokenKind::Identifier:
        if (auto literal = keyword_literal(token.text)) {
          next();
          return std::make_unique<expr::LiteralNode>(token.offset, *std::move(literal));
        }
        is_literal = false;
        return peek(1).kind == TokenKind::LParen ? parse_call() : parse_context();
      default:
        return std::unexpected(unexpected(token));
    }
  }

  // true, false, null, NaN and Infinity are case-sensitive keywords, as in Actions.
  static std::optional<Value> keyword_literal(std::string_view word) {
    if (word == "true") return Value(true);
    if (word == "false") return Value(false);
    if (word == "null") return Value(nullptr);
    if (word == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
    if (word == "Infinity") return Value(std::numeric_limits<double>::infinity());
    return std::nullopt;
  }

  NodeResult parse_group() {
    const Token& paren = next();
    Nesting nesting(depth_);
    if (nesting.too_deep()) return std::unexpected(too_deep(paren));
    auto inner = parse_or();
    if (!inner) return inner;
    if (auto error = expect(TokenKind::RParen)) return std::unexpected(*std::move(error));
    return inner;
  }

  NodeResult parse_context() {
    const Token& name = next();
    if (auto context = find_context(name.text)) {
      return std::make_unique<expr::ContextNode>(name.offset, std::string(*context));
    }
    std::string message = "unknown context '" + name.text + "'";
    if (find_function(name.text)) {
      message += " (did you mean '" + name.text + "()'?)";
    } else {
      message += did_you_mean(name.text, kContexts);
    }
    return std::unexpected(ExpressionError{name.offset, std::move(message)});
  }

  NodeResult parse_call() {
    const Token& name = next();
    const Token& paren = next();
    const expr::FunctionInfo* info = find_function(name.text);
    if (!info) {
      std::string message = "unknown function '" + name.text + "'" + did_you_mean(name.text, function_names());
      return std::unexpected(ExpressionError{name.offset, std::move(message)});
    }
    Nesting nesting(depth_);
    if (nesting.too_deep()) return std::unexpected(too_deep(paren));
    std::vector<NodePtr> args;
    if (peek().kind == TokenKind::RParen) {
      next();
    } else {
      for (;;) {
        auto arg = parse_or();
        if (!arg) return arg;
        args.push_back(*std::move(arg));
        if (peek().kind == TokenKind::Comma) {
          next();
          continue;
        }
        if (auto error = expect(TokenKind::RParen)) return std::unexpected(*std::move(error));
        break;
      }
    }
    if (args.size() < info->min_args || args.size() > info->max_args) {
      return std::unexpected(ExpressionError{name.offset, arity_message(*info, args.size())});
    }
    if (expr::is_status_function(info->function)) uses_status_ = true;
    return std::make_unique<expr::CallNode>(name.offset, *info, std::move(args));
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  bool uses_status_ = false;
};

}  // namespace

std::string ExpressionError::to_string() const {
  return message + " at offset " + std::to_string(offset);
}

std::expected<std::unique_ptr<Expression>, ExpressionError> parse_expression(std::string_view text) {
  if (text.size() > kMaxExpressionLength) {
    return std::unexpected(ExpressionError{
        0, "expression too long (" + std::to_string(text.size()) + " bytes, limit " +
               std::to_string(kMaxExpressionLength) + ")"});
  }
  auto tokens = expr::tokenize(text);
  if (!tokens) return std::unexpected(std::move(tokens.error()));
  Parser parser(text, *std::move(tokens));
  auto root = parser.parse();
  if (!root) return std::unexpected(std::move(root.error()));
  return std::make_unique<ParsedExpression>(*std::move(root), parser.uses_status_function());
}

}  // namespace sandci::scheduler
