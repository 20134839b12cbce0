#pragma once
// A blocking HTTP/1.1 client for short exchanges with forges (commit statuses):
// one connection per request, closed afterwards. Boost.Beast lives in
// http_client.cc only.
#include <chrono>
#include <cstddef>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "agent/http/http_types.h"

namespace sandci::agent::http {

struct ClientOptions {
  std::filesystem::path ca_file{};  // PEM bundle of trusted CAs; empty: the system CA store
  std::size_t max_response_bytes = 4 * 1024 * 1024;  // body limit; headers are held to 64 KiB
};

struct ClientRequest {
  std::string method = "GET";
  std::string url{};  // http:// or https://
  // Content-Length, Transfer-Encoding and Connection are the client's own (copies here
  // are dropped); Host and User-Agent ("sandci") are filled in when absent.
  Headers headers{};
  std::string body{};
  std::chrono::milliseconds timeout{10'000};  // the whole exchange, connect to last byte
};

struct ClientResponse {
  int status = 0;
  Headers headers{};
  std::string body{};
};

class HttpClient {
 public:
  // Loads the trust store. A ca_file that cannot be loaded is not thrown: every
  // send() then returns that error.
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends the request and reads the whole response (any status is a response, not an
  // error). HTTPS always verifies the certificate chain against the trust store and
  // the certificate against the URL's host (a name via SNI and its DNS names, an IP
  // address against its IP address entries). Errors are values of the form
  // "<scheme://host:port/path>: <cause>", e.g. "...: connection refused",
  // "...: timed out after 2000 ms", "...: certificate verify failed (hostname
  // mismatch)", "...: response body over 4194304 bytes". The URL is quoted without
  // its query, and no error ever holds a header value or a body (they carry tokens).
  // Safe to call from several threads at once. Name resolution can outlast the
  // timeout when the system resolver hangs (getaddrinfo cannot be cancelled).
  std::expected<ClientResponse, std::string> send(const ClientRequest& request) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandci::agent::http
