#include "agent/runner/command_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/runner/secret_masker.h"
#include "support/temp_dir.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;

NameValueList parse_ok(std::string_view content, NameValueFile kind = NameValueFile::kOutput) {
  auto r = parse_name_value_file(content, kind);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return r.value_or(NameValueList{});
}

std::string parse_error(std::string_view content, NameValueFile kind = NameValueFile::kOutput) {
  auto r = parse_name_value_file(content, kind);
  EXPECT_FALSE(r.has_value());
  return r ? std::string() : r.error().to_string();
}

TEST(NameValueFile, ParsesSimpleLines) {
  EXPECT_EQ(parse_ok("version=1.2.3\nempty=\nurl=http://x/?a=b\n"),
            (NameValueList{{"version", "1.2.3"}, {"empty", ""}, {"url", "http://x/?a=b"}}));
}

TEST(NameValueFile, ParsesHeredocs) {
  EXPECT_EQ(parse_ok("notes<<EOF\nline one\n\nline=three<<x\nEOF\nafter=1\n"),
            (NameValueList{{"notes", "line one\n\nline=three<<x"}, {"after", "1"}}));
  EXPECT_EQ(parse_ok("e<<END\nEND\n"), (NameValueList{{"e", ""}}));
}

TEST(NameValueFile, EqualsBeforeHeredocMarkerIsASimpleLine) {
  EXPECT_EQ(parse_ok("a=b<<c\n"), (NameValueList{{"a", "b<<c"}}));
}

TEST(NameValueFile, AcceptsCrlfAndBlankLinesAndNoFinalNewline) {
  EXPECT_EQ(parse_ok("\r\na=1\r\n\r\nb<<X\r\nv\r\nX\r\nc=3"),
            (NameValueList{{"a", "1"}, {"b", "v"}, {"c", "3"}}));
  EXPECT_TRUE(parse_ok("").empty());
}

TEST(NameValueFile, KeepsRepeatedNamesInOrder) {
  EXPECT_EQ(parse_ok("a=1\na=2\n"), (NameValueList{{"a", "1"}, {"a", "2"}}));
}

TEST(NameValueFile, ReportsUnterminatedHeredocWithItsLine) {
  EXPECT_EQ(parse_error("a=1\nbody<<EOF\nsome\ntext\n"),
            "line 2: heredoc for 'body' is never closed (delimiter 'EOF' not found)");
  // A delimiter with trailing text is not the delimiter.
  EXPECT_EQ(parse_error("b<<EOF\nEOF \n"),
            "line 1: heredoc for 'b' is never closed (delimiter 'EOF' not found)");
}

TEST(NameValueFile, ReportsHeredocWithoutDelimiter) {
  EXPECT_EQ(parse_error("x=1\n\nname<<\nv\n"), "line 3: heredoc for 'name' has no delimiter");
}

TEST(NameValueFile, ReportsLineWithNeitherForm) {
  EXPECT_EQ(parse_error("ok=1\njust some text\n"),
            "line 2: expected 'name=value' or 'name<<DELIMITER', got a line with neither");
}

TEST(NameValueFile, ReportsBadNames) {
  EXPECT_EQ(parse_error("=value\n"), "line 1: empty name");
  EXPECT_EQ(parse_error("a=1\nmy var=1\n"),
            "line 2: invalid output name 'my var' (letters, digits, _ and -, not starting with "
            "a digit)");
  EXPECT_EQ(parse_error("9lives=1\n"),
            "line 1: invalid output name '9lives' (letters, digits, _ and -, not starting with a "
            "digit)");
  EXPECT_EQ(parse_error("<<EOF\nEOF\n"), "line 1: empty name");
}

TEST(NameValueFile, EnvNamesRefuseDashesThatOutputsAllow) {
  EXPECT_EQ(parse_ok("build-id=7\n", NameValueFile::kOutput), (NameValueList{{"build-id", "7"}}));
  EXPECT_EQ(parse_error("build-id=7\n", NameValueFile::kEnv),
            "line 1: invalid variable name 'build-id' (letters, digits and _, not starting with "
            "a digit)");
  EXPECT_EQ(parse_ok("CC=gcc\n_X1=y\n", NameValueFile::kEnv),
            (NameValueList{{"CC", "gcc"}, {"_X1", "y"}}));
}

