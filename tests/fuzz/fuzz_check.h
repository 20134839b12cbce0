#pragma once
// Properties the fuzz targets assert beyond "does not crash": a broken one prints what
// and where, then aborts, which the driver and libFuzzer both report as a crash with
// the input that caused it.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, what)                                                     \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      std::fprintf(stderr, "fuzz: property broken at %s:%d: %s (%s)\n", __FILE__,      \
                   __LINE__, what, #condition);                                         \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)
