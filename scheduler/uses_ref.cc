#include "scheduler/uses_ref.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace sandci::scheduler {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(sep, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// A path inside a repository: no "..", no empty segments once "." is dropped.
std::expected<std::string, std::string> clean_path(std::string_view path, std::string_view whole) {
  std::string out;
  for (std::string_view seg : split(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..")
      return std::unexpected("'uses: " + std::string(whole) + "' climbs out of its repository with '..'");
    if (!out.empty()) out += '/';
    out += seg;
  }
  return out;
}

std::string usage(std::string_view text) {
  return "'uses: " + std::string(text) + "' must be ./path (an action in this repository), "
         "owner/repo[/path]@ref, or docker://image";
}

}  // namespace

std::string UsesRef::name() const {
  switch (kind) {
    case Kind::local: return path.empty() ? "./" : "./" + path;
    case Kind::remote: return lower(owner + "/" + repo + (path.empty() ? "" : "/" + path));
    case Kind::docker: return "docker://" + image;
  }
  return {};
}

std::expected<UsesRef, std::string> parse_uses(std::string_view text) {
  if (text.empty()) return std::unexpected(std::string("'uses' is empty"));
  if (text.find_first_of(" \t\r\n") != std::string_view::npos)
    return std::unexpected("'uses: " + std::string(text) + "' holds white space");
  UsesRef ref;
  if (text.rfind("docker://", 0) == 0) {
    ref.kind = UsesRef::Kind::docker;
    ref.image = std::string(text.substr(9));
    if (ref.image.empty()) return std::unexpected(usage(text));
    return ref;
  }
  // `$/path` names a path in the workflow's own repository, which for sandci is the
  // run's checkout: read like `./path`.
  if (text.rfind("./", 0) == 0 || text == "." || text.rfind("$/", 0) == 0) {
    ref.kind = UsesRef::Kind::local;
    auto path = clean_path(text.substr(text[0] == '$' ? 2 : 1), text);
    if (!path) return std::unexpected(path.error());
    ref.path = *path;
    return ref;
  }
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos)
    return std::unexpected("'uses: " + std::string(text) + "' must name a version after '@', like " +
                           std::string(text) + "@v4");
  ref.kind = UsesRef::Kind::remote;
  ref.ref = std::string(text.substr(at + 1));
  if (ref.ref.empty())
    return std::unexpected("'uses: " + std::string(text) + "' must name a version after '@'");
  auto parts = split(text.substr(0, at), '/');
  if (parts.size() < 2 || parts[0].empty() || parts[1].empty()) return std::unexpected(usage(text));
  ref.owner = std::string(parts[0]);
  ref.repo = std::string(parts[1]);
  std::string rest;
  for (std::size_t i = 2; i < parts.size(); ++i) rest += std::string(i > 2 ? "/" : "") + std::string(parts[i]);
  auto path = clean_path(rest, text);
  if (!path) return std::unexpected(path.error());
  ref.path = *path;
  return ref;
}

}  // namespace sandci::scheduler
