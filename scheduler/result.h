#pragma once
// The final result of a job, a step or a run, with the names Actions uses in
// `needs.<id>.result` and `steps.<id>.outcome`.
#include <string_view>

namespace sandci::scheduler {

enum class Result { success, failure, cancelled, skipped };

constexpr std::string_view to_string(Result result) {
  switch (result) {
    case Result::success: return "success";
    case Result::failure: return "failure";
    case Result::cancelled: return "cancelled";
    case Result::skipped: return "skipped";
  }
  return "unknown";
}

}  // namespace sandci::scheduler
