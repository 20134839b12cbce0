#pragma once
// A small Docker Engine API client: HTTP/1.1 (Boost.Beast) over the engine's unix
// socket (Boost.Asio local::stream_protocol), one connection per call, JSON with
// nlohmann_json. It speaks API v1.41 (dockerd 20.10) and later, and never runs
// the docker CLI. Errors are values carrying a sentence a person can act on.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

inline constexpr const char* kDefaultDockerSocket = "/var/run/docker.sock";
inline constexpr const char* kDockerApiVersion = "1.41";
// How long one call to the engine may take, from connecting to its answer's last
// byte, unless the call names its own bound. An engine that stops answering (a
// wedged dockerd, or a runtime blocked on a container that no longer answers)
// must not hold its caller for good: past the bound the connection is closed and
// the call fails saying "the Docker engine gave no answer after N ms to ...".
inline constexpr std::chrono::milliseconds kEngineCallBound = std::chrono::seconds(60);

// The engine's socket: DOCKER_HOST (`unix://PATH`) when set, as every Docker
// client does, else /var/run/docker.sock. A DOCKER_HOST that is not a unix
// socket (tcp://, ssh://) is refused: jobs' engines are local only.
std::expected<std::string, SandboxError> docker_socket_from_env();

struct EngineResponse {
  unsigned status = 0;
  std::string body;
  // The engine's {"message": ...} (or the raw body) for error sentences.
  std::string message() const;
};

// Splits the multiplexed stream of a non-TTY attach (exec start, logs) into its
// frames: an 8-byte header (byte 0: 1 stdout, 2 stderr, 0 stdin; bytes 4..7
// big-endian payload length) then the payload. Frames may arrive cut anywhere.
class FrameDemuxer {
 public:
  using Sink = std::function<void(int stream, std::string_view payload)>;
  explicit FrameDemuxer(Sink sink) : sink_(std::move(sink)) {}
  void feed(std::string_view bytes);
  // True when the bytes fed so far end inside a frame (a cut stream).
  bool partial() const { return header_used_ != 0 || remaining_ != 0; }

 private:
  Sink sink_;
  unsigned char header_[8]{};
  std::size_t header_used_ = 0;
  std::uint32_t remaining_ = 0;
  int stream_ = 0;
};

// The raw, bidirectional connection an exec start hands over (the "hijacked"
// HTTP connection). Not thread-safe; one reader.
class EngineStream {
 public:
  virtual ~EngineStream() = default;
  // The descriptor to poll for reading and writing.
  virtual int native_handle() const = 0;
  // Reads what is available without blocking: bytes (maybe none yet), or
  // nullopt at end of stream.
  virtual std::optional<std::string> read_some() = 0;
  // Writes without blocking; returns how many bytes were taken (may be 0).
  virtual std::size_t write_some(std::string_view bytes) = 0;
  // Half-closes: the command sees end of its stdin.
  virtual void close_write() = 0;
};

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path) : socket_(std::move(socket_path)) {}
  const std::string& socket_path() const { return socket_; }

  // One request; `target` is the path after the version prefix ("/containers/json").
  // Fails only when the engine could not be reached or answered garbage; HTTP
  // error statuses are returned as responses.
  std::expected<EngineResponse, SandboxError> call(const std::string& method, const std::string& target,
                                                   const std::string& body = {},
                                                   std::chrono::milliseconds bound = kEngineCallBound) const;
  // The same with a JSON body, succeeding only for 2xx answers; the answer's JSON
  // (null for an empty body). `what` starts the error sentence.
  std::expected<nlohmann::json, SandboxError> call_json(const std::string& method, const std::string& target,
                                                        const nlohmann::json& body, const std::string& what,
                                                        std::chrono::milliseconds bound = kEngineCallBound) const;

  // GET /version and /info: the engine answers, speaks API >= 1.41, and knows
  // `runtime` (GET /info Runtimes). Each failure is its own sentence.
  std::expected<void, SandboxError> check_engine(const std::string& runtime) const;

  // POST /exec/{id}/start, then the connection is the exec's raw stream (the
  // bound applies until the engine hands it over; the stream itself is polled).
  std::expected<std::unique_ptr<EngineStream>, SandboxError> start_exec(
      const std::string& exec_id, std::chrono::milliseconds bound = kEngineCallBound) const;

  // Sends a request body read from `fd` until its end (chunked), e.g. a tar for
  // PUT /containers/{id}/archive or POST /images/create?fromSrc=-.
  std::expected<EngineResponse, SandboxError> upload_from_fd(const std::string& method, const std::string& target, int fd,
                                                             const std::string& content_type,
                                                             std::chrono::milliseconds bound) const;
  // GET whose successful body is written to `fd` as it arrives; an error status's
  // body is returned instead (not written).
  std::expected<EngineResponse, SandboxError> get_to_fd(const std::string& target, int fd,
                                                        std::chrono::milliseconds bound = kEngineCallBound) const;

 private:
  std::string socket_;
};

// "1.41" < "1.43": compares dotted numbers.
bool api_version_at_least(const std::string& version, const std::string& minimum);

}  // namespace sandci::sandbox
