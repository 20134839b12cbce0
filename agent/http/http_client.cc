#include "agent/http/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "agent/http/url.h"

namespace sandci::agent::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;

std::string to_std(beast::string_view s) { return std::string{s.data(), s.size()}; }

bool is_token(std::string_view s) { return is_valid_header_name(s); }  // a method is a token too

// Starts one asynchronous operation with `start(handler)` and runs the I/O context
// until it completes. Every operation here carries its own deadline, so this returns.
template <class Start>
error_code run_step(asio::io_context& io, Start&& start) {
  error_code result;
  start([&result](const error_code& ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

// One exchange: what a failure was doing and how it failed, turned into words once.
class Exchange {
 public:
  Exchange(const Url& url, const ClientRequest& request, std::size_t max_response_bytes)
      : url_(url), request_(request), max_response_bytes_(max_response_bytes),
        deadline_(Clock::now() + request.timeout) {}

  std::unexpected<std::string> fail(const std::string& cause) const {
    return std::unexpected(url_.for_errors() + ": " + cause);
  }

  std::unexpected<std::string> fail(const error_code& ec) const { return fail(describe(ec)); }

  std::string describe(const error_code& ec) const {
    if (ec == beast::error::timeout || ec == asio::error::timed_out || ec == asio::error::operation_aborted)
      return "timed out after " + std::to_string(request_.timeout.count()) + " ms";
    if (ec == asio::error::connection_refused) return "connection refused";
    if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again)
      return "cannot resolve host \"" + url_.host + "\"";
    if (ec == bhttp::error::body_limit) return "response body over " + std::to_string(max_response_bytes_) + " bytes";
    if (ec == bhttp::error::header_limit)
      return "response headers over " + std::to_string(kMaxResponseHeaderBytes) + " bytes";
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset)
      return "connection closed before a complete response (" + ec.message() + ")";
    return ec.message();
  }

  Clock::time_point deadline() const { return deadline_; }

 private:
  const Url& url_;
  const ClientRequest& request_;
  std::size_t max_response_bytes_;
  Clock::time_point deadline_;
};

std::expected<tcp::resolver::results_type, std::string> resolve(asio::io_context& io, const Url& url,
                                                                 const Exchange& exchange) {
  tcp::resolver resolver(io);
  asio::steady_timer timer(io);
  timer.expires_at(exchange.deadline());
  timer.async_wait([&resolver](const error_code& ec) {
    if (!ec) resolver.cancel();
  });
  tcp::resolver::results_type results;
  const auto flags = url.host_is_ip() ? tcp::resolver::numeric_host | tcp::resolver::numeric_service
                                      : tcp::resolver::numeric_service;
  const auto ec = run_step(io, [&](auto handler) {
    resolver.async_resolve(url.host, std::to_string(url.port), flags,
                           [&, handler](const error_code& e, tcp::resolver::results_type r) mutable {
                             timer.cancel();
                             results = std::move(r);
                             handler(e);
                           });
  });
  if (ec) return exchange.fail(ec);
  return results;
}

std::expected<bhttp::request<bhttp::string_body>, std::string> build_request(const Url& url,
                                                                             const ClientRequest& request,
                                                                             const Exchange& exchange) {
  if (!is_token(request.method)) return exchange.fail("invalid method");
  bhttp::request<bhttp::string_body> out;
  out.version(11);
  out.method_string(request.method);
  out.target(url.target);
  for (const auto& [name, value] : request.headers) {
    // Never quote the value: it may be a token.
    if (!is_valid_header_name(name)) return exchange.fail("invalid header name");
    if (!is_valid_header_value(value)) return exchange.fail("header \"" + name + "\" has a CR, LF or NUL in its value");
    if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection")) continue;
    out.insert(name, value);
  }
  if (!request.headers.contains("Host")) out.set(bhttp::field::host, url.host_header());
  if (!request.headers.contains("User-Agent")) out.set(bhttp::field::user_agent, "sandci");
  out.keep_alive(false);
  out.body() = request.body;
  out.prepare_payload();
  return out;
}

// Names the cause of a failed handshake: a certificate that did not verify says why.
std::string describe_handshake_failure(SSL* ssl, const error_code& ec, const Exchange& exchange) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK)
    return std::string{"certificate verify failed ("} + X509_verify_cert_error_string(verify) + ")";
  if (ec == beast::error::timeout) return exchange.describe(ec);
  return "TLS handshake failed: " + ec.message();
}

