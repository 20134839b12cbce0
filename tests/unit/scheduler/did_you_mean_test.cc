#include "scheduler/did_you_mean.h"

#include <gtest/gtest.h>

namespace sandci::scheduler {
namespace {

constexpr std::string_view kKeys[] = {"runs-on", "needs", "steps", "strategy"};

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("Env", "env"), 1u);
  EXPECT_EQ(edit_distance("Env", "env", LetterCase::kInsensitive), 0u);
}

TEST(DidYouMean, SuggestsTheClosestCandidateWithinReach) {
  EXPECT_EQ(did_you_mean("runs_on", kKeys), " (did you mean 'runs-on'?)");
  EXPECT_EQ(did_you_mean("stpes", kKeys), " (did you mean 'steps'?)");
  EXPECT_EQ(did_you_mean("completely-different", kKeys), "");
}

TEST(DidYouMean, FirstOfEquallyCloseCandidatesWins) {
  constexpr std::string_view candidates[] = {"abd", "abe"};
  EXPECT_EQ(closest_candidate("abc", candidates), "abd");
}

TEST(DidYouMean, ReachByCandidateLengthIsStricterForShortNames) {
  constexpr std::string_view contexts[] = {"env", "github"};
  const SuggestionRule rule{LetterCase::kInsensitive, reach_by_candidate_length};
  EXPECT_EQ(did_you_mean("ENVV", contexts, rule), " (did you mean 'env'?)");
  EXPECT_EQ(did_you_mean("exx", contexts, rule), "");  // two edits from a 3-letter name
  EXPECT_EQ(did_you_mean("gthb", contexts, rule), " (did you mean 'github'?)");
}

TEST(DidYouMean, AcceptsStringCandidates) {
  const std::vector<std::string> ids{"build", "test"};
  EXPECT_EQ(did_you_mean("biuld", ids), " (did you mean 'build'?)");
}

}  // namespace
}  // namespace sandci::scheduler
