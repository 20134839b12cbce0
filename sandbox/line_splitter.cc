#include "sandbox/line_splitter.h"

#include <chrono>

namespace sandci::sandbox {

bool LogBudget::take(std::uint64_t bytes) {
  std::uint64_t have = remaining_.load();
  while (have >= bytes) {
    if (remaining_.compare_exchange_weak(have, have - bytes)) return true;
  }
  return false;
}

std::string truncation_notice(std::uint64_t limit) {
  return "[sandci] output truncated: the log limit of " + std::to_string(limit) +
         " bytes was reached; further output of this job is dropped";
}

LineSplitter::LineSplitter(Stream stream, LogBudget& budget, const LineCallback& on_line,
                           std::size_t max_line)
    : stream_(stream), budget_(budget), on_line_(on_line), max_line_(max_line) {}

void LineSplitter::feed(std::string_view data) {
  // Once the budget is gone nothing more is delivered, so skip the splitting:
  // draining a gigabyte must stay cheap.
  if (budget_.exhausted()) {
    partial_.clear();
    return;
  }
  while (!data.empty() && !budget_.exhausted()) {
    std::size_t nl = data.find('\n');
    std::string_view chunk = nl == std::string_view::npos ? data : data.substr(0, nl);
    std::size_t room = max_line_ - partial_.size();
    if (chunk.size() >= room) {
      // An over-long line: deliver what fits as its own line, carry on with the rest.
      partial_.append(chunk.substr(0, room));
      emit(partial_);
      partial_.clear();
      data.remove_prefix(room);
      continue;
    }
    partial_.append(chunk);
    if (nl == std::string_view::npos) return;
    emit(partial_);
    partial_.clear();
    data.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish() {
  if (!partial_.empty() && !budget_.exhausted()) emit(partial_);
  partial_.clear();
}

void LineSplitter::emit(std::string_view text) {
  auto now = std::chrono::system_clock::now();
  if (budget_.take(text.size() + 1)) {
    on_line_(OutputLine{stream_, now, std::string(text)});
    return;
  }
  if (budget_.claim_notice()) {
    on_line_(OutputLine{Stream::kStderr, now, truncation_notice(budget_.limit())});
  }
}

}  // namespace sandci::sandbox
