#pragma once
// The executor reads time only through Clock so tests can drive it with a fake
// clock and never sleep on the real one.
#include <chrono>

namespace sandci::scheduler {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace sandci::scheduler
