#pragma once
// A temporary folder holding a configuration file, its secret files and a
// credentials folder, removed when the test ends (even when it fails).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/config/config_loader.h"
#include "support/temp_dir.h"

namespace sandci::agent::config::testing {

class ConfigDir {
 public:
  ConfigDir() { std::filesystem::create_directory(credentials()); }

  const std::filesystem::path& path() const { return dir_; }
  std::filesystem::path credentials() const { return dir_ / "credentials"; }
  std::filesystem::path config_file() const { return dir_ / "agent.yml"; }

  // Writes `content` to `relative` (created with the given mode).
  std::filesystem::path write(const std::string& relative, const std::string& content,
                              mode_t mode = 0600) const {
    const auto file = dir_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    ::chmod(file.c_str(), mode);
    return file;
  }

  void credential(const std::string& name, const std::string& value) const {
    write("credentials/" + name, value + "\n", 0400);
  }

  Environment env() const {
    Environment e;
    e.credentials_directory = credentials().string();
    e.state_directory = "";
    e.cores = 3;
    return e;
  }

  LoadedConfig load(const std::string& yaml) const { return load(yaml, env()); }
  LoadedConfig load(const std::string& yaml, const Environment& e) const {
    write("agent.yml", yaml, 0644);
    return load_agent_config(config_file(), e);
  }

  // "<dir>/agent.yml:L:C: error: message" for each diagnostic.
  static std::vector<std::string> errors(const LoadedConfig& loaded) {
    std::vector<std::string> out;
    for (const auto& d : loaded.diagnostics) out.push_back(d.to_string());
    return out;
  }

  std::string at(int line, int column, const std::string& message) const {
    return config_file().string() + ":" + std::to_string(line) + ":" + std::to_string(column) +
           ": error: " + message;
  }

 private:
  ::sandci::testing::TempDir temp_{"sandci-config-"};
  const std::filesystem::path& dir_ = temp_.path();
};

// public_url, then one GitHub repository from line 3 on whose webhook secret and
// API token are the credentials hook and token; tests append lines (line 7 on).
inline constexpr const char* kMinimal =
    "public_url: https://ci.example.org\n"
    "repositories:\n"
    "  - name: alice/hello\n"
    "    forge: github\n"
    "    webhook_secret: {credential: hook}\n"
    "    api_token: {credential: token}\n";

// A ConfigDir holding the two credentials kMinimal names.
class MinimalConfigTest : public ::testing::Test {
 protected:
  MinimalConfigTest() {
    dir.credential("hook", "webhook-secret-value");
    dir.credential("token", "api-token-value");
  }
  ConfigDir dir;
};

}  // namespace sandci::agent::config::testing
