#include "scheduler/glob.h"

#include <gtest/gtest.h>

namespace sandci::scheduler {
namespace {

bool match(const std::string& pattern, const std::string& text) {
  auto glob = Glob::compile(pattern);
  EXPECT_TRUE(glob.has_value()) << pattern << ": " << glob.error();
  return glob && glob->matches(text);
}

TEST(Glob, LiteralMatchesOnlyItself) {
  EXPECT_TRUE(match("main", "main"));
  EXPECT_FALSE(match("main", "mainline"));
  EXPECT_FALSE(match("main", "mai"));
  EXPECT_FALSE(match("main", ""));
}

TEST(Glob, StarStopsAtSlash) {
  EXPECT_TRUE(match("feature/*", "feature/login"));
  EXPECT_FALSE(match("feature/*", "feature/login/v2"));
  EXPECT_TRUE(match("*", "main"));
  EXPECT_FALSE(match("*", "feature/x"));
  EXPECT_TRUE(match("v*", "v"));
  EXPECT_TRUE(match("*.js", "app.js"));
  EXPECT_FALSE(match("*.js", "src/app.js"));
  EXPECT_TRUE(match("a*b*c", "aXXbYYc"));
}

TEST(Glob, DoubleStarCrossesSlashes) {
  EXPECT_TRUE(match("feature/**", "feature/a/b/c"));
  EXPECT_FALSE(match("feature/**", "feature"));
  EXPECT_TRUE(match("**", "any/thing/at/all"));
  EXPECT_TRUE(match("**.js", "src/deep/app.js"));
  EXPECT_TRUE(match("docs/**/*.md", "docs/a/b/readme.md"));
}

TEST(Glob, LeadingDoubleStarSlashMatchesZeroFolders) {
  EXPECT_TRUE(match("**/README.md", "README.md"));
  EXPECT_TRUE(match("**/README.md", "server/README.md"));
  EXPECT_TRUE(match("docs/**/*.md", "docs/readme.md"));
  EXPECT_FALSE(match("**/README.md", "xREADME.md"));
}

TEST(Glob, QuestionMarkIsOneCharacterButNotSlash) {
  EXPECT_TRUE(match("v?", "v1"));
  EXPECT_FALSE(match("v?", "v"));
  EXPECT_FALSE(match("v?", "v12"));
  EXPECT_FALSE(match("a?b", "a/b"));
}

TEST(Glob, PlusRepeatsThePrecedingCharacterOrClass) {
  EXPECT_TRUE(match("v[0-9]+", "v123"));
  EXPECT_FALSE(match("v[0-9]+", "v"));
  EXPECT_FALSE(match("v[0-9]+", "v12a"));
  EXPECT_TRUE(match("ba+", "baaa"));
  EXPECT_FALSE(match("ba+", "b"));
  EXPECT_TRUE(match("v[0-9]+.[0-9]+.[0-9]+", "v10.2.33"));
}

TEST(Glob, CharacterClasses) {
  EXPECT_TRUE(match("[abc]x", "bx"));
  EXPECT_FALSE(match("[abc]x", "dx"));
  EXPECT_TRUE(match("[a-zA-Z0-9]", "Q"));
  EXPECT_FALSE(match("[a-z]", "Q"));
  EXPECT_TRUE(match("release-[0-9]", "release-7"));
}

TEST(Glob, BackslashEscapes) {
  EXPECT_TRUE(match("a\\*b", "a*b"));
  EXPECT_FALSE(match("a\\*b", "axb"));
  EXPECT_TRUE(match("\\[x]", "[x]"));
}

TEST(Glob, CompileErrors) {
  EXPECT_EQ(Glob::compile("rel[").error(), "unterminated character class '['");
  EXPECT_EQ(Glob::compile("[z-a]").error(), "character class range 'z-a' is reversed");
  EXPECT_EQ(Glob::compile("[]").error(), "empty character class '[]'");
  EXPECT_EQ(Glob::compile("abc\\").error(), "pattern ends with an escape '\\'");
}

TEST(Glob, LongInputsStayLinear) {
  // A backtracking matcher would take exponential time on this pattern.
  const std::string text(5000, 'a');
  EXPECT_FALSE(match("*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(match("**a**a**a**a", text));
}

TEST(FilterList, LaterPatternsOverrideEarlierOnes) {
  const std::vector<std::string> filters{"releases/**", "!releases/**-alpha", "releases/keep-alpha"};
  EXPECT_TRUE(filter_matches(filters, "releases/10"));
  EXPECT_FALSE(filter_matches(filters, "releases/10-alpha"));
  EXPECT_TRUE(filter_matches(filters, "releases/keep-alpha"));
  EXPECT_FALSE(filter_matches(filters, "main"));
}

TEST(FilterList, NegationOnlyAtTheStart) {
  EXPECT_TRUE(filter_matches({"a!b"}, "a!b"));
  EXPECT_FALSE(filter_matches({"*", "!main"}, "main"));
  EXPECT_TRUE(filter_matches({"*", "!main"}, "dev"));
}

TEST(FilterList, CheckReportsBadPatternsByIndex) {
  auto errors = check_filter_patterns({"main", "!", "x[", "ok"});
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].first, 1u);
  EXPECT_EQ(errors[0].second, "empty pattern");
  EXPECT_EQ(errors[1].first, 2u);
}

}  // namespace
}  // namespace sandci::scheduler
