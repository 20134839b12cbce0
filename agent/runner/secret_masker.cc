#include "agent/runner/secret_masker.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <deque>
#include <utility>

#include "agent/runner/command_files.h"

namespace sandci::agent {

// Aho-Corasick automaton over bytes. Sparse edges keep memory linear in the total
// pattern length (thousands of secrets times a dozen forms each); the root has a
// dense table because nearly every byte of a log line starts at the root.
class SecretMatcher {
 public:
  explicit SecretMatcher(const std::set<std::string>& patterns) {
    nodes_.emplace_back();
    for (const auto& p : patterns) insert(p);
    link();
  }

  std::string mask(std::string_view line) const {
    // Matches come out ordered by end position; merge each into the previous spans
    // when they overlap or touch, so one `***` replaces a run of secrets.
    std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end)
    int state = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      state = step(state, static_cast<unsigned char>(line[i]));
      int len = nodes_[state].out;
      if (len == 0) continue;
      std::size_t begin = i + 1 - static_cast<std::size_t>(len), end = i + 1;
      while (!spans.empty() && spans.back().second >= begin) {
        begin = std::min(begin, spans.back().first);
        spans.pop_back();
      }
      spans.emplace_back(begin, end);
    }
    if (spans.empty()) return std::string(line);
    std::string out;
    out.reserve(line.size());
    std::size_t pos = 0;
    for (auto [b, e] : spans) {
      out.append(line.substr(pos, b - pos));
      out.append("***");
      pos = e;
    }
    out.append(line.substr(pos));
    return out;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> edges;  // sorted by byte
    int fail = 0;
    int out = 0;  // length of the longest pattern ending here (0: none)
  };

  int edge(int node, unsigned char c) const {
    if (node == 0) return root_[c];
    const auto& e = nodes_[node].edges;
    auto it = std::lower_bound(e.begin(), e.end(), c,
                               [](const auto& p, unsigned char b) { return p.first < b; });
    return (it != e.end() && it->first == c) ? it->second : -1;
  }

  int step(int state, unsigned char c) const {
    for (;;) {
      int next = edge(state, c);
      if (next >= 0) return next;
      state = nodes_[state].fail;  // the root has an edge for every byte, so this ends
    }
  }

  void insert(const std::string& pattern) {
    if (pattern.empty()) return;
    int node = 0;
    for (unsigned char c : pattern) {
      auto& e = nodes_[node].edges;
      auto it = std::lower_bound(e.begin(), e.end(), c,
                                 [](const auto& p, unsigned char b) { return p.first < b; });
      if (it != e.end() && it->first == c) {
        node = it->second;
        continue;
      }
      int fresh = static_cast<int>(nodes_.size());
      e.insert(it, {c, fresh});
      nodes_.emplace_back();
      node = fresh;
    }
    nodes_[node].out = std::max<int>(nodes_[node].out, static_cast<int>(pattern.size()));
  }

  // Breadth-first failure links; `out` inherits the longest match of the failure chain
  // (any shorter match ending at the same byte lies inside the longest one).
  void link() {
    root_.fill(0);
    std::deque<int> queue;
    for (auto [c, child] : nodes_[0].edges) {
      root_[c] = child;
      nodes_[child].fail = 0;
      queue.push_back(child);
    }
    while (!queue.empty()) {
      int u = queue.front();
      queue.pop_front();
      for (auto [c, v] : nodes_[u].edges) {
        int f = nodes_[u].fail;
        nodes_[v].fail = step(f, c);
        nodes_[v].out = std::max(nodes_[v].out, nodes_[nodes_[v].fail].out);
        queue.push_back(v);
      }
    }
  }

  std::vector<Node> nodes_;
  std::array<int, 256> root_{};
};

