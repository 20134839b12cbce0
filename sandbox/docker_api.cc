#include "sandbox/docker_api.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace sandci::sandbox {

namespace {
namespace net = boost::asio;
namespace http = boost::beast::http;
using Socket = net::local::stream_protocol::socket;

constexpr std::uint64_t kBodyLimit = 256ull << 20;  // inspect/list answers are far smaller
constexpr std::size_t kChunk = 64 * 1024;

std::string versioned(const std::string& target) { return std::string("/v") + kDockerApiVersion + target; }

SandboxError error(std::string message) { return SandboxError{std::move(message)}; }

using Clock = std::chrono::steady_clock;

// A connection's failure to connect as a sentence a person can act on.
SandboxError connect_error(const boost::system::error_code& ec, const std::string& path) {
  if (ec == boost::system::errc::no_such_file_or_directory || ec == boost::system::errc::connection_refused) {
    return error("the Docker engine is not running: " + ec.message() + " at " + path +
                 " (start dockerd, or point DOCKER_HOST / sandbox.docker_socket at its socket)");
  }
  if (ec == boost::system::errc::permission_denied) {
    return error("permission denied on the Docker socket " + path +
                 ": run the agent as root or as a member of the socket's group (usually docker)");
  }
  return error("cannot connect to the Docker engine at " + path + ": " + ec.message());
}

// One connection to the engine under one deadline. Every operation runs
// asynchronously until it completes or the deadline passes; then the socket is
// closed, which ends the operation, and it fails with timed_out. (Blocking
// socket calls cannot be bounded: Asio waits in poll() with no timeout.)
class Connection {
 public:
  Connection(std::string path, std::chrono::milliseconds bound)
      : path_(std::move(path)),
        bound_(bound),
        deadline_(Clock::now() + bound),
        io_(std::make_unique<net::io_context>()),
        socket_(std::make_unique<Socket>(*io_)) {}

  std::expected<void, SandboxError> open() {
    auto ec = run([&](auto done) { socket_->async_connect(net::local::stream_protocol::endpoint(path_), done); });
    if (ec) return std::unexpected(timed_out_ ? no_answer("a connection") : connect_error(ec, path_));
    return {};
  }

  // Starts an operation with the completion handler it is given, runs it to its
  // end or the deadline.
  template <class Start>
  boost::system::error_code run(Start&& start) {
    std::optional<boost::system::error_code> result;
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    io_->restart();
    while (!result && io_->run_one_until(deadline_) > 0) {
    }
    if (result) return *result;
    timed_out_ = true;
    boost::system::error_code ignored;
    socket_->close(ignored);
    io_->restart();
    io_->run();  // the aborted operation's handler
    return net::error::timed_out;
  }

  // `sentence: reason`, or the bound's sentence when the deadline ended it.
  SandboxError failed(const boost::system::error_code& ec, const std::string& sentence, const std::string& what) const {
    return timed_out_ ? no_answer(what) : error(sentence + ": " + ec.message());
  }
  SandboxError no_answer(const std::string& what) const {
    return error("the Docker engine at " + path_ + " gave no answer after " + std::to_string(bound_.count()) +
                 " ms to " + what);
  }

  std::expected<EngineResponse, SandboxError> read_response(boost::beast::flat_buffer& buffer,
                                                            const std::string& what) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    auto ec = run([&](auto done) { http::async_read(*socket_, buffer, parser, done); });
    if (ec) return std::unexpected(failed(ec, "the Docker engine's answer to " + what + " was cut", what));
    return EngineResponse{parser.get().result_int(), parser.get().body()};
  }

  Socket& socket() { return *socket_; }
  std::unique_ptr<net::io_context> take_io() { return std::move(io_); }
  std::unique_ptr<Socket> take_socket() { return std::move(socket_); }

 private:
  std::string path_;
  std::chrono::milliseconds bound_;
  Clock::time_point deadline_;
  std::unique_ptr<net::io_context> io_;
  std::unique_ptr<Socket> socket_;  // destroyed before io_
  bool timed_out_ = false;
};

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const std::string& body) {
  http::request<http::string_body> req{http::string_to_verb(method), versioned(target), 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "sandci");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  return req;
}

class HijackedStream final : public EngineStream {
 public:
  HijackedStream(std::unique_ptr<net::io_context> io, std::unique_ptr<Socket> socket, std::string pending)
      : io_(std::move(io)), socket_(std::move(socket)), pending_(std::move(pending)) {
    boost::system::error_code ec;
    socket_->non_blocking(true, ec);
  }
  int native_handle() const override { return const_cast<Socket&>(*socket_).native_handle(); }
  std::optional<std::string> read_some() override {
    if (!pending_.empty()) return std::exchange(pending_, {});
    char buf[kChunk];
    boost::system::error_code ec;
    std::size_t n = socket_->read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block || ec == net::error::try_again || ec == net::error::interrupted) {
      return std::string();
    }
    if (ec || n == 0) return std::nullopt;
    return std::string(buf, n);
  }
  std::size_t write_some(std::string_view bytes) override {
    boost::system::error_code ec;
    std::size_t n = socket_->write_some(net::buffer(bytes.data(), bytes.size()), ec);
    return ec ? 0 : n;
  }
  void close_write() override {
    boost::system::error_code ec;
    socket_->shutdown(net::socket_base::shutdown_send, ec);
  }

 private:
  std::unique_ptr<net::io_context> io_;
  std::unique_ptr<Socket> socket_;
  std::string pending_;
};
}  // namespace

