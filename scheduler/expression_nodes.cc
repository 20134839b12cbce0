#include "scheduler/expression_nodes.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <limits>

#include "scheduler/expression_value.h"

namespace sandci::scheduler::expr {

EvalResult LiteralNode::eval(const EvalContext&) const { return Result::borrow(value_); }

EvalResult ContextNode::eval(const EvalContext& ctx) const {
  const Value* found = find_property(ctx.contexts, name_);
  return found ? Result::borrow(*found) : Result::own(nullptr);
}

namespace {

// What an index evaluates to, in both forms the runner tries: an array
// position (floored, non-negative) and an object key (any primitive as text).
struct Key {
  bool wildcard = false;
  std::optional<std::size_t> position;
  std::optional<std::string> name;
};

Key make_key(const Value& index) {
  Key key;
  double number = to_number(index);
  if (!std::isnan(number) && number >= 0 &&
      number < static_cast<double>(std::numeric_limits<std::int32_t>::max())) {
    key.position = static_cast<std::size_t>(std::floor(number));
  }
  if (is_primitive(index)) key.name = to_display_string(index);
  return key;
}

const Value* child(const Value& parent, const Key& key) {
  if (parent.is_object()) return key.name ? find_property(parent, *key.name) : nullptr;
  if (parent.is_array() && key.position && *key.position < parent.size()) return &parent[*key.position];
  return nullptr;
}

// Applies one accessor to a non-filtered value.
Result access_one(Result current, const Key& key) {
  const Value& parent = current.value();
  if (key.wildcard) {
    Value items = Value::array();
    if (parent.is_structured()) {
      for (const auto& item : parent) items.push_back(item);
    }
    return Result::own(std::move(items), true);
  }
  const Value* found = child(parent, key);
  if (!found) return Result::own(nullptr);
  if (current.borrowed) return Result::borrow(*found);
  // Owned parent: move the child out instead of copying it.
  Value taken = std::move(const_cast<Value&>(*found));
  return Result::own(std::move(taken));
}

// Applies one accessor to each element of a filtered array; missing children
// are dropped and `*` flattens one level (the runner's FilteredArray rules).
Result access_filtered(Result current, const Key& key) {
  Value items = Value::array();
  for (auto& element : current.owned) {
    if (!element.is_structured()) continue;
    if (key.wildcard) {
      for (auto& item : element) items.push_back(std::move(item));
    } else if (const Value* found = child(element, key)) {
      items.push_back(std::move(const_cast<Value&>(*found)));
    }
  }
  return Result::own(std::move(items), true);
}

}  // namespace

EvalResult AccessNode::eval(const EvalContext& ctx) const {
  auto current = base_->eval(ctx);
  if (!current) return current;
  for (const auto& accessor : accessors_) {
    Key key;
    switch (accessor.kind) {
      case Accessor::Kind::Wildcard:
        key.wildcard = true;
        break;
      case Accessor::Kind::Property:
        key.name = accessor.name;
        break;
      case Accessor::Kind::Index: {
        auto index = accessor.index->eval(ctx);
        if (!index) return index;
        key = make_key(index->value());
        break;
      }
    }
    current = current->filtered ? access_filtered(*std::move(current), key)
                                : access_one(*std::move(current), key);
  }
  return current;
}

EvalResult NotNode::eval(const EvalContext& ctx) const {
  auto operand = operand_->eval(ctx);
  if (!operand) return operand;
  return Result::own(is_truthy(operand->value()) != negate_);
}

namespace {

bool compare(CompareOp op, const Value& left, const Value& right) {
  switch (op) {
    case CompareOp::Equal:
      return loose_equal(left, right);
    case CompareOp::NotEqual:
      return !loose_equal(left, right);
    case CompareOp::Less:
      return loose_less(left, right);
    case CompareOp::LessEqual:
      return loose_equal(left, right) || loose_less(left, right);
    case CompareOp::Greater:
      return loose_greater(left, right);
    case CompareOp::GreaterEqual:
      return loose_equal(left, right) || loose_greater(left, right);
  }
  return false;
}

}  // namespace

EvalResult CompareNode::eval(const EvalContext& ctx) const {
  auto left = first_->eval(ctx);
  if (!left) return left;
  Result current = *std::move(left);
  for (const auto& step : rest_) {
    auto right = step.operand->eval(ctx);
    if (!right) return right;
    current = Result::own(compare(step.op, current.value(), right->value()));
  }
  return current;
}

EvalResult LogicalNode::eval(const EvalContext& ctx) const {
  EvalResult result = Result::own(nullptr);
  for (const auto& operand : operands_) {
    result = operand->eval(ctx);
    if (!result) return result;
    bool truthy = is_truthy(result->value());
    if (is_and_ ? !truthy : truthy) return result;
  }
  return result;
}

}  // namespace sandci::scheduler::expr