TEST(PathFile, ParsesOneDirectoryPerLine) {
  auto r = parse_path_file("/opt/tool/bin\n\n/home/u/.local/bin\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (std::vector<std::string>{"/opt/tool/bin", "/home/u/.local/bin"}));
}

TEST(PathFile, RefusesEntriesThatAreNotOneDirectory) {
  auto r = parse_path_file("/ok\n/a:/b\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().to_string(), "line 2: a PATH entry cannot contain ':' or a NUL byte");
  EXPECT_FALSE(parse_path_file(std::string_view("/x\0y", 4)).has_value());
}

TEST(StepSummary, KeepsMarkdownAsWritten) {
  std::string md = "# Results\n\n| a | b |\n|---|---|\n| 1 | 2 |\n<b>x</b>\n";
  auto s = parse_step_summary(md);
  EXPECT_EQ(s.markdown, md);
  EXPECT_FALSE(s.truncated);
}

TEST(StepSummary, CutsOnALineBoundary) {
  auto s = parse_step_summary("line1\nline2\nline3\n", 14);
  EXPECT_EQ(s.markdown, "line1\nline2\n");
  EXPECT_TRUE(s.truncated);
}

TEST(StepSummary, NeverSplitsAUtf8Character) {
  // "é" is two bytes (C3 A9); a cap of 4 falls inside the second one.
  auto s = parse_step_summary("abc\xc3\xa9xyz", 4);
  EXPECT_EQ(s.markdown, "abc");
  EXPECT_TRUE(s.truncated);
}

TEST(ReadCommandFile, ReadsAFileAndTreatsMissingAsEmpty) {
  TempDir dir{"sandci-cmdfile-"};
  std::ofstream(dir.path() / "out") << "a=1\n";
  EXPECT_EQ(read_command_file(dir.path() / "out", 100).value_or("?"), "a=1\n");
  EXPECT_EQ(read_command_file(dir.path() / "missing", 100).value_or("?"), "");
}

TEST(ReadCommandFile, RefusesOversizedFilesSymlinksAndDirectories) {
  TempDir dir{"sandci-cmdfile-"};
  std::ofstream(dir.path() / "big") << std::string(101, 'x');
  auto big = read_command_file(dir.path() / "big", 100);
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().find("more than the limit of 100"), std::string::npos) << big.error();

  fs::create_symlink("/etc/passwd", dir.path() / "link");
  auto link = read_command_file(dir.path() / "link", 1 << 20);
  ASSERT_FALSE(link.has_value());
  EXPECT_NE(link.error().find("symbolic link"), std::string::npos) << link.error();

  fs::create_directory(dir.path() / "d");
  EXPECT_FALSE(read_command_file(dir.path() / "d", 100).has_value());
}

TEST(WorkflowCommand, ParsesEachKnownCommand) {
  auto mask = parse_workflow_command("::add-mask::abc%25def");
  ASSERT_TRUE(mask);
  EXPECT_EQ(mask->kind, WorkflowCommandKind::kAddMask);
  EXPECT_EQ(mask->value, "abc%def");

  auto out = parse_workflow_command("::set-output name=result::a:b,c");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->kind, WorkflowCommandKind::kSetOutput);
  EXPECT_EQ(out->property("name"), "result");
  EXPECT_EQ(out->value, "a:b,c");

  auto group = parse_workflow_command("::group::Compile (-O2)");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->kind, WorkflowCommandKind::kGroup);
  EXPECT_EQ(group->value, "Compile (-O2)");
  EXPECT_EQ(parse_workflow_command("::endgroup::")->kind, WorkflowCommandKind::kEndGroup);
  EXPECT_EQ(parse_workflow_command("::debug::x=1")->kind, WorkflowCommandKind::kDebug);
  EXPECT_EQ(parse_workflow_command("::notice::fyi")->kind, WorkflowCommandKind::kNotice);
  EXPECT_EQ(parse_workflow_command("::warning::careful")->value, "careful");
}

