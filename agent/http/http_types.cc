#include "agent/http/http_types.h"

#include <algorithm>

namespace sandci::agent::http {

namespace {

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool is_valid_header_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), is_token_char);
}

bool is_valid_header_value(std::string_view value) {
  return value.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos;
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

std::vector<std::string> Headers::get_all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [n, v] : fields_)
    if (iequals(n, name)) values.push_back(v);
  return values;
}

void Headers::add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }

void Headers::set(std::string name, std::string value) {
  auto first = std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.first, name); });
  if (first == fields_.end()) {
    add(std::move(name), std::move(value));
    return;
  }
  const auto index = static_cast<std::size_t>(first - fields_.begin());
  fields_.erase(std::remove_if(first + 1, fields_.end(), [&](const Field& f) { return iequals(f.first, name); }),
                fields_.end());
  fields_[index] = Field{std::move(name), std::move(value)};
}

std::size_t Headers::remove(std::string_view name) {
  const auto before = fields_.size();
  std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
  return before - fields_.size();
}

std::string_view HttpRequest::path() const {
  std::string_view t{target};
  return t.substr(0, t.find('?'));
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r{status, {}, std::move(body)};
  r.headers.set("Content-Type", "text/plain; charset=utf-8");
  return r;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r{status, {}, std::move(body)};
  r.headers.set("Content-Type", "application/json");
  return r;
}

HttpResponse HttpResponse::empty(int status) { return HttpResponse{status, {}, {}}; }

}  // namespace sandci::agent::http
