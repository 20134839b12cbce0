#pragma once
// The values that cross the HTTP layer: header lists, requests and responses. Plain
// data, no Beast: code that uses the server or the client compiles none of Asio.
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandci::agent::http {

// An ordered list of header fields. Names compare case-insensitively (RFC 9110 5.1);
// the order of `add` calls is kept, so a repeated field keeps its values' order.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;  // name as written, value
  using const_iterator = std::vector<Field>::const_iterator;

  Headers() = default;
  Headers(std::initializer_list<Field> fields) : fields_(fields) {}

  // The value of the first field named `name`, if any.
  std::optional<std::string> get(std::string_view name) const;
  // The values of every field named `name`, in order.
  std::vector<std::string> get_all(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }

  // Appends a field (a repeated name is kept as a second field).
  void add(std::string name, std::string value);
  // Replaces every field named `name` by one field, at the place of the first one
  // (or at the end when there was none).
  void set(std::string name, std::string value);
  // Removes every field named `name`; returns how many were removed.
  std::size_t remove(std::string_view name);

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  std::size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// ASCII case-insensitive comparison, as header names and URL schemes need.
bool iequals(std::string_view a, std::string_view b);

// A header name is an RFC 9110 token; a value has no CR, LF or NUL. The server drops
// fields that fail these checks and the client refuses to send them, so nothing a
// caller puts in a header can split the message (header injection).
bool is_valid_header_name(std::string_view name);
bool is_valid_header_value(std::string_view value);

struct HttpRequest {
  std::string method{};        // as sent, e.g. "POST"
  std::string target{};        // origin-form as sent, e.g. "/hooks/github?x=1"
  Headers headers{};
  std::string body{};          // the whole body, already de-chunked
  std::string remote_address{};  // the peer's IP address, e.g. "127.0.0.1" or "::1"

  // The target without its query string ("/a/b?x=1" -> "/a/b").
  std::string_view path() const;
};

struct HttpResponse {
  int status = 200;
  Headers headers{};
  std::string body{};

  // A response with `body` and Content-Type "text/plain; charset=utf-8".
  static HttpResponse text(int status, std::string body);
  // A response with `body` (already serialized JSON) and Content-Type "application/json".
  static HttpResponse json(int status, std::string body);
  // A response with an empty body and no Content-Type (e.g. 204).
  static HttpResponse empty(int status);
};

}  // namespace sandci::agent::http
