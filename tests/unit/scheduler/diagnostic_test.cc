#include "scheduler/diagnostic.h"

#include <gtest/gtest.h>

namespace sandci::scheduler {

TEST(Diagnostic, FormatsFileLineColumn) {
  Diagnostic d{{"ci.yml", 3, 7}, "unknown key 'step'"};
  EXPECT_EQ(d.to_string(), "ci.yml:3:7: error: unknown key 'step'");
}

TEST(Diagnostic, LeavesOutUnknownParts) {
  EXPECT_EQ((Diagnostic{{"ci.yml", 0, 0}, "empty"}).to_string(), "ci.yml: error: empty");
  EXPECT_EQ((Diagnostic{{"", 0, 0}, "x"}).to_string(), "error: x");
}

}  // namespace sandci::scheduler
