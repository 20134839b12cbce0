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

TEST(Diagnostic, NotesSayNote) {
  Diagnostic d{{"ci.yml", 2, 1}, "'permissions' is ignored", Severity::note};
  EXPECT_EQ(d.to_string(), "ci.yml:2:1: note: 'permissions' is ignored");
}

TEST(Diagnostic, ErrorCountLeavesOutNotes) {
  Diagnostics all{{{"a", 1, 1}, "n", Severity::note}, {{"a", 2, 1}, "e"}, {{"a", 3, 1}, "n2", Severity::note}};
  EXPECT_EQ(error_count(all), 1u);
  EXPECT_EQ(error_count({}), 0u);
}

}  // namespace sandci::scheduler
