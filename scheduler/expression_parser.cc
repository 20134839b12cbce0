// Parser for Actions expressions (parse_expression of expression.h): precedence
// climbing for binary operators; precedence, loosest first: ||, &&, == !=,
// < <= > >=, !, then property access and calls. Every nesting level
// (parentheses, calls, indexes) counts against kMaxExpressionDepth and costs a
// few small frames, so hostile input cannot overflow the stack while parsing,
// evaluating or destroying the tree.
#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <span>
#include <string_view>

#include "scheduler/did_you_mean.h"
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

// `jobs` exists only in a reusable workflow's `on.workflow_call.outputs` values.
constexpr std::array<std::string_view, 12> kContexts = {
    "github", "env",   "vars", "matrix", "needs",   "steps",
    "secrets", "inputs", "job", "runner", "strategy", "jobs"};

// Contexts and functions are case-insensitive. The word is cut to 64 characters so
// a hostile 64 KiB word stays cheap.
std::string suggest(std::string_view word, std::span<const std::string_view> candidates) {
  return did_you_mean(word.substr(0, 64), candidates,
                      {LetterCase::kInsensitive, reach_by_candidate_length});
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
  ParsedExpression(NodePtr root, bool uses_status, std::vector<ExpressionName> names)
      : root_(std::move(root)), uses_status_(uses_status), names_(std::move(names)) {}

  std::expected<Value, ExpressionError> evaluate(const EvalContext& ctx) const override {
    auto result = root_->eval(ctx);
    if (!result) return std::unexpected(std::move(result.error()));
    return std::move(*result).take();
  }

  bool uses_status_function() const override { return uses_status_; }
  const std::vector<ExpressionName>& names() const override { return names_; }

 private:
  NodePtr root_;
  bool uses_status_;
  std::vector<ExpressionName> names_;
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
  // The names found, in text order (a call's name is found after its arguments).
  std::vector<ExpressionName> take_names() {
    std::ranges::sort(names_, {}, &ExpressionName::offset);
    return std::move(names_);
  }

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

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] ExpressionError too_deep(const Token& at) const {
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

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] ExpressionError unexpected(const Token& token) const {
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

  NodeResult parse_or() { return parse_binary(kLoosest); }

  // Binding strength of binary operators, loosest first.
  enum Precedence { kLoosest = 0, kOr = 1, kAnd = 2, kEquality = 3, kRelational = 4 };

  static int precedence(TokenKind kind) {
    switch (kind) {
      case TokenKind::Or: return kOr;
      case TokenKind::And: return kAnd;
      case TokenKind::Equal: case TokenKind::NotEqual: return kEquality;
      case TokenKind::Less: case TokenKind::LessEqual:
      case TokenKind::Greater: case TokenKind::GreaterEqual: return kRelational;
      default: return -1;  // not a binary operator
    }
  }

  static CompareOp compare_op(TokenKind kind) {
    switch (kind) {
      case TokenKind::Equal: return CompareOp::Equal;
      case TokenKind::NotEqual: return CompareOp::NotEqual;
      case TokenKind::Less: return CompareOp::Less;
      case TokenKind::LessEqual: return CompareOp::LessEqual;
      case TokenKind::Greater: return CompareOp::Greater;
      default: return CompareOp::GreaterEqual;
    }
  }

  // Precedence climbing. Every call is one nesting level (the whole expression,
  // a parenthesized group, an argument, an index, or the right operand of a
  // tighter operator), so the limit bounds the recursion of parsing and
  // evaluating alike.
  NodeResult parse_binary(int min_precedence) {
    Nesting nesting(depth_);
    if (nesting.too_deep()) return std::unexpected(too_deep(peek()));
    auto left = parse_operand();
    if (!left) return left;
    for (int prec = precedence(peek().kind); prec >= kOr && prec >= min_precedence;
         prec = precedence(peek().kind)) {
      TokenKind op = next().kind;
      auto right = parse_binary(prec + 1);
      if (!right) return right;
      left = combine(*std::move(left), op, *std::move(right));
    }
    return left;
  }

  // Appends to a chain when the left side already is one: `a && b && c` is one
  // LogicalNode, `a == b != c` one CompareNode (evaluated left to right, which
  // is what nesting to the left would do).
  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] static NodePtr combine(NodePtr left, TokenKind op, NodePtr right) {
    if (op == TokenKind::And || op == TokenKind::Or) {
      bool is_and = op == TokenKind::And;
      if (auto* chain = dynamic_cast<expr::LogicalNode*>(left.get()); chain && chain->is_and() == is_and) {
        chain->add(std::move(right));
        return left;
      }
      std::size_t offset = left->offset();
      std::vector<NodePtr> operands;
      operands.push_back(std::move(left));
      operands.push_back(std::move(right));
      return std::make_unique<expr::LogicalNode>(offset, is_and, std::move(operands));
    }
    if (auto* chain = dynamic_cast<expr::CompareNode*>(left.get())) {
      chain->add(compare_op(op), std::move(right));
      return left;
    }
    auto chain = std::make_unique<expr::CompareNode>(left->offset(), std::move(left));
    chain->add(compare_op(op), std::move(right));
    return chain;
  }

  // `!`* followed by a postfix expression. A run of `!` is one node (its parity
  // is all that matters), so `!!!!...` costs no depth.
  [[gnu::noinline]] NodeResult parse_operand() {
    std::size_t bangs = 0;
    std::size_t offset = peek().offset;
    while (peek().kind == TokenKind::Not) {
      next();
      ++bangs;
    }
    auto operand = parse_postfix();
    if (!operand || bangs == 0) return operand;
    return std::make_unique<expr::NotNode>(offset, *std::move(operand), bangs % 2 == 1);
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

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] std::expected<Accessor, ExpressionError> parse_property() {
    const Token& name = peek();
    if (name.kind == TokenKind::Star) {
      next();
      return Accessor{Accessor::Kind::Wildcard, {}, nullptr};
    }
    if (name.kind != TokenKind::Identifier) return std::unexpected(unexpected(name));
    next();
    return Accessor{Accessor::Kind::Property, name.text, nullptr};
  }

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] std::expected<Accessor, ExpressionError> parse_index() {
    if (peek().kind == TokenKind::Star && peek(1).kind == TokenKind::RBracket) {
      next();
      next();
      return Accessor{Accessor::Kind::Wildcard, {}, nullptr};
    }
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
  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] static std::optional<Value> keyword_literal(std::string_view word) {
    if (word == "true") return Value(true);
    if (word == "false") return Value(false);
    if (word == "null") return Value(nullptr);
    if (word == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
    if (word == "Infinity") return Value(std::numeric_limits<double>::infinity());
    return std::nullopt;
  }

  NodeResult parse_group() {
    next();  // (
    auto inner = parse_or();
    if (!inner) return inner;
    if (auto error = expect(TokenKind::RParen)) return std::unexpected(*std::move(error));
    return inner;
  }

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] NodeResult parse_context() {
    const Token& name = next();
    if (auto context = find_context(name.text)) {
      names_.push_back({ExpressionName::Kind::context, std::string(*context), name.offset});
      return std::make_unique<expr::ContextNode>(name.offset, std::string(*context));
    }
    std::string message = "unknown context '" + name.text + "'";
    if (find_function(name.text)) {
      message += " (did you mean '" + name.text + "()'?)";
    } else {
      message += suggest(name.text, kContexts);
    }
    return std::unexpected(ExpressionError{name.offset, std::move(message)});
  }

  [[gnu::noinline]] static ExpressionError unknown_function(const Token& name) {
    return {name.offset, "unknown function '" + name.text + "'" + suggest(name.text, function_names())};
  }

  [[gnu::noinline]] static ExpressionError arity_error(const Token& name, const expr::FunctionInfo& info,
                                                       std::size_t got) {
    return {name.offset, arity_message(info, got)};
  }

  // Kept out of line so the recursive parse functions keep small frames.
  [[gnu::noinline]] NodeResult parse_call() {
    const Token& name = next();
    next();  // (
    const expr::FunctionInfo* info = find_function(name.text);
    if (!info) return std::unexpected(unknown_function(name));
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
      return std::unexpected(arity_error(name, *info, args.size()));
    }
    if (expr::is_status_function(info->function)) uses_status_ = true;
    names_.push_back({ExpressionName::Kind::function, info->name, name.offset});
    return std::make_unique<expr::CallNode>(name.offset, *info, std::move(args));
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  bool uses_status_ = false;
  std::vector<ExpressionName> names_;
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
  return std::make_unique<ParsedExpression>(*std::move(root), parser.uses_status_function(),
                                            parser.take_names());
}

}  // namespace sandci::scheduler
