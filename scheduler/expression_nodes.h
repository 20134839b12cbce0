#pragma once
// Syntax tree of a parsed expression and its evaluation. Chains (a.b[c], a && b
// && c, a == b == c) are stored flat, so the tree is only as deep as the
// parser's nesting limit allows and evaluation recursion stays bounded.
#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "scheduler/expression.h"

namespace sandci::scheduler::expr {

// An intermediate value: borrowed from the contexts or a literal (so property
// access does not copy whole contexts, and objects keep their identity for
// `==`), or owned when computed. `filtered` marks the result of `.*`: later
// property accesses apply to each element, as in needs.*.result.
struct Result {
  Value owned;
  const Value* borrowed = nullptr;
  bool filtered = false;

  const Value& value() const { return borrowed ? *borrowed : owned; }
  Value take() && { return borrowed ? *borrowed : std::move(owned); }

  static Result own(Value value, bool filtered = false) { return {std::move(value), nullptr, filtered}; }
  static Result borrow(const Value& value) { return {Value(), &value, false}; }
};

using EvalResult = std::expected<Result, ExpressionError>;

class Node {
 public:
  explicit Node(std::size_t offset) : offset_(offset) {}
  virtual ~Node() = default;
  virtual EvalResult eval(const EvalContext& ctx) const = 0;
  std::size_t offset() const { return offset_; }

 private:
  std::size_t offset_;
};

using NodePtr = std::unique_ptr<Node>;

class LiteralNode : public Node {
 public:
  LiteralNode(std::size_t offset, Value value) : Node(offset), value_(std::move(value)) {}
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  Value value_;
};

class ContextNode : public Node {
 public:
  ContextNode(std::size_t offset, std::string name) : Node(offset), name_(std::move(name)) {}
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  std::string name_;  // canonical lower-case context name
};

// One step of a property chain: .name, [expr] or .* / [*].
struct Accessor {
  enum class Kind { Property, Index, Wildcard } kind;
  std::string name;  // Property
  NodePtr index;     // Index
};

class AccessNode : public Node {
 public:
  AccessNode(std::size_t offset, NodePtr base) : Node(offset), base_(std::move(base)) {}
  void add(Accessor accessor) { accessors_.push_back(std::move(accessor)); }
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  NodePtr base_;
  std::vector<Accessor> accessors_;
};

// One or more `!`: negate for an odd count, else just the truthiness as a bool.
class NotNode : public Node {
 public:
  NotNode(std::size_t offset, NodePtr operand, bool negate)
      : Node(offset), operand_(std::move(operand)), negate_(negate) {}
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  NodePtr operand_;
  bool negate_;
};

enum class CompareOp { Equal, NotEqual, Less, LessEqual, Greater, GreaterEqual };

// first op1 second op2 third ...: evaluated left to right, each step compares
// the previous boolean result with the next operand.
class CompareNode : public Node {
 public:
  CompareNode(std::size_t offset, NodePtr first) : Node(offset), first_(std::move(first)) {}
  void add(CompareOp op, NodePtr operand) { rest_.push_back({op, std::move(operand)}); }
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  struct Step {
    CompareOp op;
    NodePtr operand;
  };
  NodePtr first_;
  std::vector<Step> rest_;
};

// a && b && c / a || b || c: short-circuits and returns the deciding operand.
class LogicalNode : public Node {
 public:
  LogicalNode(std::size_t offset, bool is_and, std::vector<NodePtr> operands)
      : Node(offset), is_and_(is_and), operands_(std::move(operands)) {}
  bool is_and() const { return is_and_; }
  void add(NodePtr operand) { operands_.push_back(std::move(operand)); }
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  bool is_and_;
  std::vector<NodePtr> operands_;
};

enum class Function {
  Contains, StartsWith, EndsWith, Format, Join, ToJson, FromJson, HashFiles,
  Success, Failure, Always, Cancelled,
};

struct FunctionInfo {
  const char* name;  // as documented; calls match case-insensitively
  Function function;
  std::size_t min_args;
  std::size_t max_args;
};

const std::vector<FunctionInfo>& known_functions();
bool is_status_function(Function function);

class CallNode : public Node {
 public:
  CallNode(std::size_t offset, const FunctionInfo& info, std::vector<NodePtr> args)
      : Node(offset), info_(info), args_(std::move(args)) {}
  EvalResult eval(const EvalContext& ctx) const override;

 private:
  EvalResult call(const EvalContext& ctx, std::vector<Result>& args) const;
  ExpressionError error(std::string message) const;

  const FunctionInfo& info_;
  std::vector<NodePtr> args_;
};

}  // namespace sandci::scheduler::expr
