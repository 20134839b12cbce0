// The login cookies' key file (<state_dir>/session.key): made at the first start,
// read at later ones, and replaced (never followed, never crashing the agent) when
// the file there is not one to trust.
#include "agent/server/session_key.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/server/pages_access.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

unsigned mode_of(const fs::path& file) {
  struct stat info {};
  if (::lstat(file.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

fs::path write_file(const fs::path& file, const std::string& bytes, fs::perms mode) {
  std::ofstream(file, std::ios::binary) << bytes;
  fs::permissions(file, mode, fs::perm_options::replace);
  return file;
}

const fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;

class SessionKeyTest : public ::testing::Test {
 protected:
  SessionKeyTest() { fs::permissions(dir_.path(), fs::perms::owner_all, fs::perm_options::replace); }
  fs::path file() const { return dir_.path() / std::string(kSessionKeyFile); }
  // Names in the folder: no temporary file may be left beside the key.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir_.path())) out.push_back(entry.path().filename().string());
    return out;
  }
  // A key was written in place of what was there: a regular 0600 file holding it.
  void expect_new_key_file(const SessionKey& key) {
    EXPECT_EQ(key.bytes.size(), kSessionKeyBytes);
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(file())));
    EXPECT_EQ(mode_of(file()), 0600u);
    EXPECT_EQ(slurp(file()), key.bytes);
    EXPECT_EQ(names(), std::vector<std::string>{std::string(kSessionKeyFile)});
  }

  sandci::testing::TempDir dir_{"sandci-session-key-"};
};

TEST_F(SessionKeyTest, TheFirstStartWritesARandomKeyOnlyItsOwnerReads) {
  auto key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_TRUE(key->created);
  EXPECT_EQ(key->replaced_because, "");
  EXPECT_EQ(key->folder_problem, "");
  expect_new_key_file(*key);
  EXPECT_NE(key->bytes, std::string(kSessionKeyBytes, '\0'));

  // Another folder gets another key.
  sandci::testing::TempDir other{"sandci-session-key-"};
  auto elsewhere = load_session_key(other.path() / std::string(kSessionKeyFile));
  ASSERT_TRUE(elsewhere) << elsewhere.error();
  EXPECT_NE(elsewhere->bytes, key->bytes);
}

TEST_F(SessionKeyTest, LaterStartsReadTheSameKeySoCookiesOutliveARestart) {
  auto first = load_session_key(file());
  ASSERT_TRUE(first) << first.error();
  auto second = load_session_key(file());
  ASSERT_TRUE(second) << second.error();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->replaced_because, "");
  EXPECT_EQ(second->bytes, first->bytes);
  expect_new_key_file(*second);

  config::AgentConfig config;
  config.admin_token = config::Secret("admin-token-3f");
  const PageAccess before(config, first->bytes), after(config, second->bytes);
  auto session = before.session_for("admin-token-3f");
  ASSERT_TRUE(session);
  http::HttpRequest request;
  request.headers.set("Cookie", std::string(PageAccess::kCookie) + "=" + *session);
  EXPECT_TRUE(after.viewer_of(request).admin) << "the cookie from before the restart";

  // Deleting the file is how an operator logs everyone out.
  fs::remove(file());
  auto renewed = load_session_key(file());
  ASSERT_TRUE(renewed) << renewed.error();
  EXPECT_TRUE(renewed->created);
  EXPECT_NE(renewed->bytes, first->bytes);
  EXPECT_FALSE(PageAccess(config, renewed->bytes).viewer_of(request).admin);
}

TEST_F(SessionKeyTest, AFileOfTheWrongSizeIsReplaced) {
  for (const std::string& bytes : {std::string(), std::string(kSessionKeyBytes - 1, 'k'),
                                   std::string(kSessionKeyBytes + 1, 'k'), std::string(2 * kSessionKeyBytes, 'a') + "\n"}) {
    write_file(file(), bytes, kOwnerOnly);
    auto key = load_session_key(file());
    ASSERT_TRUE(key) << key.error();
    EXPECT_FALSE(key->created);
    EXPECT_EQ(key->replaced_because,
              file().string() + " has " + std::to_string(bytes.size()) + " bytes, not " + std::to_string(kSessionKeyBytes));
    expect_new_key_file(*key);
  }
}

