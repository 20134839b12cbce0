#pragma once
// How a step talks back to the runner, as in GitHub Actions:
//  - file commands: the files named by $GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH and
//    $GITHUB_STEP_SUMMARY, read by the runner after the step ends;
//  - workflow commands: `::name key=value,...::data` lines in the step's output.
// Both come from the step (untrusted): every parser returns errors as values.
#include <cstddef>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandci::agent {

class SecretMasker;

// ---- File commands -------------------------------------------------------------------

struct FileCommandError {
  int line = 0;  // 1-based line of the file where the problem is; 0: the whole file
  std::string message;
  // "line 3: message" (or just the message when line is 0).
  std::string to_string() const;
};

using NameValueList = std::vector<std::pair<std::string, std::string>>;

enum class NameValueFile {
  kOutput,  // $GITHUB_OUTPUT: names [A-Za-z_][A-Za-z0-9_-]*
  kEnv,     // $GITHUB_ENV: names [A-Za-z_][A-Za-z0-9_]* (usable by every shell)
};

// Splits into lines on '\n', dropping one trailing '\r' per line. A final empty piece
// after the last '\n' is not a line.
std::vector<std::string_view> split_lines(std::string_view content);

// The value of a `NAME<<DELIMITER` heredoc whose opening line is lines[start]: the
// lines up to the delimiter line, joined by '\n', and the delimiter line's index.
// Nothing when the delimiter never comes.
struct Heredoc {
  std::string value;
  std::size_t end = 0;
};
std::optional<Heredoc> collect_heredoc(const std::vector<std::string_view>& lines, std::size_t start,
                                       std::string_view delimiter);

// Parses `name=value` lines and `name<<DELIMITER` ... `DELIMITER` heredocs (the value is
// the lines in between joined by '\n'). Empty lines between entries are ignored; CRLF
// line ends are accepted. Entries are returned in file order (a later one for the same
// name wins when applied). Errors: bad name, a line that is neither form, a heredoc
// without a delimiter, or one whose delimiter never comes (with the heredoc's line).
std::expected<NameValueList, FileCommandError> parse_name_value_file(std::string_view content,
                                                                     NameValueFile kind);

// Parses $GITHUB_PATH: one directory per non-empty line, in file order (the runner
// prepends them to PATH so that the last line comes first). A line holding ':' or a
// NUL byte is refused: it cannot be a single PATH entry.
std::expected<std::vector<std::string>, FileCommandError> parse_path_file(std::string_view content);

// $GITHUB_STEP_SUMMARY: markdown kept as written, cut at `max_bytes` (GitHub's limit is
// 1 MiB per step) on a line boundary when possible, never inside a UTF-8 sequence.
struct StepSummary {
  std::string markdown;
  bool truncated = false;
};
inline constexpr std::size_t kMaxStepSummaryBytes = 1024 * 1024;
StepSummary parse_step_summary(std::string_view content,
                               std::size_t max_bytes = kMaxStepSummaryBytes);

// Reads a command file written by a step, refusing one larger than `max_bytes` (a step
// must not make the runner load gigabytes) or one that is not a regular file (a symlink
// planted by the step is not followed). A missing file reads as empty: the step wrote
// nothing.
std::expected<std::string, std::string> read_command_file(const std::filesystem::path& path,
                                                          std::size_t max_bytes);

// ---- Workflow commands on stdout -----------------------------------------------------

enum class WorkflowCommandKind {
  kAddMask,         // ::add-mask::VALUE
  kSetOutput,       // ::set-output name=x::value (deprecated, still accepted)
  kSaveState,       // ::save-state name=x::value (deprecated, still accepted; actions' pre/post)
  kGroup,           // ::group::title
  kEndGroup,        // ::endgroup::
  kError,           // ::error file=..,line=..,col=..,endLine=..,endColumn=..,title=..::msg
  kWarning,         // ::warning ...::msg
  kNotice,          // ::notice ...::msg
  kDebug,           // ::debug::msg
  kStopCommands,    // ::stop-commands::TOKEN
  kResumeCommands,  // ::TOKEN:: after stop-commands (only from OutputLineParser)
  kDisabled,        // ::set-env / ::add-path: refused by GitHub for security; value = why
};

struct WorkflowCommand {
  WorkflowCommandKind kind;
  NameValueList properties;  // unescaped, in line order
  std::string value;         // the data after the second `::`, unescaped

  // The value of property `key`, if given.
  std::optional<std::string> property(std::string_view key) const;
};

// Parses one output line as a workflow command (leading whitespace and a trailing '\r'
// are ignored, as the runner does). Returns nothing for an ordinary line, including
// `::unknown-command::` lines, which are shown as written.
std::optional<WorkflowCommand> parse_workflow_command(std::string_view line);

// Undoes the runner's escaping: data %25 %0D %0A; properties also %3A %2C.
std::string unescape_command_data(std::string_view s);
std::string unescape_command_property(std::string_view s);

// What one line of a step's output is, with the ::stop-commands:: state carried from
// line to line (one parser per step).
struct OutputLine {
  enum class Kind { kText, kCommand, kInvalidCommand };
  Kind kind = Kind::kText;
  std::optional<WorkflowCommand> command;  // set for kCommand
  std::string error;                       // set for kInvalidCommand
};

class OutputLineParser {
 public:
  OutputLine classify(std::string_view line);
  bool commands_stopped() const { return !stop_token_.empty(); }

 private:
  std::string stop_token_;  // non-empty while commands are stopped
};

// ---- Applying workflow commands to a step's output -----------------------------------

// An ::error / ::warning / ::notice annotation (or one the runner raises itself).
struct Annotation {
  WorkflowCommandKind level = WorkflowCommandKind::kError;  // kError, kWarning or kNotice
  std::string message;
  std::string title;
  std::string file;
  int line = 0, end_line = 0, column = 0, end_column = 0;  // 0: not given

  // "Error: src/a.c:12:5: title: message" (missing parts left out).
  std::string to_string() const;
};

// Turns one step's raw output lines into the lines shown, applying the workflow commands
// on the way: ::add-mask:: adds to the masker before anything is shown, ::set-output::
// records an output, ::error:: & co. become annotations, ::debug:: is shown only in
// debug mode, ::stop-commands:: suspends all this. Every shown line and annotation is
// masked. One processor per step; not thread-safe (a step's output is one stream).
class StepOutputProcessor {
 public:
  explicit StepOutputProcessor(SecretMasker& masker, bool show_debug = false)
      : masker_(masker), show_debug_(show_debug) {}

  // The lines to show for `raw_line` (none for a command that shows nothing; several
  // for an annotation whose message holds newlines).
  std::vector<std::string> process(std::string_view raw_line);

  // ::set-output:: values in order (values as written: masking is for display; the glue
  // decides what a job output containing a secret becomes).
  const NameValueList& outputs() const { return outputs_; }
  // ::save-state:: values in order: an action's STATE_<name> for its later stages.
  const NameValueList& state() const { return state_; }
  const std::vector<Annotation>& annotations() const { return annotations_; }

 private:
  std::vector<std::string> annotate(WorkflowCommandKind level, const WorkflowCommand* cmd,
                                    std::string_view message);
  std::vector<std::string> shown(std::string_view text) const;

  SecretMasker& masker_;
  bool show_debug_;
  OutputLineParser parser_;
  NameValueList outputs_;
  NameValueList state_;
  std::vector<Annotation> annotations_;
  bool warned_set_output_ = false;
  bool warned_save_state_ = false;
};

}  // namespace sandci::agent