TEST(WorkflowCommand, ParsesAnnotationProperties) {
  auto e = parse_workflow_command(
      "::error file=src/a%2Cb.c,line=12,col=5,endLine=13,title=Build%3A failed::bad%0Athing");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, WorkflowCommandKind::kError);
  EXPECT_EQ(e->property("file"), "src/a,b.c");
  EXPECT_EQ(e->property("line"), "12");
  EXPECT_EQ(e->property("col"), "5");
  EXPECT_EQ(e->property("endLine"), "13");
  EXPECT_EQ(e->property("title"), "Build: failed");
  EXPECT_EQ(e->property("endColumn"), std::nullopt);
  EXPECT_EQ(e->value, "bad\nthing");
}

TEST(WorkflowCommand, DataKeepsPropertyEscapes) {
  // %3A and %2C are property escapes only; in data they stay as written.
  EXPECT_EQ(parse_workflow_command("::debug::a%3Ab%2Cc%0d")->value, "a%3Ab%2Cc\r");
}

TEST(WorkflowCommand, DropsPropertiesWithAnEmptySide) {
  auto w = parse_workflow_command("::warning file=,=x,line=3::m");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->properties, (NameValueList{{"line", "3"}}));
}

TEST(WorkflowCommand, OrdinaryLinesAreNotCommands) {
  EXPECT_FALSE(parse_workflow_command("hello"));
  EXPECT_FALSE(parse_workflow_command("echo ::error::x"));
  EXPECT_FALSE(parse_workflow_command("::error no closing"));
  EXPECT_FALSE(parse_workflow_command("::unknown-thing::x"));
  EXPECT_FALSE(parse_workflow_command("::"));
  EXPECT_FALSE(parse_workflow_command(""));
  EXPECT_TRUE(parse_workflow_command("\t  ::error::indented\r"));
}

TEST(WorkflowCommand, SetEnvAndAddPathAreDisabled) {
  auto c = parse_workflow_command("::set-env name=LD_PRELOAD::/tmp/x.so");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, WorkflowCommandKind::kDisabled);
  EXPECT_NE(c->value.find("disabled"), std::string::npos);
  EXPECT_TRUE(c->properties.empty());
  EXPECT_EQ(parse_workflow_command("::add-path::/evil")->kind, WorkflowCommandKind::kDisabled);
}

TEST(OutputLineParser, StopCommandsUntilTheToken) {
  OutputLineParser p;
  EXPECT_EQ(p.classify("plain").kind, OutputLine::Kind::kText);
  auto stop = p.classify("::stop-commands::tok-8f2a");
  ASSERT_EQ(stop.kind, OutputLine::Kind::kCommand);
  EXPECT_EQ(stop.command->kind, WorkflowCommandKind::kStopCommands);
  EXPECT_TRUE(p.commands_stopped());
  EXPECT_EQ(p.classify("::add-mask::shown-as-text").kind, OutputLine::Kind::kText);
  EXPECT_EQ(p.classify("::error::ignored").kind, OutputLine::Kind::kText);
  EXPECT_EQ(p.classify("::other-token::").kind, OutputLine::Kind::kText);
  auto resume = p.classify("::tok-8f2a::");
  ASSERT_EQ(resume.kind, OutputLine::Kind::kCommand);
  EXPECT_EQ(resume.command->kind, WorkflowCommandKind::kResumeCommands);
  EXPECT_FALSE(p.commands_stopped());
  auto err = p.classify("::error::counted again");
  ASSERT_EQ(err.kind, OutputLine::Kind::kCommand);
  EXPECT_EQ(err.command->kind, WorkflowCommandKind::kError);
}

TEST(OutputLineParser, RefusesUnsafeStopTokens) {
  for (const char* line :
       {"::stop-commands::", "::stop-commands::error", "::stop-commands::add-mask"}) {
    OutputLineParser p;
    auto r = p.classify(line);
    EXPECT_EQ(r.kind, OutputLine::Kind::kInvalidCommand) << line;
    EXPECT_FALSE(r.error.empty());
    EXPECT_FALSE(p.commands_stopped()) << line;
  }
}

using Lines = std::vector<std::string>;