namespace {

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  });
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// Percent-encoding of everything but RFC 3986 unreserved characters: how a password
// appears inside a URL (https://user:p%40ss@host/).
std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string url_safe(std::string s) {
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

// Base64 forms of `value` wherever it sits in a longer base64-encoded stream. When the
// value starts `shift` bytes before a 3-byte group boundary, the encoding of
// value[shift..] is fixed up to its last complete group, plus the leading characters of
// the partial group that depend only on its bytes; characters before and after mix
// with the surrounding data and cannot be known.
void add_base64_forms(std::string_view value, std::vector<std::string>& out) {
  auto add = [&out](std::string form) {
    if (form.size() < SecretMasker::kMinDerivedLength) return;
    out.push_back(url_safe(form));
    out.push_back(std::move(form));
  };
  add(base64_encode(value));  // the value encoded alone, with padding
  for (std::size_t shift = 0; shift < 3 && shift < value.size(); ++shift) {
    std::string_view rest = value.substr(shift);
    std::size_t whole = rest.size() / 3 * 3, partial = rest.size() - whole;
    std::string form = base64_encode(rest.substr(0, whole));
    form += base64_encode(rest.substr(whole)).substr(0, partial);  // 1 byte -> 1 char, 2 -> 2
    add(std::move(form));
  }
}

void add_single_value_forms(std::string_view value, std::vector<std::string>& out) {
  out.emplace_back(value);
  if (value.size() < SecretMasker::kMinSecretLengthForVariants) return;
  if (auto j = json_escape(value); j != value) out.push_back(std::move(j));
  if (auto u = url_encode(value); u != value) {
    out.push_back(u);
    // Lower-case hex digits are as valid and some encoders emit them.
    for (std::size_t i = 0; i + 2 < u.size(); ++i) {
      if (u[i] == '%') {
        u[i + 1] = static_cast<char>(std::tolower(static_cast<unsigned char>(u[i + 1])));
        u[i + 2] = static_cast<char>(std::tolower(static_cast<unsigned char>(u[i + 2])));
      }
    }
    out.push_back(std::move(u));
  }
  add_base64_forms(value, out);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<std::string> secret_variants(std::string_view secret) {
  std::vector<std::string> out;
  if (is_blank(secret)) return out;
  add_single_value_forms(secret, out);
  if (secret.size() >= SecretMasker::kMinSecretLengthForVariants &&
      secret.find('\n') != std::string_view::npos) {
    // Logs are split into lines, so each line of a multi-line secret (a PEM key) must
    // be masked on its own.
    std::size_t start = 0;
    while (start <= secret.size()) {
      std::size_t nl = secret.find('\n', start);
      std::string_view line = secret.substr(start, nl == std::string_view::npos ? nl : nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!is_blank(line) && line.size() >= SecretMasker::kMinSecretLengthForVariants)
        add_single_value_forms(line, out);
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

bool valid_secret_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string_view trim_blanks(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string shown_name(std::string_view name) {
  std::string out(name.substr(0, 64));
  std::replace_if(
      out.begin(), out.end(), [](unsigned char c) { return c < 0x20; }, '?');
  return out;
}

std::expected<std::string, std::string> unquote_value(std::string_view v) {
  v = trim_blanks(v);
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'')
    return std::string(v.substr(1, v.size() - 2));
  if (v.empty() || v.front() != '"') return std::string(v);
  if (v.size() < 2 || v.back() != '"')
    return std::unexpected(std::string("unterminated double quote"));
  std::string out;
  for (std::size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] != '\\' || i + 2 >= v.size()) {
      out += v[i];
      continue;
    }
    char e = v[++i];
    out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
  }
  return out;
}

}  // namespace

std::expected<std::pair<std::string, std::string>, std::string> parse_secret_assignment(
    std::string_view arg) {
  std::size_t eq = arg.find('=');
  if (eq == std::string_view::npos) {
    // Not quoted: without '=' the argument may be the secret itself.
    return std::unexpected(std::string("expected NAME=VALUE for a secret (no '=' found)"));
  }
  std::string_view name = arg.substr(0, eq);
  if (!valid_secret_name(name)) {
    return std::unexpected("invalid secret name '" + shown_name(name) +
                           "' (letters, digits and _, not starting with a digit)");
  }
  return std::pair{std::string(name), std::string(arg.substr(eq + 1))};
}

std::expected<NameValueList, FileCommandError> parse_secrets_file(std::string_view content) {
  NameValueList out;
  const std::vector<std::string_view> lines = split_lines(content);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    int line_no = static_cast<int>(i + 1);
    std::string_view line = trim_blanks(lines[i]);
    if (line.empty() || line.starts_with('#')) continue;
    if (line.starts_with("export ")) line = trim_blanks(line.substr(7));
    std::size_t eq = line.find('='), heredoc = line.find("<<");
    if (eq != std::string_view::npos && (heredoc == std::string_view::npos || eq < heredoc)) {
      std::string_view name = trim_blanks(line.substr(0, eq));
      if (!valid_secret_name(name)) {
        return std::unexpected(
            FileCommandError{line_no, "invalid secret name '" + shown_name(name) + "'"});
      }
      auto value = unquote_value(line.substr(eq + 1));
      if (!value) return std::unexpected(FileCommandError{line_no, value.error()});
      out.emplace_back(std::string(name), std::move(*value));
      continue;
    }
    if (heredoc == std::string_view::npos) {
      return std::unexpected(FileCommandError{line_no, "expected NAME=VALUE or NAME<<DELIMITER"});
    }
    std::string_view name = trim_blanks(line.substr(0, heredoc));
    std::string_view delimiter = trim_blanks(line.substr(heredoc + 2));
    if (!valid_secret_name(name)) {
      return std::unexpected(
          FileCommandError{line_no, "invalid secret name '" + shown_name(name) + "'"});
    }
    if (delimiter.empty()) {
      return std::unexpected(
          FileCommandError{line_no, "heredoc for '" + std::string(name) + "' has no delimiter"});
    }
    auto body = collect_heredoc(lines, i, delimiter);
    if (!body) {
      return std::unexpected(
          FileCommandError{line_no, "heredoc for '" + std::string(name) + "' is never closed"});
    }
    out.emplace_back(std::string(name), std::move(body->value));
    i = body->end;
  }
  return out;
}

SecretMasker::SecretMasker() = default;
SecretMasker::~SecretMasker() = default;

void SecretMasker::add(std::string_view secret) {
  auto forms = secret_variants(secret);
  if (forms.empty()) return;
  std::lock_guard lock(mutex_);
  std::size_t before = patterns_.size();
  for (auto& f : forms) patterns_.insert(std::move(f));
  if (patterns_.size() != before) matcher_.reset();  // rebuilt lazily: adds come in bursts
}

std::shared_ptr<const SecretMatcher> SecretMasker::matcher() const {
  std::lock_guard lock(mutex_);
  if (!matcher_) matcher_ = std::make_shared<const SecretMatcher>(patterns_);
  return matcher_;
}

std::string SecretMasker::mask(std::string_view line) const { return matcher()->mask(line); }

bool SecretMasker::consume_add_mask(std::string_view line) {
  auto cmd = parse_workflow_command(line);
  if (!cmd || cmd->kind != WorkflowCommandKind::kAddMask) return false;
  add(cmd->value);
  return true;
}

std::size_t SecretMasker::pattern_count() const {
  std::lock_guard lock(mutex_);
  return patterns_.size();
}

}  // namespace sandci::agent
