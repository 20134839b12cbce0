#include "scheduler/uses_ref.h"

#include <gtest/gtest.h>

namespace sandci::scheduler {
namespace {

TEST(UsesRefTest, LocalActionKeepsItsPathInsideTheRepository) {
  auto ref = parse_uses("./.github/actions/setup/");
  ASSERT_TRUE(ref) << ref.error();
  EXPECT_EQ(ref->kind, UsesRef::Kind::local);
  EXPECT_EQ(ref->path, ".github/actions/setup");
  EXPECT_EQ(ref->name(), "./.github/actions/setup");
  EXPECT_EQ(ref->repository(), "");
}

TEST(UsesRefTest, RemoteActionSplitsOwnerRepositoryPathAndRef) {
  auto ref = parse_uses("Acme/Tools/lint/check@v2.1");
  ASSERT_TRUE(ref) << ref.error();
  EXPECT_EQ(ref->kind, UsesRef::Kind::remote);
  EXPECT_EQ(ref->owner, "Acme");
  EXPECT_EQ(ref->repo, "Tools");
  EXPECT_EQ(ref->path, "lint/check");
  EXPECT_EQ(ref->ref, "v2.1");
  EXPECT_EQ(ref->repository(), "Acme/Tools");
  EXPECT_EQ(ref->name(), "acme/tools/lint/check");
}

TEST(UsesRefTest, ReusableWorkflowReadsLikeARemoteActionWithAPath) {
  auto ref = parse_uses("octo/shared/.github/workflows/build.yml@0123456789abcdef0123456789abcdef01234567");
  ASSERT_TRUE(ref) << ref.error();
  EXPECT_EQ(ref->path, ".github/workflows/build.yml");
  EXPECT_EQ(ref->ref.size(), 40u);
}

// `$/path` (the workflow's own repository) reads like `./path` in the run's checkout.
TEST(UsesRefTest, DollarSlashIsALocalPath) {
  auto ref = parse_uses("$/.github/actions/issues-helper");
  ASSERT_TRUE(ref) << ref.error();
  EXPECT_EQ(ref->kind, UsesRef::Kind::local);
  EXPECT_EQ(ref->path, ".github/actions/issues-helper");
}

TEST(UsesRefTest, DockerImageIsItsOwnKind) {
  auto ref = parse_uses("docker://alpine:3.20");
  ASSERT_TRUE(ref) << ref.error();
  EXPECT_EQ(ref->kind, UsesRef::Kind::docker);
  EXPECT_EQ(ref->image, "alpine:3.20");
}

TEST(UsesRefTest, BadValuesSayWhatIsWrong) {
  EXPECT_NE(parse_uses("actions/checkout").error().find("must name a version after '@'"), std::string::npos);
  EXPECT_NE(parse_uses("actions/checkout@").error().find("version"), std::string::npos);
  EXPECT_NE(parse_uses("checkout@v4").error().find("owner/repo"), std::string::npos);
  EXPECT_NE(parse_uses("./../outside").error().find("climbs out"), std::string::npos);
  EXPECT_NE(parse_uses("a/b/../../c@v1").error().find("climbs out"), std::string::npos);
  EXPECT_NE(parse_uses("a/b @v1").error().find("white space"), std::string::npos);
  EXPECT_FALSE(parse_uses(""));
  EXPECT_FALSE(parse_uses("docker://"));
}

}  // namespace
}  // namespace sandci::scheduler
