#include "sandbox/line_splitter.h"

#include <gtest/gtest.h>

#include <vector>

namespace sandci::sandbox {
namespace {

struct Collected {
  std::vector<OutputLine> lines;
  LineCallback callback() {
    return [this](const OutputLine& l) { lines.push_back(l); };
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> t;
    for (const auto& l : lines) t.push_back(l.text);
    return t;
  }
};

TEST(LineSplitterTest, JoinsLinesSplitAcrossChunks) {
  Collected got;
  LogBudget budget(1 << 20);
  auto cb = got.callback();
  LineSplitter splitter(Stream::kStdout, budget, cb);
  splitter.feed("hel");
  splitter.feed("lo\nwor");
  splitter.feed("ld\n\nlast");
  EXPECT_EQ(got.texts(), (std::vector<std::string>{"hello", "world", ""}));
  splitter.finish();
  EXPECT_EQ(got.texts().back(), "last");
  EXPECT_EQ(got.lines.back().stream, Stream::kStdout);
}

TEST(LineSplitterTest, CutsOverlongLinesSoMemoryStaysBounded) {
  Collected got;
  LogBudget budget(1 << 20);
  auto cb = got.callback();
  LineSplitter splitter(Stream::kStderr, budget, cb, 4);
  splitter.feed("abcdefghij\nxy\n");
  EXPECT_EQ(got.texts(), (std::vector<std::string>{"abcd", "efgh", "ij", "xy"}));
}

TEST(LineSplitterTest, StopsAtTheBudgetWithASingleNotice) {
  Collected got;
  LogBudget budget(10);  // "12345\n" fits, the next 6 bytes do not
  auto cb = got.callback();
  LineSplitter out(Stream::kStdout, budget, cb);
  LineSplitter err(Stream::kStderr, budget, cb);
  out.feed("12345\n67890\n");
  err.feed("more\n");
  out.feed("and more\n");
  out.finish();
  ASSERT_EQ(got.lines.size(), 2u);
  EXPECT_EQ(got.lines[0].text, "12345");
  EXPECT_EQ(got.lines[1].stream, Stream::kStderr);
  EXPECT_EQ(got.lines[1].text, truncation_notice(10));
  EXPECT_TRUE(budget.exhausted());
}

TEST(LogBudgetTest, TakesOnlyWhatFits) {
  LogBudget budget(5);
  EXPECT_TRUE(budget.take(3));
  EXPECT_FALSE(budget.take(3));
  EXPECT_TRUE(budget.take(2));
  EXPECT_FALSE(budget.take(1));
  EXPECT_TRUE(budget.claim_notice());
  EXPECT_FALSE(budget.claim_notice());
}

}  // namespace
}  // namespace sandci::sandbox
