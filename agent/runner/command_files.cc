#include "agent/runner/command_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "agent/runner/secret_masker.h"

namespace sandci::agent {

std::vector<std::string_view> split_lines(std::string_view content) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < content.size()) {
    std::size_t nl = content.find('\n', start);
    std::size_t end = nl == std::string_view::npos ? content.size() : nl;
    std::string_view line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::optional<Heredoc> collect_heredoc(const std::vector<std::string_view>& lines, std::size_t start,
                                       std::string_view delimiter) {
  Heredoc heredoc;
  std::size_t j = start + 1;
  for (; j < lines.size() && lines[j] != delimiter; ++j) {
    if (j > start + 1) heredoc.value += '\n';
    heredoc.value += lines[j];
  }
  if (j == lines.size()) return std::nullopt;
  heredoc.end = j;
  return heredoc;
}

namespace {


bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c, NameValueFile kind) {
  return is_name_start(c) || (c >= '0' && c <= '9') || (kind == NameValueFile::kOutput && c == '-');
}

std::optional<std::string> check_name(std::string_view name, NameValueFile kind) {
  if (name.empty()) return "empty name";
  bool ok = is_name_start(name[0]) &&
            std::all_of(name.begin(), name.end(), [kind](char c) { return is_name_char(c, kind); });
  if (ok) return std::nullopt;
  std::string shown(name.substr(0, 64));
  std::replace_if(
      shown.begin(), shown.end(), [](unsigned char c) { return c < 0x20; }, '?');
  return std::string("invalid ") + (kind == NameValueFile::kEnv ? "variable" : "output") +
         " name '" + shown + "' (" +
         (kind == NameValueFile::kEnv ? "letters, digits and _" : "letters, digits, _ and -") +
         ", not starting with a digit)";
}

std::string unescape(std::string_view s, bool property) {
  struct Escape {
    std::string_view code;
    char c;
  };
  static constexpr std::array<Escape, 5> kEscapes{
      {{"%25", '%'}, {"%0D", '\r'}, {"%0A", '\n'}, {"%3A", ':'}, {"%2C", ','}}};
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    bool done = false;
    if (s[i] == '%') {
      for (std::size_t e = 0; e < (property ? 5u : 3u); ++e) {
        const auto& esc = kEscapes[e];
        if (s.size() - i >= 3 && (s.substr(i, 3) == esc.code ||
                                  // the runner accepts lower-case hex digits too
                                  (s[i + 1] == esc.code[1] &&
                                   std::tolower(static_cast<unsigned char>(s[i + 2])) ==
                                       std::tolower(static_cast<unsigned char>(esc.code[2]))))) {
          out += esc.c;
          i += 3;
          done = true;
          break;
        }
      }
    }
    if (!done) out += s[i++];
  }
  return out;
}

struct CommandName {
  std::string_view name;
  WorkflowCommandKind kind;
};
constexpr std::array<CommandName, 12> kCommands{{
    {"add-mask", WorkflowCommandKind::kAddMask},
    {"set-output", WorkflowCommandKind::kSetOutput},
    {"save-state", WorkflowCommandKind::kSaveState},
    {"group", WorkflowCommandKind::kGroup},
    {"endgroup", WorkflowCommandKind::kEndGroup},
    {"error", WorkflowCommandKind::kError},
    {"warning", WorkflowCommandKind::kWarning},
    {"notice", WorkflowCommandKind::kNotice},
    {"debug", WorkflowCommandKind::kDebug},
    {"stop-commands", WorkflowCommandKind::kStopCommands},
    {"set-env", WorkflowCommandKind::kDisabled},
    {"add-path", WorkflowCommandKind::kDisabled},
}};

// Splits `::name props::data` (after trimming) into its parts without judging the name.
struct RawCommand {
  std::string_view name, props, data;
};
std::optional<RawCommand> split_command(std::string_view line) {
  std::size_t first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::nullopt;
  line.remove_prefix(first);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.starts_with("::")) return std::nullopt;
  std::size_t end = line.find("::", 2);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view info = line.substr(2, end - 2);
  RawCommand raw;
  std::size_t space = info.find(' ');
  raw.name = info.substr(0, space);
  if (space != std::string_view::npos) raw.props = info.substr(space + 1);
  raw.data = line.substr(end + 2);
  return raw;
}

}  // namespace

std::string FileCommandError::to_string() const {
  return line > 0 ? "line " + std::to_string(line) + ": " + message : message;
}

