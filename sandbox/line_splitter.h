#pragma once
// Turns a byte stream into lines for a LineCallback while keeping memory bounded:
// a line longer than max_line is delivered in pieces, and everything past the
// shared LogBudget is dropped after one notice line.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

// Bytes of output one sandbox may still deliver; shared by its concurrent execs.
class LogBudget {
 public:
  explicit LogBudget(std::uint64_t limit) : limit_(limit), remaining_(limit) {}
  // Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
  bool take(std::uint64_t bytes);
  // True exactly once: for the caller that must emit the truncation notice.
  bool claim_notice() { return !notice_sent_.exchange(true); }
  // True once the notice went out: from then on everything is dropped.
  bool exhausted() const { return notice_sent_.load(); }
  std::uint64_t limit() const { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> remaining_;
  std::atomic<bool> notice_sent_{false};
};

class LineSplitter {
 public:
  static constexpr std::size_t kDefaultMaxLine = 64 * 1024;

  LineSplitter(Stream stream, LogBudget& budget, const LineCallback& on_line,
               std::size_t max_line = kDefaultMaxLine);
  void feed(std::string_view data);
  // Delivers a last line that had no newline.
  void finish();

 private:
  void emit(std::string_view text);

  Stream stream_;
  LogBudget& budget_;
  const LineCallback& on_line_;
  std::size_t max_line_;
  std::string partial_;
};

std::string truncation_notice(std::uint64_t limit);

}  // namespace sandci::sandbox
