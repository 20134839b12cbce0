// github.repository for `sandci run`, read from the origin remote's URL.
#include <gtest/gtest.h>

#include "agent/cli/local_run.h"

namespace sandci::agent {
namespace {

TEST(RepositoryFromUrl, TheUrlFormsGitTakes) {
  EXPECT_EQ(repository_from_url("https://github.com/ohmyzsh/ohmyzsh.git"), "ohmyzsh/ohmyzsh");
  EXPECT_EQ(repository_from_url("https://git.example.org/tmux/tmux/"), "tmux/tmux");
  EXPECT_EQ(repository_from_url("git@github.com:jqlang/jq.git"), "jqlang/jq");
  EXPECT_EQ(repository_from_url("ssh://git@git.example.org:2222/group/team/app.git"), "team/app");
  EXPECT_EQ(repository_from_url("/srv/git/alice/hello"), "alice/hello");
  EXPECT_EQ(repository_from_url("alice/hello"), "alice/hello");
}

TEST(RepositoryFromUrl, WhatNamesNoRepository) {
  EXPECT_EQ(repository_from_url(""), std::nullopt);
  EXPECT_EQ(repository_from_url("hello"), std::nullopt);
  EXPECT_EQ(repository_from_url("/hello"), std::nullopt);
  EXPECT_EQ(repository_from_url("a b/c"), std::nullopt);
}

}  // namespace
}  // namespace sandci::agent