std::expected<NameValueList, FileCommandError> parse_name_value_file(std::string_view content,
                                                                     NameValueFile kind) {
  NameValueList out;
  auto lines = split_lines(content);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    int line_no = static_cast<int>(i + 1);
    if (line.empty()) continue;
    std::size_t eq = line.find('='), heredoc = line.find("<<");
    if (eq != std::string_view::npos && (heredoc == std::string_view::npos || eq < heredoc)) {
      std::string_view name = line.substr(0, eq);
      if (auto bad = check_name(name, kind))
        return std::unexpected(FileCommandError{line_no, *bad});
      out.emplace_back(std::string(name), std::string(line.substr(eq + 1)));
      continue;
    }
    if (heredoc == std::string_view::npos) {
      return std::unexpected(FileCommandError{
          line_no, "expected 'name=value' or 'name<<DELIMITER', got a line with neither"});
    }
    std::string_view name = line.substr(0, heredoc), delimiter = line.substr(heredoc + 2);
    if (auto bad = check_name(name, kind)) return std::unexpected(FileCommandError{line_no, *bad});
    if (delimiter.empty()) {
      return std::unexpected(
          FileCommandError{line_no, "heredoc for '" + std::string(name) + "' has no delimiter"});
    }
    auto body = collect_heredoc(lines, i, delimiter);
    if (!body) {
      return std::unexpected(FileCommandError{
          line_no, "heredoc for '" + std::string(name) + "' is never closed (delimiter '" +
                       std::string(delimiter.substr(0, 64)) + "' not found)"});
    }
    out.emplace_back(std::string(name), std::move(body->value));
    i = body->end;
  }
  return out;
}

std::expected<std::vector<std::string>, FileCommandError> parse_path_file(
    std::string_view content) {
  std::vector<std::string> out;
  auto lines = split_lines(content);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    if (line.find(':') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
      return std::unexpected(FileCommandError{static_cast<int>(i + 1),
                                              "a PATH entry cannot contain ':' or a NUL byte"});
    }
    out.emplace_back(line);
  }
  return out;
}

StepSummary parse_step_summary(std::string_view content, std::size_t max_bytes) {
  if (content.size() <= max_bytes) return {std::string(content), false};
  std::string_view kept = content.substr(0, max_bytes);
  if (std::size_t nl = kept.rfind('\n'); nl != std::string_view::npos) {
    kept = kept.substr(0, nl + 1);
  } else {
    // One huge line: cut before a UTF-8 continuation byte would split a character.
    std::size_t n = kept.size();
    while (n > 0 && (static_cast<unsigned char>(content[n]) & 0xC0) == 0x80) --n;
    kept = kept.substr(0, n);
  }
  return {std::string(kept), true};
}

