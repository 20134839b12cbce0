#pragma once
// How much longer a test may wait for things (an agent to start, a run to end)
// than its written limits. Sanitized builds run the agent several times slower
// (g++ defines __SANITIZE_ADDRESS__ under -fsanitize=address), so their waits are
// tripled; SANDCI_TEST_TIME_SCALE=<n> sets it for a slow machine. Only limits are
// scaled: a test that passes waits exactly as long as before.
#include <cstdlib>

namespace sandci::testing {

inline int time_scale() {
  static const int scale = [] {
    if (const char* env = std::getenv("SANDCI_TEST_TIME_SCALE")) {
      const int given = std::atoi(env);
      if (given >= 1) return given;
    }
#if defined(__SANITIZE_ADDRESS__)
    return 3;
#else
    return 1;
#endif
  }();
  return scale;
}

// `limit` as scaled for this build (a std::chrono duration).
template <typename Duration>
Duration scaled(Duration limit) {
  return limit * time_scale();
}

}  // namespace sandci::testing
