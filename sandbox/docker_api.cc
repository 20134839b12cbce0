#include "sandbox/docker_api.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <vector>

#include <boost/asio/connect.hpp>
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

// Opens a connection to the engine, turning the usual failures into sentences.
std::expected<std::unique_ptr<Socket>, SandboxError> connect(net::io_context& io, const std::string& path) {
  auto socket = std::make_unique<Socket>(io);
  boost::system::error_code ec;
  socket->connect(net::local::stream_protocol::endpoint(path), ec);
  if (!ec) return socket;
  if (ec == boost::system::errc::no_such_file_or_directory || ec == boost::system::errc::connection_refused) {
    return std::unexpected(error("the Docker engine is not running: " + ec.message() + " at " + path +
                                 " (start dockerd, or point DOCKER_HOST / sandbox.docker_socket at its socket)"));
  }
  if (ec == boost::system::errc::permission_denied) {
    return std::unexpected(error("permission denied on the Docker socket " + path +
                                 ": run the agent as root or as a member of the socket's group (usually docker)"));
  }
  return std::unexpected(error("cannot connect to the Docker engine at " + path + ": " + ec.message()));
}

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

std::expected<EngineResponse, SandboxError> read_response(Socket& socket, boost::beast::flat_buffer& buffer,
                                                          const std::string& what) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  boost::system::error_code ec;
  http::read(socket, buffer, parser, ec);
  if (ec) return std::unexpected(error("the Docker engine's answer to " + what + " was cut: " + ec.message()));
  return EngineResponse{parser.get().result_int(), parser.get().body()};
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
                                                               const std::string& body) const {
  net::io_context io;
  auto socket = connect(io, socket_);
  if (!socket) return std::unexpected(socket.error());
  auto req = make_request(method, target, body);
  boost::system::error_code ec;
  http::write(**socket, req, ec);
  if (ec) return std::unexpected(error("cannot send " + method + " " + target + " to the Docker engine: " + ec.message()));
  boost::beast::flat_buffer buffer;
  return read_response(**socket, buffer, method + " " + target);
}

std::expected<nlohmann::json, SandboxError> DockerClient::call_json(const std::string& method,
                                                                    const std::string& target,
                                                                    const nlohmann::json& body,
                                                                    const std::string& what) const {
  auto response = call(method, target, body.is_null() ? std::string() : body.dump());
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

std::expected<std::unique_ptr<EngineStream>, SandboxError> DockerClient::start_exec(const std::string& exec_id) const {
  auto io = std::make_unique<net::io_context>();
  auto socket = connect(*io, socket_);
  if (!socket) return std::unexpected(socket.error());
  auto req = make_request("POST", "/exec/" + exec_id + "/start", R"({"Detach":false,"Tty":false})");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "tcp");
  boost::system::error_code ec;
  http::write(**socket, req, ec);
  if (ec) return std::unexpected(error("cannot start exec " + exec_id + ": " + ec.message()));
  // The answer's header is read by hand up to its blank line: what follows is
  // the exec's raw stream, not an HTTP body, and must stay ours byte for byte.
  std::string head;
  std::size_t end = std::string::npos;
  char buf[4096];
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > 64 * 1024) return std::unexpected(error("the Docker engine's answer to exec start is too long"));
    std::size_t n = (*socket)->read_some(net::buffer(buf), ec);
    if (ec) {
      return std::unexpected(error("the Docker engine did not start exec " + exec_id + ": " + ec.message()));
    }
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
  return std::make_unique<HijackedStream>(std::move(io), std::move(*socket), std::move(pending));
}

std::expected<EngineResponse, SandboxError> DockerClient::upload_from_fd(const std::string& method, const std::string& target, int fd,
                                                                      const std::string& content_type) const {
  net::io_context io;
  auto socket = connect(io, socket_);
  if (!socket) return std::unexpected(socket.error());
  http::request<http::empty_body> req{http::string_to_verb(method), versioned(target), 11};
  req.set(http::field::host, "docker");
  req.set(http::field::content_type, content_type);
  req.chunked(true);
  http::request_serializer<http::empty_body> serializer{req};
  boost::system::error_code ec;
  http::write_header(**socket, serializer, ec);
  char buf[kChunk];
  while (!ec) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    net::write(**socket, http::make_chunk(net::buffer(buf, static_cast<std::size_t>(n))), ec);
  }
  if (!ec) net::write(**socket, http::make_chunk_last(), ec);
  // The engine may answer (and close) early, e.g. when the path is missing: read
  // its answer whatever happened to the upload.
  boost::beast::flat_buffer buffer;
  auto response = read_response(**socket, buffer, method + " " + target);
  if (!response && ec) return std::unexpected(error("cannot upload to " + target + ": " + ec.message()));
  return response;
}

std::expected<EngineResponse, SandboxError> DockerClient::get_to_fd(const std::string& target, int fd) const {
  net::io_context io;
  auto socket = connect(io, socket_);
  if (!socket) return std::unexpected(socket.error());
  http::request<http::empty_body> req{http::verb::get, versioned(target), 11};
  req.set(http::field::host, "docker");
  boost::system::error_code ec;
  http::write(**socket, req, ec);
  if (ec) return std::unexpected(error("cannot send GET " + target + ": " + ec.message()));
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(**socket, buffer, parser, ec);
  if (ec) return std::unexpected(error("the Docker engine's answer to GET " + target + " was cut: " + ec.message()));
  EngineResponse response{parser.get().result_int(), {}};
  const bool ok = response.status >= 200 && response.status < 300;
  char buf[kChunk];
  while (!parser.is_done()) {
    parser.get().body().data = buf;
    parser.get().body().size = sizeof buf;
    http::read(**socket, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return std::unexpected(error("the Docker engine's answer to GET " + target + " was cut: " + ec.message()));
    const std::size_t got = sizeof buf - parser.get().body().size;
    if (!ok) {
      if (response.body.size() < 64 * 1024) response.body.append(buf, got);
      continue;
    }
    for (std::size_t off = 0; off < got;) {
      ssize_t n = ::write(fd, buf + off, got - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::unexpected(error("cannot write the answer to GET " + target + " out"));
      off += static_cast<std::size_t>(n);
    }
  }
  return response;
}

}  // namespace sandci::sandbox
