#include "git/url.h"

#include <git2.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "git/libgit2_init.h"

namespace sandci::git {
namespace {

bool is_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// "user@host:path" with no "://" and the ':' before any '/' (git's rule).
bool looks_scp_like(std::string_view url) {
  auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto slash = url.find('/');
  return slash == std::string_view::npos || colon < slash;
}

bool parse_port(std::string_view text, int& port) {
  if (text.empty()) return true;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && ptr == text.data() + text.size() && port > 0 && port < 65536;
}

bool parse_host_port(std::string_view hostport, RepoUrl& out) {
  if (hostport.starts_with('[')) {  // [::1]:port
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return false;
    out.host = std::string(hostport.substr(1, close - 1));
    auto rest = hostport.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    return parse_port(rest.substr(1), out.port);
  }
  auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    out.host = std::string(hostport);
    return true;
  }
  out.host = std::string(hostport.substr(0, colon));
  return parse_port(hostport.substr(colon + 1), out.port);
}

void split_userinfo(std::string_view userinfo, RepoUrl& out) {
  auto colon = userinfo.find(':');
  out.user = std::string(userinfo.substr(0, colon));
  if (colon != std::string_view::npos) out.password = std::string(userinfo.substr(colon + 1));
}

std::optional<RepoUrl> parse_scheme_url(std::string_view url, std::size_t sep) {
  RepoUrl out;
  out.scheme = std::string(url.substr(0, sep));
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto rest = url.substr(sep + 3);
  auto path_start = rest.find_first_of("/?#");
  auto authority = rest.substr(0, path_start);
  out.path = path_start == std::string_view::npos ? "" : std::string(rest.substr(path_start));
  // A password may contain '@' unencoded: the host starts after the last one.
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    split_userinfo(authority.substr(0, at), out);
    authority = authority.substr(at + 1);
  }
  if (out.scheme == "file") return out;
  if (authority.empty() || !parse_host_port(authority, out)) return std::nullopt;
  return out;
}

std::string strip_query(std::string path) {
  auto q = path.find_first_of("?#");
  if (q != std::string::npos) path.resize(q);
  return path;
}

std::string slug_of(const RepoUrl& u) {
  std::string raw = u.host + "/" + strip_query(u.path);
  if (raw.size() > 4 && raw.ends_with(".git")) raw.resize(raw.size() - 4);
  std::string slug;
  for (unsigned char c : raw) {
    char lc = static_cast<char>(std::tolower(c));
    bool keep = std::isalnum(c) || lc == '.' || lc == '_';
    if (keep) {
      slug += lc;
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  while (!slug.empty() && (slug.back() == '-' || slug.back() == '.')) slug.pop_back();
  while (!slug.empty() && (slug.front() == '-' || slug.front() == '.')) slug.erase(0, 1);
  if (slug.size() > 48) slug = slug.substr(slug.size() - 48);  // the end names the repo
  while (!slug.empty() && (slug.front() == '-' || slug.front() == '.')) slug.erase(0, 1);
  return slug.empty() ? "repo" : slug;
}

std::string sha1_hex(std::string_view data) {
  ensure_libgit2();
  git_oid oid;
  git_odb_hash(&oid, data.data(), data.size(), GIT_OBJECT_BLOB);
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, &oid);
  return hex;
}

}  // namespace

std::optional<RepoUrl> parse_repo_url(std::string_view url) {
  if (url.empty()) return std::nullopt;
  auto sep = url.find("://");
  if (sep != std::string_view::npos && sep > 0 &&
      std::all_of(url.begin(), url.begin() + sep, is_scheme_char)) {
    return parse_scheme_url(url, sep);
  }
  if (looks_scp_like(url)) {
    RepoUrl out;
    out.scheme = "ssh";
    out.scp_like = true;
    auto colon = url.find(':');
    auto hostpart = url.substr(0, colon);
    out.path = std::string(url.substr(colon + 1));
    auto at = hostpart.rfind('@');
    if (at != std::string_view::npos) {
      split_userinfo(hostpart.substr(0, at), out);
      hostpart = hostpart.substr(at + 1);
    }
    if (hostpart.empty()) return std::nullopt;
    out.host = std::string(hostpart);
    return out;
  }
  RepoUrl out;
  out.scheme = "file";
  out.path = std::string(url);
  return out;
}

std::string redact_url(std::string_view url) {
  auto parsed = parse_repo_url(url);
  if (!parsed) return "<invalid url>";
  const RepoUrl& u = *parsed;
  bool keep_user = (u.scheme == "ssh" || u.scheme == "git+ssh" || u.scheme == "ssh+git") &&
                   !u.user.empty();
  std::string path = strip_query(u.path);
  if (u.scp_like) return (keep_user ? u.user + "@" : "") + u.host + ":" + path;
  if (u.scheme == "file") {
    return url.starts_with("file://") ? "file://" + path : path;
  }
  std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  std::string out = u.scheme + "://" + (keep_user ? u.user + "@" : "") + host;
  if (u.port != 0) out += ":" + std::to_string(u.port);
  return out + path;
}

std::string mirror_dir_name(std::string_view url) {
  std::string redacted = redact_url(url);
  auto parsed = parse_repo_url(url);
  std::string slug = parsed ? slug_of(*parsed) : "repo";
  return slug + "-" + sha1_hex(redacted).substr(0, 12);
}

std::string redact_secrets(std::string text, std::span<const std::string> secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

std::string resolve_submodule_url(std::string_view parent_url, std::string_view sub_url) {
  if (!sub_url.starts_with("./") && !sub_url.starts_with("../")) return std::string(sub_url);
  std::string base(parent_url);
  while (base.ends_with('/')) base.pop_back();
  // In scp-like URLs the path starts after the first ':'; never climb past it.
  auto floor = std::string::npos;
  if (base.find("://") == std::string::npos && looks_scp_like(base)) floor = base.find(':');
  std::string_view rest = sub_url;
  while (true) {
    if (rest.starts_with("./")) {
      rest.remove_prefix(2);
    } else if (rest.starts_with("../")) {
      rest.remove_prefix(3);
      auto cut = base.find_last_of(floor == std::string::npos ? "/" : "/:");
      if (cut == std::string::npos || (floor != std::string::npos && cut < floor)) break;
      base.resize(cut);
      if (cut == floor) {
        base += ':';
        return base + std::string(rest);
      }
    } else {
      break;
    }
  }
  return base + "/" + std::string(rest);
}

bool same_server(std::string_view a, std::string_view b) {
  auto ua = parse_repo_url(a), ub = parse_repo_url(b);
  if (!ua || !ub || ua->scheme == "file" || ub->scheme == "file") return false;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  return ua->scheme == ub->scheme && lower(ua->host) == lower(ub->host) && ua->port == ub->port;
}

}  // namespace sandci::git