TEST(StepOutputProcessor, TextIsMaskedAndAddMaskIsNeverShown) {
  SecretMasker masker;
  masker.add("preset-secret");
  StepOutputProcessor p(masker);
  EXPECT_EQ(p.process("token is preset-secret"), (Lines{"token is ***"}));
  EXPECT_EQ(p.process("::add-mask::run-time-secret"), Lines{});
  EXPECT_EQ(p.process("echo run-time-secret\r"), (Lines{"echo ***"}));
  EXPECT_TRUE(p.annotations().empty());
}

TEST(StepOutputProcessor, EmptyAddMaskWarns) {
  SecretMasker masker;
  StepOutputProcessor p(masker);
  EXPECT_EQ(p.process("::add-mask::"),
            (Lines{"Warning: ::add-mask:: with an empty value; nothing to mask"}));
  EXPECT_EQ(masker.pattern_count(), 0u);
}

TEST(StepOutputProcessor, AnnotationsAreRecordedAndShown) {
  SecretMasker masker;
  masker.add("s3cr3t-value");
  StepOutputProcessor p(masker);
  EXPECT_EQ(
      p.process("::error file=src/greet.c,line=12,col=5,title=Build::bad s3cr3t-value%0Anext"),
      (Lines{"Error: src/greet.c:12:5: Build: bad ***", "next"}));
  EXPECT_EQ(p.process("::warning::careful"), (Lines{"Warning: careful"}));
  EXPECT_EQ(p.process("::notice file=README.md::fyi"), (Lines{"Notice: README.md: fyi"}));
  ASSERT_EQ(p.annotations().size(), 3u);
  const Annotation& e = p.annotations()[0];
  EXPECT_EQ(e.level, WorkflowCommandKind::kError);
  EXPECT_EQ(e.file, "src/greet.c");
  EXPECT_EQ(e.line, 12);
  EXPECT_EQ(e.column, 5);
  EXPECT_EQ(e.title, "Build");
  EXPECT_EQ(e.message, "bad ***\nnext");
}

TEST(StepOutputProcessor, GroupsDebugAndSetOutput) {
  SecretMasker masker;
  StepOutputProcessor quiet(masker);
  EXPECT_EQ(quiet.process("::group::Compile"), (Lines{"> Compile"}));
  EXPECT_EQ(quiet.process("::endgroup::"), Lines{});
  EXPECT_EQ(quiet.process("::debug::details"), Lines{});
  EXPECT_EQ(
      quiet.process("::set-output name=v::1.2"),
      (Lines{"Warning: the set-output command is deprecated; write to $GITHUB_OUTPUT instead"}));
  EXPECT_EQ(quiet.process("::set-output name=w::x"), Lines{});  // warned once
  EXPECT_EQ(quiet.process("::set-output::no name"), (Lines{"Error: ::set-output:: without name="}));
  EXPECT_EQ(quiet.outputs(), (NameValueList{{"v", "1.2"}, {"w", "x"}}));

  StepOutputProcessor verbose(masker, /*show_debug=*/true);
  EXPECT_EQ(verbose.process("::debug::details"), (Lines{"Debug: details"}));
}

TEST(StepOutputProcessor, StopCommandsShowsCommandsAsText) {
  SecretMasker masker;
  StepOutputProcessor p(masker);
  EXPECT_EQ(p.process("::stop-commands::pause-8f2a"), Lines{});
  EXPECT_EQ(p.process("::error::not an annotation"), (Lines{"::error::not an annotation"}));
  EXPECT_EQ(p.process("::add-mask::not-a-mask"), (Lines{"::add-mask::not-a-mask"}));
  EXPECT_EQ(p.process("::pause-8f2a::"), Lines{});
  EXPECT_EQ(p.process("::error::now it is"), (Lines{"Error: now it is"}));
  EXPECT_EQ(p.annotations().size(), 1u);
  EXPECT_EQ(
      p.process("::stop-commands::error"),
      (Lines{"Error: invalid ::stop-commands:: token (empty, a command name, or holding '::')"}));
}

TEST(StepOutputProcessor, DisabledCommandsAreErrors) {
  SecretMasker masker;
  StepOutputProcessor p(masker);
  auto lines = p.process("::set-env name=PATH::/tmp");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].starts_with("Error: the 'set-env' command is disabled")) << lines[0];
  ASSERT_EQ(p.annotations().size(), 1u);
}

}  // namespace
}  // namespace sandci::agent