std::optional<std::string> require_peer_identity(SSL* ssl, const Url& url) {
  if (url.host_is_ip()) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str()) != 1) return "cannot verify IP address";
    return std::nullopt;
  }
  if (SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1) return "cannot set the TLS server name";
  if (SSL_set1_host(ssl, url.host.c_str()) != 1) return "cannot verify host name";
  return std::nullopt;
}

template <class Stream>
std::expected<ClientResponse, std::string> write_and_read(asio::io_context& io, Stream& stream,
                                                          bhttp::request<bhttp::string_body>& request,
                                                          std::size_t max_response_bytes,
                                                          const Exchange& exchange) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_at(exchange.deadline());
  if (auto ec = run_step(io, [&](auto handler) { bhttp::async_write(stream, request, handler); }))
    return exchange.fail(ec);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(static_cast<std::uint64_t>(max_response_bytes));
  if (request.method() == bhttp::verb::head) parser.skip(true);
  auto ec = run_step(io, [&](auto handler) { bhttp::async_read(stream, buffer, parser, handler); });
  if (ec == asio::ssl::error::stream_truncated) parser.put_eof(ec);  // closed without close_notify
  if (ec) return exchange.fail(ec);

  auto message = parser.release();
  ClientResponse response;
  response.status = static_cast<int>(message.result_int());
  for (const auto& field : message) response.headers.add(to_std(field.name_string()), to_std(field.value()));
  response.body = std::move(message.body());
  error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return response;
}

}  // namespace

struct HttpClient::Impl {
  ClientOptions options;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::optional<std::string> setup_error;
};

HttpClient::HttpClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto& tls = impl_->tls;
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls.set_verify_mode(asio::ssl::verify_peer);
  error_code ec;
  if (impl_->options.ca_file.empty()) {
    tls.set_default_verify_paths(ec);
    if (ec) impl_->setup_error = "cannot load the system CA store: " + ec.message();
  } else {
    tls.load_verify_file(impl_->options.ca_file.string(), ec);
    if (ec) impl_->setup_error = "cannot load CA file " + impl_->options.ca_file.string() + ": " + ec.message();
  }
}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

std::expected<ClientResponse, std::string> HttpClient::send(const ClientRequest& request) const {
  const auto url = parse_url(request.url);
  if (!url) return std::unexpected(url.error());
  const Exchange exchange(*url, request, impl_->options.max_response_bytes);
  if (url->is_https() && impl_->setup_error) return exchange.fail(*impl_->setup_error);
  auto message = build_request(*url, request, exchange);
  if (!message) return std::unexpected(message.error());

  asio::io_context io{1};
  const auto endpoints = resolve(io, *url, exchange);
  if (!endpoints) return std::unexpected(endpoints.error());

  beast::tcp_stream tcp_stream(io);
  tcp_stream.expires_at(exchange.deadline());
  if (auto ec = run_step(io, [&](auto handler) { tcp_stream.async_connect(*endpoints, handler); }))
    return exchange.fail(ec);
  if (!url->is_https())
    return write_and_read(io, tcp_stream, *message, impl_->options.max_response_bytes, exchange);

  beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(tcp_stream), impl_->tls);
  if (auto error = require_peer_identity(tls_stream.native_handle(), *url)) return exchange.fail(*error);
  beast::get_lowest_layer(tls_stream).expires_at(exchange.deadline());
  if (auto ec = run_step(io, [&](auto handler) { tls_stream.async_handshake(asio::ssl::stream_base::client, handler); }))
    return exchange.fail(describe_handshake_failure(tls_stream.native_handle(), ec, exchange));
  return write_and_read(io, tls_stream, *message, impl_->options.max_response_bytes, exchange);
}

}  // namespace sandci::agent::http
