#include "git/error.h"

#include <gtest/gtest.h>

#include <set>

namespace sandci::git {
namespace {

TEST(Error, ToStringNamesKindMessageAndUrl) {
  Error e{ErrorKind::kShaNotFound, "commit abc is not in the repository", "https://h/o/r.git"};
  EXPECT_EQ(e.to_string(), "sha_not_found: commit abc is not in the repository (https://h/o/r.git)");
  Error no_url{ErrorKind::kIo, "disk full", ""};
  EXPECT_EQ(no_url.to_string(), "io: disk full");
}

TEST(Error, EveryKindHasADistinctName) {
  std::set<std::string_view> names;
  for (auto kind : {ErrorKind::kAuthFailed, ErrorKind::kUnknownHostKey, ErrorKind::kShaNotFound,
                    ErrorKind::kUnreachable, ErrorKind::kTimeout, ErrorKind::kRepoNotFound,
                    ErrorKind::kInvalidArgument, ErrorKind::kIo, ErrorKind::kOther}) {
    names.insert(kind_name(kind));
  }
  EXPECT_EQ(names.size(), 9u);
}

}  // namespace
}  // namespace sandci::git