std::expected<std::string, std::string> read_command_file(const std::filesystem::path& path,
                                                          std::size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    if (errno == ELOOP) return std::unexpected(path.string() + ": is a symbolic link; refused");
    return std::unexpected(path.string() + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected(path.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return std::unexpected(path.string() + ": not a regular file");
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return std::unexpected(path.string() + ": " + std::to_string(st.st_size) +
                           " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(path.string() + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // The file may grow after fstat (a background process still writing to it).
    if (out.size() > max_bytes) {
      return std::unexpected(path.string() + ": more than the limit of " +
                             std::to_string(max_bytes) + " bytes");
    }
  }
  return out;
}

std::optional<std::string> WorkflowCommand::property(std::string_view key) const {
  for (const auto& [k, v] : properties)
    if (k == key) return v;
  return std::nullopt;
}

std::string unescape_command_data(std::string_view s) { return unescape(s, false); }
std::string unescape_command_property(std::string_view s) { return unescape(s, true); }

std::optional<WorkflowCommand> parse_workflow_command(std::string_view line) {
  auto raw = split_command(line);
  if (!raw) return std::nullopt;
  auto known = std::find_if(kCommands.begin(), kCommands.end(),
                            [&](const CommandName& c) { return c.name == raw->name; });
  if (known == kCommands.end()) return std::nullopt;
  WorkflowCommand cmd{known->kind, {}, unescape_command_data(raw->data)};
  if (cmd.kind == WorkflowCommandKind::kDisabled) {
    cmd.value = "the '" + std::string(raw->name) +
                "' command is disabled (as on GitHub); write to $GITHUB_ENV or $GITHUB_PATH";
    return cmd;
  }
  // Properties: comma-separated key=value pairs; pairs with an empty side are dropped,
  // as the runner does.
  std::string_view props = raw->props;
  while (!props.empty()) {
    std::size_t comma = props.find(',');
    std::string_view pair = props.substr(0, comma);
    std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && eq > 0 && eq + 1 < pair.size()) {
      cmd.properties.emplace_back(std::string(pair.substr(0, eq)),
                                  unescape_command_property(pair.substr(eq + 1)));
    }
    if (comma == std::string_view::npos) break;
    props.remove_prefix(comma + 1);
  }
  return cmd;
}

OutputLine OutputLineParser::classify(std::string_view line) {
  if (!stop_token_.empty()) {
    // While stopped, only `::TOKEN::` means anything.
    auto raw = split_command(line);
    if (raw && raw->name == stop_token_ && raw->props.empty()) {
      stop_token_.clear();
      return {OutputLine::Kind::kCommand,
              WorkflowCommand{WorkflowCommandKind::kResumeCommands, {}, std::string(raw->name)},
              {}};
    }
    return {};
  }
  auto cmd = parse_workflow_command(line);
  if (!cmd) return {};
  if (cmd->kind == WorkflowCommandKind::kStopCommands) {
    const std::string& token = cmd->value;
    // A token that is empty or a command's own name would let any later line resume
    // command processing; the runner refuses such tokens too.
    bool is_command_name = std::any_of(kCommands.begin(), kCommands.end(),
                                       [&](const CommandName& c) { return c.name == token; });
    if (token.empty() || is_command_name || token.find("::") != std::string::npos) {
      return {OutputLine::Kind::kInvalidCommand, std::nullopt,
              "invalid ::stop-commands:: token (empty, a command name, or holding '::')"};
    }
    stop_token_ = token;
  }
  return {OutputLine::Kind::kCommand, std::move(cmd), {}};
}

namespace {

int to_int(const std::optional<std::string>& s) {
  if (!s) return 0;
  int v = 0;
  for (char c : *s) {
    if (c < '0' || c > '9' || v > 100'000'000) return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string_view level_word(WorkflowCommandKind level) {
  switch (level) {
    case WorkflowCommandKind::kWarning:
      return "Warning";
    case WorkflowCommandKind::kNotice:
      return "Notice";
    default:
      return "Error";
  }
}

}  // namespace

std::string Annotation::to_string() const {
  std::string out = std::string(level_word(level)) + ": ";
  if (!file.empty()) {
    out += file;
    if (line > 0) out += ":" + std::to_string(line);
    if (line > 0 && column > 0) out += ":" + std::to_string(column);
    out += ": ";
  }
  if (!title.empty()) out += title + ": ";
  return out + message;
}

std::vector<std::string> StepOutputProcessor::shown(std::string_view text) const {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    std::string_view piece = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
    lines.push_back(masker_.mask(piece));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::vector<std::string> StepOutputProcessor::annotate(WorkflowCommandKind level,
                                                       const WorkflowCommand* cmd,
                                                       std::string_view message) {
  Annotation a;
  a.level = level;
  a.message = masker_.mask(message);
  if (cmd) {
    a.title = masker_.mask(cmd->property("title").value_or(""));
    a.file = masker_.mask(cmd->property("file").value_or(""));
    a.line = to_int(cmd->property("line"));
    a.end_line = to_int(cmd->property("endLine"));
    a.column = to_int(cmd->property("col"));
    a.end_column = to_int(cmd->property("endColumn"));
  }
  annotations_.push_back(a);
  return shown(a.to_string());
}

std::vector<std::string> StepOutputProcessor::process(std::string_view raw_line) {
  OutputLine line = parser_.classify(raw_line);
  if (line.kind == OutputLine::Kind::kText) return shown(raw_line);
  if (line.kind == OutputLine::Kind::kInvalidCommand) {
    return annotate(WorkflowCommandKind::kError, nullptr, line.error);
  }
  const WorkflowCommand& cmd = *line.command;
  switch (cmd.kind) {
    case WorkflowCommandKind::kAddMask:
      if (cmd.value.find_first_not_of(" \t\r\n") == std::string::npos) {
        return annotate(WorkflowCommandKind::kWarning, nullptr,
                        "::add-mask:: with an empty value; nothing to mask");
      }
      masker_.add(cmd.value);
      return {};
    case WorkflowCommandKind::kSetOutput: {
      std::vector<std::string> out;
      if (!warned_set_output_) {
        warned_set_output_ = true;
        out = annotate(WorkflowCommandKind::kWarning, nullptr,
                       "the set-output command is deprecated; write to $GITHUB_OUTPUT instead");
      }
      auto name = cmd.property("name");
      if (!name) {
        auto more = annotate(WorkflowCommandKind::kError, nullptr, "::set-output:: without name=");
        out.insert(out.end(), more.begin(), more.end());
      } else {
        outputs_.emplace_back(*name, cmd.value);
      }
      return out;
    }
    case WorkflowCommandKind::kSaveState: {
      std::vector<std::string> out;
      if (!warned_save_state_) {
        warned_save_state_ = true;
        out = annotate(WorkflowCommandKind::kWarning, nullptr,
                       "the save-state command is deprecated; write to $GITHUB_STATE instead");
      }
      auto name = cmd.property("name");
      if (!name) {
        auto more = annotate(WorkflowCommandKind::kError, nullptr, "::save-state:: without name=");
        out.insert(out.end(), more.begin(), more.end());
      } else {
        state_.emplace_back(*name, cmd.value);
      }
      return out;
    }
    case WorkflowCommandKind::kGroup:
      return shown("> " + cmd.value);
    case WorkflowCommandKind::kEndGroup:
      return {};
    case WorkflowCommandKind::kError:
    case WorkflowCommandKind::kWarning:
    case WorkflowCommandKind::kNotice:
      return annotate(cmd.kind, &cmd, cmd.value);
    case WorkflowCommandKind::kDebug:
      if (!show_debug_) return {};
      return shown("Debug: " + cmd.value);
    case WorkflowCommandKind::kStopCommands:
    case WorkflowCommandKind::kResumeCommands:
      return {};
    case WorkflowCommandKind::kDisabled:
      return annotate(WorkflowCommandKind::kError, nullptr, cmd.value);
  }
  return shown(raw_line);
}

}  // namespace sandci::agent
