#pragma once
// Secrets of the agent's configuration (webhook secrets, API tokens, job secrets).
// They are never written in the configuration itself: each one names a file or a
// systemd credential, read once at start-up. A Secret never prints its value, and
// no error message about a secret quotes it.
#include <cstddef>
#include <expected>
#include <filesystem>
#include <ostream>
#include <string>

namespace sandci::agent::config {

// A secret value. Printing it (operator<<, which gtest and fmt's ostream support
// use) shows "***"; only reveal() gives the value, so every use is deliberate.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend std::ostream& operator<<(std::ostream& out, const Secret&) { return out << "***"; }

 private:
  std::string value_;
};

// The parts of the process environment the configuration depends on, passed in so
// tests never touch the real environment.
struct Environment {
  std::string credentials_directory;  // $CREDENTIALS_DIRECTORY (systemd); empty when unset
  std::string state_directory;        // $STATE_DIRECTORY (systemd); empty when unset
  unsigned cores = 1;                 // the default capacity

  // Reads the variables above and the number of cores of this process.
  static Environment from_process();
};

// Where a secret lives, as written in the configuration.
struct SecretSource {
  enum class Kind { kFile, kCredential };
  Kind kind = Kind::kFile;
  std::string name;  // kFile: the path (absolute); kCredential: the credential name
};

// Secret files are small; anything larger is a mistake (a wrong path).
inline constexpr std::size_t kMaxSecretBytes = 64 * 1024;

// The file that holds the secret: the path itself, or $CREDENTIALS_DIRECTORY/NAME.
// Errors: a credential without $CREDENTIALS_DIRECTORY, or a credential name that is
// not a plain file name.
std::expected<std::filesystem::path, std::string> secret_file(const SecretSource& source,
                                                              const Environment& env);

// Reads a secret: one trailing newline ("\n" or "\r\n") is removed. Refused, with
// a message naming the file (and the credential), never the value:
// - a missing, unreadable or non-regular file, or one over kMaxSecretBytes;
// - for kFile, a file readable by group or others ("PATH is readable by group or
//   others (mode 0644): chmod 600 PATH") or writable by them; credentials are
//   exempt, as systemd owns their directory and its access;
// - an empty value.
std::expected<Secret, std::string> read_secret(const SecretSource& source, const Environment& env);

}  // namespace sandci::agent::config