std::expected<std::string, SandboxError> docker_socket_from_env() {
  const char* host = std::getenv("DOCKER_HOST");
  if (host == nullptr || *host == '\0') return std::string(kDefaultDockerSocket);
  std::string value = host;
  if (value.starts_with("unix://") && value.size() > 7) return value.substr(7);
  return std::unexpected(error("DOCKER_HOST=" + value +
                               " is not a local unix socket (unix:///path): sandci only talks to a local engine"));
}

std::string EngineResponse::message() const {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    return parsed["message"].get<std::string>();
  }
  std::string text = body.substr(0, 512);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "HTTP " + std::to_string(status) : text;
}

void FrameDemuxer::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      std::size_t take = std::min(bytes.size(), sizeof header_ - header_used_);
      std::copy_n(bytes.data(), take, header_ + header_used_);
      header_used_ += take;
      bytes.remove_prefix(take);
      if (header_used_ < sizeof header_) return;
      header_used_ = 0;
      stream_ = header_[0];
      remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                   (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;
    }
    std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
    sink_(stream_, bytes.substr(0, take));
    remaining_ -= static_cast<std::uint32_t>(take);
    bytes.remove_prefix(take);
  }
}

bool api_version_at_least(const std::string& version, const std::string& minimum) {
  auto parts = [](const std::string& v) {
    std::vector<int> out;
    std::istringstream in(v);
    std::string part;
    while (std::getline(in, part, '.')) out.push_back(std::atoi(part.c_str()));
    return out;
  };
  return parts(version) >= parts(minimum);
}

std::expected<EngineResponse, SandboxError> DockerClient::call(const std::string& method, const std::string& target,
                                                               const std::string& body,
                                                               std::chrono::milliseconds bound) const {
  Connection connection(socket_, bound);
  if (auto opened = connection.open(); !opened) return std::unexpected(opened.error());
  auto req = make_request(method, target, body);
  const std::string what = method + " " + target;
  auto ec = connection.run([&](auto done) { http::async_write(connection.socket(), req, done); });
  if (ec) return std::unexpected(connection.failed(ec, "cannot send " + what + " to the Docker engine", what));
  boost::beast::flat_buffer buffer;
  return connection.read_response(buffer, what);
}

std::expected<nlohmann::json, SandboxError> DockerClient::call_json(const std::string& method,
                                                                    const std::string& target,
                                                                    const nlohmann::json& body,
                                                                    const std::string& what,
                                                                    std::chrono::milliseconds bound) const {
  auto response = call(method, target, body.is_null() ? std::string() : body.dump(), bound);
  if (!response) return std::unexpected(error(what + ": " + response.error().message));
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(error(what + ": the Docker engine said " + std::to_string(response->status) + ": " +
                                 response->message()));
  }
  if (response->body.empty()) return nlohmann::json();
  auto parsed = nlohmann::json::parse(response->body, nullptr, false);
  if (parsed.is_discarded()) return std::unexpected(error(what + ": the Docker engine's answer is not JSON"));
  return parsed;
}

std::expected<void, SandboxError> DockerClient::check_engine(const std::string& runtime) const {
  auto version = call_json("GET", "/version", nullptr, "asking the Docker engine its version");
  if (!version) return std::unexpected(version.error());
  const std::string api = version->value("ApiVersion", "");
  if (api.empty() || !api_version_at_least(api, kDockerApiVersion)) {
    return std::unexpected(error("the Docker engine at " + socket_ + " speaks API " + (api.empty() ? "?" : api) +
                                 " (Docker " + version->value("Version", "?") + "); sandci needs API " +
                                 kDockerApiVersion + " or later (Docker 20.10 or later)"));
  }
  auto info = call_json("GET", "/info", nullptr, "asking the Docker engine its runtimes");
  if (!info) return std::unexpected(info.error());
  const auto& runtimes = (*info)["Runtimes"];
  if (!runtimes.is_object() || !runtimes.contains(runtime)) {
    std::string known;
    if (runtimes.is_object()) {
      for (const auto& [name, _] : runtimes.items()) known += (known.empty() ? "" : ", ") + name;
    }
    return std::unexpected(error("the Docker engine at " + socket_ + " has no runtime \"" + runtime +
                                 "\" registered (it has: " + known + "); add it to daemon.json, e.g. "
                                 "{\"runtimes\":{\"runsc\":{\"path\":\"/usr/bin/runsc\",\"runtimeArgs\":"
                                 "[\"--network=none\"]}}}, and restart dockerd"));
  }
  return {};
}