TEST_F(SessionKeyTest, ASymbolicLinkIsReplacedNeverFollowed) {
  // A key someone else knows, linked where the agent looks.
  sandci::testing::TempDir elsewhere{"sandci-session-key-"};
  const std::string planted(kSessionKeyBytes, 'p');
  const fs::path target = write_file(elsewhere / "known.key", planted, kOwnerOnly);
  fs::create_symlink(target, file());
  auto key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->replaced_because, file().string() + " is a symbolic link");
  EXPECT_NE(key->bytes, planted);
  expect_new_key_file(*key);
  EXPECT_EQ(slurp(target), planted) << "what the link pointed at is untouched";

  fs::remove(file());
  fs::create_symlink(dir_.path() / "nowhere", file());
  key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->replaced_because, file().string() + " is a symbolic link") << "a dangling link";
  expect_new_key_file(*key);
}

TEST_F(SessionKeyTest, AKeyOthersCouldReadOrWriteIsReplaced) {
  const std::string exposed(kSessionKeyBytes, 'e');
  for (const auto& [mode, text] : std::vector<std::pair<fs::perms, std::string>>{
           {kOwnerOnly | fs::perms::others_read, "0604"},
           {kOwnerOnly | fs::perms::group_read, "0640"},
           {kOwnerOnly | fs::perms::group_write, "0620"}}) {
    write_file(file(), exposed, mode);
    auto key = load_session_key(file());
    ASSERT_TRUE(key) << key.error();
    EXPECT_EQ(key->replaced_because, file().string() + " is open to group or others (mode " + text + ")");
    EXPECT_NE(key->bytes, exposed);
    expect_new_key_file(*key);
  }
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
  write_file(file(), exposed, kOwnerOnly);
  ASSERT_EQ(::chown(file().c_str(), 65534, 65534), 0);
  auto key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->replaced_because, file().string() + " is owned by uid 65534, not by the agent's uid 0");
  EXPECT_NE(key->bytes, exposed);
  expect_new_key_file(*key);
  struct stat info {};
  ASSERT_EQ(::stat(file().c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 0u);
}

TEST_F(SessionKeyTest, WhatIsNotARegularFileIsReplacedOrNamedInTheError) {
  ASSERT_EQ(::mkfifo(file().c_str(), 0600), 0);
  auto key = load_session_key(file());  // O_NONBLOCK: a FIFO does not hang the start
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->replaced_because, file().string() + " is not a regular file");
  expect_new_key_file(*key);

  // A folder cannot be renamed over: the agent does not start, and says which file.
  fs::remove(file());
  fs::create_directory(file());
  auto refused = load_session_key(file());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "cannot write the session key " + file().string() + ": Is a directory");
  EXPECT_TRUE(fs::is_directory(file()));
  EXPECT_EQ(names(), std::vector<std::string>{std::string(kSessionKeyFile)}) << "no temporary file left";

  // A folder that does not exist: no key can be written.
  auto missing = load_session_key(dir_.path() / "gone" / std::string(kSessionKeyFile));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().rfind("cannot write the session key " + (dir_.path() / "gone").string(), 0), 0u)
      << missing.error();
}

TEST_F(SessionKeyTest, AFolderOthersMayWriteToIsReportedAndTheKeyStillUsed) {
  auto first = load_session_key(file());
  ASSERT_TRUE(first) << first.error();
  fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_all | fs::perms::others_all,
                  fs::perm_options::replace);
  auto key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->folder_problem, dir_.path().string() + " is writable by group or others (mode 0777): chmod 700 " +
                                     dir_.path().string());
  EXPECT_EQ(key->bytes, first->bytes);
  // Readable by others (0755, as a folder made under umask 022): the key file is 0600, so no problem.
  fs::permissions(dir_.path(), fs::perms(0755), fs::perm_options::replace);
  key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->folder_problem, "");
  // The sticky bit (as /tmp): others cannot rename over a file they do not own.
  fs::permissions(dir_.path(), fs::perms(01777), fs::perm_options::replace);
  key = load_session_key(file());
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->folder_problem, "");
}

}  // namespace
}  // namespace sandci::agent::server
