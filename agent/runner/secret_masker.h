#pragma once
// Masks secret values in log lines before anything is shown or stored.
//
// Every secret is masked as written and in the forms a step is likely to print it in:
// each line of a multi-line secret, its JSON-escaped and URL-encoded forms, and its
// base64 forms (standard and URL-safe, for the three byte alignments the secret can have
// inside a longer base64-encoded stream, as GitHub's runner does). All occurrences of all
// forms are found in one pass (Aho-Corasick); overlapping or adjacent matches are merged
// and replaced by a single `***`, so overlapping secrets are masked fully whatever their
// lengths.
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runner/command_files.h"

namespace sandci::agent {

class SecretMatcher;  // the compiled automaton (secret_masker.cc)

class SecretMasker {
 public:
  // Secrets shorter than this are masked only as written: a base64 or per-line form of
  // a 2-byte secret would match everywhere.
  static constexpr std::size_t kMinSecretLengthForVariants = 4;
  // Derived forms (base64 fragments) shorter than this are not masked, for the same reason.
  static constexpr std::size_t kMinDerivedLength = 6;

  SecretMasker();
  ~SecretMasker();
  SecretMasker(const SecretMasker&) = delete;
  SecretMasker& operator=(const SecretMasker&) = delete;

  // Adds a secret and its derived forms. Empty or whitespace-only values are ignored
  // (masking them would hide every line). Thread-safe.
  void add(std::string_view secret);

  // Returns `line` with every occurrence of every known secret form replaced by `***`.
  // Thread-safe; concurrent calls do not block each other once the automaton is built.
  std::string mask(std::string_view line) const;

  // If `line` is an `::add-mask::VALUE` workflow command, adds VALUE (unescaped as the
  // runner does) and returns true: the caller must then not show the line itself (GitHub
  // shows `::add-mask::***`). Returns false for any other line.
  bool consume_add_mask(std::string_view line);

  // Number of distinct patterns (secrets plus derived forms) masked.
  std::size_t pattern_count() const;

 private:
  std::shared_ptr<const SecretMatcher> matcher() const;

  mutable std::mutex mutex_;
  std::set<std::string> patterns_;
  mutable std::shared_ptr<const SecretMatcher> matcher_;  // null: rebuild on next mask()
};

// `--secret NAME=VALUE`: the name (letters, digits, _; not starting with a digit) and
// the value (may be empty, may hold '='). The error never quotes the value.
std::expected<std::pair<std::string, std::string>, std::string> parse_secret_assignment(
    std::string_view arg);

// `--secrets-file`: one `NAME=VALUE` per line (an `export ` prefix is allowed), blank lines
// and `#` comment lines skipped. A value in double quotes may use \n \t \" \\ escapes;
// one in single quotes is taken literally; an unquoted one loses its surrounding white
// space. `NAME<<DELIMITER` ... `DELIMITER` holds a multi-line value (a PEM key). Errors
// carry the line number, never a value.
std::expected<NameValueList, FileCommandError> parse_secrets_file(std::string_view content);

// The forms under which `secret` is masked (exposed for tests and for diagnostics that
// must explain what is masked without printing it).
std::vector<std::string> secret_variants(std::string_view secret);

// Base64 (RFC 4648 standard alphabet, with padding).
std::string base64_encode(std::string_view bytes);

}  // namespace sandci::agent
