#pragma once
// Job logs on disk: a running job writes <job>.log; once its run ends the log is
// stored gzip-compressed as <job>.log.gz and the plain file removed. Readers name the
// plain path (as the store records it) and get the text from either file, so a
// compression between two reads changes nothing they see.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <istream>
#include <memory>
#include <string>

namespace sandci::agent::server {

// "<plain>.gz": where the compressed form of the log at `plain` lives.
std::filesystem::path compressed_log_path(const std::filesystem::path& plain);

// The log's text, readable and seekable: the plain file when it exists, else the
// compressed one inflated into memory; nullptr when neither exists or the compressed
// one is damaged.
std::unique_ptr<std::istream> open_job_log(const std::filesystem::path& plain);

// Compresses `plain` into <plain>.gz (written beside it, then renamed into place) and
// removes `plain`. An error names the file; `plain` is then left as it was.
std::expected<void, std::string> compress_log(const std::filesystem::path& plain);

struct CompressedLogs {
  std::size_t files = 0;
  std::uintmax_t bytes_before = 0, bytes_after = 0;
};

// Compresses every *.log under `logs_dir` (recursively). Problems are logged and the
// file left plain; a missing folder compresses nothing.
CompressedLogs compress_logs_under(const std::filesystem::path& logs_dir);

}  // namespace sandci::agent::server