std::expected<std::unique_ptr<EngineStream>, SandboxError> DockerClient::start_exec(
    const std::string& exec_id, std::chrono::milliseconds bound) const {
  Connection connection(socket_, bound);
  if (auto opened = connection.open(); !opened) return std::unexpected(opened.error());
  auto req = make_request("POST", "/exec/" + exec_id + "/start", R"({"Detach":false,"Tty":false})");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "tcp");
  const std::string what = "the start of exec " + exec_id;
  auto ec = connection.run([&](auto done) { http::async_write(connection.socket(), req, done); });
  if (ec) return std::unexpected(connection.failed(ec, "cannot start exec " + exec_id, what));
  // The answer's header is read by hand up to its blank line: what follows is
  // the exec's raw stream, not an HTTP body, and must stay ours byte for byte.
  std::string head;
  std::size_t end = std::string::npos;
  char buf[4096];
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > 64 * 1024) return std::unexpected(error("the Docker engine's answer to exec start is too long"));
    std::size_t n = 0;
    ec = connection.run([&](auto done) {
      connection.socket().async_read_some(net::buffer(buf), [&n, done](boost::system::error_code e, std::size_t got) {
        n = got;
        done(e);
      });
    });
    if (ec) return std::unexpected(connection.failed(ec, "the Docker engine did not start exec " + exec_id, what));
    head.append(buf, n);
  }
  // "HTTP/1.1 101 UPGRADED": the status is the second word.
  const auto space = head.find(' ');
  const unsigned status = space == std::string::npos ? 0u : static_cast<unsigned>(std::atoi(head.c_str() + space + 1));
  if (status != 101 && status != 200) {
    return std::unexpected(error("the Docker engine refused to start exec " + exec_id + ": HTTP " +
                                 std::to_string(status)));
  }
  std::string pending = head.substr(end + 4);
  auto io = connection.take_io();
  return std::make_unique<HijackedStream>(std::move(io), connection.take_socket(), std::move(pending));
}

std::expected<EngineResponse, SandboxError> DockerClient::upload_from_fd(const std::string& method,
                                                                         const std::string& target, int fd,
                                                                         const std::string& content_type,
                                                                         std::chrono::milliseconds bound) const {
  Connection connection(socket_, bound);
  if (auto opened = connection.open(); !opened) return std::unexpected(opened.error());
  http::request<http::empty_body> req{http::string_to_verb(method), versioned(target), 11};
  req.set(http::field::host, "docker");
  req.set(http::field::content_type, content_type);
  req.chunked(true);
  http::request_serializer<http::empty_body> serializer{req};
  auto& socket = connection.socket();
  auto ec = connection.run([&](auto done) { http::async_write_header(socket, serializer, done); });
  char buf[kChunk];
  while (!ec) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    auto chunk = http::make_chunk(net::buffer(buf, static_cast<std::size_t>(n)));
    ec = connection.run([&](auto done) { net::async_write(socket, chunk, done); });
  }
  if (!ec) {
    auto last = http::make_chunk_last();
    ec = connection.run([&](auto done) { net::async_write(socket, last, done); });
  }
  // The engine may answer (and close) early, e.g. when the path is missing: read
  // its answer whatever happened to the upload.
  boost::beast::flat_buffer buffer;
  const std::string what = method + " " + target;
  auto response = connection.read_response(buffer, what);
  if (!response && ec) return std::unexpected(connection.failed(ec, "cannot upload to " + target, what));
  return response;
}

std::expected<EngineResponse, SandboxError> DockerClient::get_to_fd(const std::string& target, int fd,
                                                                    std::chrono::milliseconds bound) const {
  Connection connection(socket_, bound);
  if (auto opened = connection.open(); !opened) return std::unexpected(opened.error());
  auto& socket = connection.socket();
  http::request<http::empty_body> req{http::verb::get, versioned(target), 11};
  req.set(http::field::host, "docker");
  const std::string what = "GET " + target;
  auto ec = connection.run([&](auto done) { http::async_write(socket, req, done); });
  if (ec) return std::unexpected(connection.failed(ec, "cannot send " + what, what));
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  ec = connection.run([&](auto done) { http::async_read_header(socket, buffer, parser, done); });
  if (ec) return std::unexpected(connection.failed(ec, "the Docker engine's answer to " + what + " was cut", what));
  EngineResponse response{parser.get().result_int(), {}};
  const bool ok = response.status >= 200 && response.status < 300;
  char buf[kChunk];
  while (!parser.is_done()) {
    parser.get().body().data = buf;
    parser.get().body().size = sizeof buf;
    ec = connection.run([&](auto done) { http::async_read(socket, buffer, parser, done); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return std::unexpected(connection.failed(ec, "the Docker engine's answer to " + what + " was cut", what));
    const std::size_t got = sizeof buf - parser.get().body().size;
    if (!ok) {
      if (response.body.size() < 64 * 1024) response.body.append(buf, got);
      continue;
    }
    for (std::size_t off = 0; off < got;) {
      ssize_t n = ::write(fd, buf + off, got - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::unexpected(error("cannot write the answer to " + what + " out"));
      off += static_cast<std::size_t>(n);
    }
  }
  return response;
}

}  // namespace sandci::sandbox
