// The `retention:` section of the agent's configuration: ages, budget, what happens to
// rows, how often; every bad value refused at the value with a reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config/config_loader.h"
#include "config_test_support.h"

namespace sandci::agent::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing;  // config_test_support.h: ConfigDir, kMinimal, MinimalConfigTest

class RetentionConfigTest : public MinimalConfigTest {
 protected:
  std::vector<std::string> errors_of(const std::string& retention) {
    return ConfigDir::errors(dir.load(std::string(kMinimal) + retention));
  }
};

TEST_F(RetentionConfigTest, DefaultsWhenLeftOutOrEmpty) {
  for (const char* extra : {"", "retention:\n"}) {
    auto loaded = dir.load(std::string(kMinimal) + extra);
    ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
    EXPECT_EQ(loaded.config->retention.max_age_days, 30u);
    EXPECT_EQ(loaded.config->retention.disk_budget_mib, 10240u);
    EXPECT_EQ(loaded.config->retention.keep_rows, KeepRows::kSummary);
    EXPECT_EQ(loaded.config->retention.interval_minutes, 60u);
    EXPECT_EQ(loaded.config->retention.actions_days, 30u);
  }
}

TEST_F(RetentionConfigTest, EveryKeyIsRead) {
  auto loaded = dir.load(std::string(kMinimal) +
                         "retention:\n"
                         "  max_age_days: 7\n"
                         "  disk_budget_mib: 512\n"
                         "  keep_rows: remove\n"
                         "  interval_minutes: 15\n"
                         "  actions_days: 90\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->retention.max_age_days, 7u);
  EXPECT_EQ(loaded.config->retention.disk_budget_mib, 512u);
  EXPECT_EQ(loaded.config->retention.keep_rows, KeepRows::kRemove);
  EXPECT_EQ(loaded.config->retention.interval_minutes, 15u);
  EXPECT_EQ(loaded.config->retention.actions_days, 90u);
}

TEST_F(RetentionConfigTest, BadValuesAreRefusedAtTheValue) {
  EXPECT_THAT(errors_of("retention:\n  max_age_days: 0\n"),
              ElementsAre(dir.at(8, 17, "'max_age_days' must be from 1 to 36500, not 0")));
  EXPECT_THAT(errors_of("retention:\n  disk_budget_mib: -5\n"),
              ElementsAre(HasSubstr(":8:20: error: 'disk_budget_mib' must be from 1 to")));
  EXPECT_THAT(errors_of("retention:\n  interval_minutes: 20000\n"),
              ElementsAre(dir.at(8, 21, "'interval_minutes' must be from 1 to 10080, not 20000")));
  EXPECT_THAT(errors_of("retention:\n  max_age_days: a month\n"),
              ElementsAre(dir.at(8, 17, "'max_age_days' must be a whole number, not 'a month'")));
  EXPECT_THAT(errors_of("retention:\n  actions_days: 0\n"),
              ElementsAre(dir.at(8, 17, "'actions_days' must be from 1 to 36500, not 0")));
  EXPECT_THAT(errors_of("retention:\n  actions_days: forever\n"),
              ElementsAre(dir.at(8, 17, "'actions_days' must be a whole number, not 'forever'")));
  EXPECT_THAT(errors_of("retention:\n  keep_rows: summaries\n"),
              ElementsAre(HasSubstr(":8:14: error: unknown keep_rows 'summaries' (did you mean 'summary'?) "
                                    "(one of: summary, remove)")));
}

TEST_F(RetentionConfigTest, UnknownKeysAndWrongShapes) {
  EXPECT_THAT(errors_of("retention:\n  max_age_day: 7\n"),
              ElementsAre(HasSubstr(":8:3: error: unknown key 'max_age_day' in 'retention' (did you mean "
                                    "'max_age_days'?)")));
  EXPECT_THAT(errors_of("retention: 30\n"),
              ElementsAre(HasSubstr(":7:12: error: 'retention' must be a mapping such as {max_age_days: 30, "
                                    "disk_budget_mib: 10240}, not ")));
}

}  // namespace
}  // namespace sandci::agent::config
