#include "agent/http/http_types.h"

#include <gtest/gtest.h>

namespace sandci::agent::http {
namespace {

TEST(Headers, GetIgnoresCaseAndReturnsTheFirstValue) {
  Headers h;
  h.add("X-GitHub-Event", "push");
  h.add("x-github-event", "ping");
  EXPECT_EQ(h.get("x-github-EVENT"), "push");
  EXPECT_EQ(h.get_all("X-GITHUB-EVENT"), (std::vector<std::string>{"push", "ping"}));
  EXPECT_FALSE(h.get("X-Missing").has_value());
  EXPECT_TRUE(h.contains("x-github-event"));
}

TEST(Headers, KeepsInsertionOrder) {
  Headers h{{"B", "1"}, {"A", "2"}, {"C", "3"}};
  std::vector<std::string> names;
  for (const auto& [name, value] : h) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "A", "C"}));
}

TEST(Headers, SetReplacesEveryFieldOfThatNameInPlaceOfTheFirst) {
  Headers h{{"A", "1"}, {"X", "old1"}, {"B", "2"}, {"x", "old2"}};
  h.set("X", "new");
  ASSERT_EQ(h.size(), 3u);
  std::vector<std::string> flat;
  for (const auto& [name, value] : h) flat.push_back(name + "=" + value);
  EXPECT_EQ(flat, (std::vector<std::string>{"A=1", "X=new", "B=2"}));
  h.set("New", "v");
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(h.get("new"), "v");
}

TEST(Headers, RemoveDropsEveryFieldOfThatName) {
  Headers h{{"A", "1"}, {"a", "2"}, {"B", "3"}};
  EXPECT_EQ(h.remove("A"), 2u);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.remove("A"), 0u);
}

TEST(HeaderChecks, RejectInjection) {
  EXPECT_TRUE(is_valid_header_name("X-Hub-Signature-256"));
  EXPECT_FALSE(is_valid_header_name(""));
  EXPECT_FALSE(is_valid_header_name("Bad Name"));
  EXPECT_FALSE(is_valid_header_name("X:Y"));
  EXPECT_TRUE(is_valid_header_value("token abc; q=1"));
  EXPECT_FALSE(is_valid_header_value("a\r\nSet-Cookie: x"));
  EXPECT_FALSE(is_valid_header_value(std::string_view{"a\0b", 3}));
}

TEST(HttpRequest, PathDropsTheQuery) {
  HttpRequest r;
  r.target = "/hooks/github?x=1";
  EXPECT_EQ(r.path(), "/hooks/github");
  r.target = "/plain";
  EXPECT_EQ(r.path(), "/plain");
}

TEST(HttpResponse, HelpersSetStatusBodyAndContentType) {
  const auto t = HttpResponse::text(404, "no such run\n");
  EXPECT_EQ(t.status, 404);
  EXPECT_EQ(t.body, "no such run\n");
  EXPECT_EQ(t.headers.get("content-type"), "text/plain; charset=utf-8");
  const auto j = HttpResponse::json(202, R"({"ok":true})");
  EXPECT_EQ(j.headers.get("Content-Type"), "application/json");
  EXPECT_TRUE(HttpResponse::empty(204).headers.empty());
}

}  // namespace
}  // namespace sandci::agent::http
