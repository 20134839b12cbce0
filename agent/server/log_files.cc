#include "agent/server/log_files.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

namespace sandci::agent::server {

namespace fs = std::filesystem;

namespace {

// Inflates a whole gzip file; nullopt when it cannot be read or is damaged.
std::optional<std::string> inflate_file(const fs::path& file) {
  gzFile in = gzopen(file.c_str(), "rb");
  if (!in) return std::nullopt;
  // zlib would pass a file that is not gzip through as it is: that is damage here.
  if (gzdirect(in) != 0) {
    gzclose(in);
    return std::nullopt;
  }
  std::string out;
  std::string chunk(1u << 16, '\0');
  for (;;) {
    const int got = gzread(in, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      gzclose(in);
      return std::nullopt;
    }
    if (got == 0) break;
    out.append(chunk.data(), static_cast<std::size_t>(got));
  }
  const bool clean = gzclose(in) == Z_OK;
  if (!clean) return std::nullopt;
  return out;
}

std::string zlib_problem(gzFile file) {
  int code = 0;
  const char* message = gzerror(file, &code);
  return code == Z_ERRNO ? std::strerror(errno) : (message ? message : "zlib error");
}

}  // namespace

fs::path compressed_log_path(const fs::path& plain) {
  fs::path gz = plain;
  gz += ".gz";
  return gz;
}

std::unique_ptr<std::istream> open_job_log(const fs::path& plain) {
  // Plain first: a compression in between renames the .gz into place before it
  // removes the plain file, so one of the two is always there.
  auto file = std::make_unique<std::ifstream>(plain, std::ios::binary);
  if (*file) return file;
  auto text = inflate_file(compressed_log_path(plain));
  if (!text) return nullptr;
  return std::make_unique<std::istringstream>(std::move(*text), std::ios::binary);
}

std::expected<void, std::string> compress_log(const fs::path& plain) {
  const fs::path target = compressed_log_path(plain);
  fs::path temporary = target;
  temporary += ".tmp";
  std::ifstream in(plain, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + plain.string() + ": " + std::strerror(errno));
  gzFile out = gzopen(temporary.c_str(), "wb6");
  if (!out) return std::unexpected("cannot write " + temporary.string() + ": " + std::strerror(errno));
  std::string chunk(1u << 16, '\0');
  std::string problem;
  while (problem.empty()) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<unsigned>(in.gcount());
    if (got == 0) break;
    if (gzwrite(out, chunk.data(), got) != static_cast<int>(got)) problem = zlib_problem(out);
  }
  if (problem.empty() && in.bad()) problem = "read failed";
  if (gzclose(out) != Z_OK && problem.empty()) problem = "closing failed";
  std::error_code ec;
  if (problem.empty()) {
    // Durable before the plain copy goes away.
    const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) problem = std::string("fsync: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
  }
  if (problem.empty()) {
    fs::rename(temporary, target, ec);
    if (ec) problem = "rename: " + ec.message();
  }
  if (!problem.empty()) {
    fs::remove(temporary, ec);
    return std::unexpected("compressing " + plain.string() + ": " + problem);
  }
  fs::remove(plain, ec);
  if (ec) return std::unexpected("removing " + plain.string() + " after compressing it: " + ec.message());
  return {};
}

CompressedLogs compress_logs_under(const fs::path& logs_dir) {
  CompressedLogs done;
  std::error_code ec;
  std::vector<fs::path> logs;
  for (fs::recursive_directory_iterator it(logs_dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && it->path().extension() == ".log") logs.push_back(it->path());
  for (const auto& plain : logs) {
    const auto before = fs::file_size(plain, ec);
    if (ec) continue;
    if (auto compressed = compress_log(plain); !compressed) {
      spdlog::warn("event=log_not_compressed error=\"{}\"", compressed.error());
      continue;
    }
    ++done.files;
    done.bytes_before += before;
    done.bytes_after += fs::file_size(compressed_log_path(plain), ec);
  }
  return done;
}

}  // namespace sandci::agent::server
