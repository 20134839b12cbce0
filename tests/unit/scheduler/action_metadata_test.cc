#include "scheduler/action_metadata.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sandci::scheduler {
namespace {

namespace fs = std::filesystem;

struct Parsed {
  std::optional<ActionMetadata> action;
  std::vector<std::string> errors;  // "line:col: message"
  std::string all() const {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
  }
};

Parsed parse(const std::string& text) {
  Parsed parsed;
  Diagnostics diagnostics;
  parsed.action = parse_action_metadata(text, "act/action.yml", diagnostics);
  for (const auto& d : diagnostics) {
    EXPECT_EQ(d.location.file, "act/action.yml");
    parsed.errors.push_back(std::to_string(d.location.line) + ":" + std::to_string(d.location.column) + ": " +
                            d.message);
  }
  return parsed;
}

// True when some error is at `line:col` and holds `text`.
bool has_error(const Parsed& parsed, const std::string& at, const std::string& text) {
  for (const auto& e : parsed.errors)
    if (e.rfind(at + ": ", 0) == 0 && e.find(text) != std::string::npos) return true;
  return false;
}

TEST(ActionMetadata, CompositeActionWithInputsOutputsAndSteps) {
  auto parsed = parse(R"Y(
name: Greet
description: Says hello
author: someone
branding:
  icon: sun
  color: yellow
inputs:
  who-to-greet:
    description: Who
    required: true
    default: World
  Style:
    required: "false"
    deprecationMessage: use who-to-greet
  bare:
outputs:
  greeting:
    description: What was said
    value: ${{ steps.say.outputs.text }}
runs:
  using: composite
  steps:
    - id: say
      name: Say it
      shell: bash
      run: $GITHUB_ACTION_PATH/greet.sh "${{ inputs.who-to-greet }}"
      env:
        LOUD: "1"
      working-directory: ${{ github.action_path }}
      continue-on-error: ${{ inputs.Style == 'lenient' }}
      if: ${{ inputs.bare != 'skip' }}
    - uses: ./tools/other
      with:
        level: 3
)Y");
  ASSERT_TRUE(parsed.action) << parsed.all();
  const auto& a = *parsed.action;
  EXPECT_EQ(a.name, "Greet");
  EXPECT_EQ(a.runs, ActionRuns::composite);
  ASSERT_EQ(a.inputs.size(), 3u);
  EXPECT_EQ(a.inputs[0].name, "who-to-greet");
  EXPECT_TRUE(a.inputs[0].required);
  EXPECT_EQ(a.inputs[0].default_value, "World");
  EXPECT_FALSE(a.inputs[1].required);
  EXPECT_EQ(a.inputs[1].deprecation_message, "use who-to-greet");
  EXPECT_FALSE(a.inputs[2].default_value);
  ASSERT_NE(a.find_input("STYLE"), nullptr);
  EXPECT_EQ(a.find_input("STYLE")->name, "Style");
  EXPECT_EQ(a.find_input("nope"), nullptr);
  ASSERT_EQ(a.outputs.size(), 1u);
  EXPECT_EQ(a.outputs[0].value, "${{ steps.say.outputs.text }}");
  ASSERT_EQ(a.steps.size(), 2u);
  EXPECT_EQ(a.steps[0].id, "say");
  EXPECT_EQ(a.steps[0].shell, "bash");
  EXPECT_EQ(a.steps[0].working_directory, "${{ github.action_path }}");
  EXPECT_EQ(a.steps[0].env.at(0).second, "1");
  EXPECT_EQ(a.steps[0].location.line, 24);
  EXPECT_EQ(a.steps[1].uses, "./tools/other");
  EXPECT_EQ(a.steps[1].with.at(0).second, "3");
}

TEST(ActionMetadata, NodeActionWithPreAndPost) {
  auto parsed = parse(R"Y(
name: Cache thing
inputs:
  key: {required: true}
outputs:
  hit: {description: whether it was found}
runs:
  using: node20
  main: dist/index.js
  pre: dist/setup.js
  pre-if: runner.os == 'Linux'
  post: dist/save.js
  post-if: success()
)Y");
  ASSERT_TRUE(parsed.action) << parsed.all();
  const auto& a = *parsed.action;
  EXPECT_EQ(a.runs, ActionRuns::node);
  EXPECT_EQ(a.using_, "node20");
  EXPECT_EQ(a.main, "dist/index.js");
  EXPECT_EQ(a.pre, "dist/setup.js");
  EXPECT_EQ(a.post, "dist/save.js");
  EXPECT_EQ(a.pre_if, "runner.os == 'Linux'");
  EXPECT_EQ(a.post_if, "success()");
}

TEST(ActionMetadata, EveryNodeVersionGitHubRunsIsAccepted) {
  for (std::string v : {"node16", "node20", "node24", "Node20"}) {
    auto parsed = parse("runs:\n  using: " + v + "\n  main: index.js\n");
    EXPECT_TRUE(parsed.action) << v << "\n" << parsed.all();
  }
}

TEST(ActionMetadataErrors, DockerActionsAreRefusedWithTheReason) {
  auto parsed = parse("name: d\nruns:\n  using: docker\n  image: Dockerfile\n");
  EXPECT_FALSE(parsed.action);
  EXPECT_TRUE(has_error(parsed, "3:10", "'using: docker' is refused")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "3:10", "no registry, no container engine")) << parsed.all();
}

TEST(ActionMetadataErrors, UnknownAndRetiredRuntimes) {
  auto node12 = parse("runs:\n  using: node12\n  main: a.js\n");
  EXPECT_TRUE(has_error(node12, "2:10", "GitHub retired Node 12")) << node12.all();
  auto typo = parse("runs:\n  using: compsite\n");
  EXPECT_TRUE(has_error(typo, "2:10", "did you mean 'composite'")) << typo.all();
  auto missing = parse("name: x\n");
  EXPECT_TRUE(has_error(missing, "1:1", "no 'runs'")) << missing.all();
  auto no_using = parse("runs:\n  main: a.js\n");
  EXPECT_TRUE(has_error(no_using, "2:3", "'runs' needs 'using'")) << no_using.all();
}

TEST(ActionMetadataErrors, CompositeRunStepsMustNameTheirShell) {
  auto parsed = parse(R"Y(runs:
  using: composite
  steps:
    - run: echo hi
)Y");
  EXPECT_FALSE(parsed.action);
  EXPECT_TRUE(has_error(parsed, "4:7", "without 'shell'")) << parsed.all();
}

TEST(ActionMetadataErrors, StepShapes) {
  auto parsed = parse(R"Y(runs:
  using: composite
  steps:
    - run: a
      uses: ./x
      shell: bash
    - name: nothing
    - uses: ./y
      shell: bash
    - run: b
      shell: sh
      with: {a: 1}
    - uses: docker://alpine
    - uses: acme/tool
    - id: one
      run: c
      shell: sh
    - id: one
      run: d
      shell: sh
    - run: e
      shell: sh
      timeout-minutes: 3
    - run: ${{ inputs.x ) }}
      shell: sh
)Y");
  EXPECT_FALSE(parsed.action);
  EXPECT_TRUE(has_error(parsed, "5:7", "both 'run' and 'uses'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "7:7", "needs either 'run' or 'uses'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "9:7", "'shell' is only allowed in a step with 'run'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "12:7", "'with' is only allowed in a step with 'uses'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "13:13", "docker:// action pulls an image")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "14:13", "must name a version after '@'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "18:11", "duplicate step id 'one' (first used at line 15)")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "23:7", "unknown key 'timeout-minutes'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "24:25", "invalid expression")) << parsed.all();
}

TEST(ActionMetadataErrors, InputsAndOutputs) {
  auto parsed = parse(R"Y(inputs:
  token:
    requird: true
  Token:
    description: again
  flag:
    required: maybe
  "a=b":
    description: x
outputs:
  result:
    description: no value
runs:
  using: composite
  steps:
    - run: true
      shell: sh
)Y");
  EXPECT_FALSE(parsed.action);
  EXPECT_TRUE(has_error(parsed, "3:5", "unknown key 'requird' in input 'token' (did you mean 'required'?)"))
      << parsed.all();
  EXPECT_TRUE(has_error(parsed, "4:3", "declared twice")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "7:15", "'required' must be true or false")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "8:3", "invalid input id 'a=b'")) << parsed.all();
  EXPECT_TRUE(has_error(parsed, "11:3", "needs a 'value'")) << parsed.all();
}

TEST(ActionMetadataErrors, NodeActionNeedsMainInsideItsFolder) {
  auto no_main = parse("runs:\n  using: node20\n  post: p.js\n");
  EXPECT_TRUE(has_error(no_main, "2:3", "needs 'main'")) << no_main.all();
  auto climbs = parse("runs:\n  using: node20\n  main: ../../etc/x.js\n  pre: /abs.js\n  steps: []\n");
  EXPECT_TRUE(has_error(climbs, "3:9", "must be a path inside the action's folder")) << climbs.all();
  EXPECT_TRUE(has_error(climbs, "4:8", "must be a path inside the action's folder")) << climbs.all();
  EXPECT_TRUE(has_error(climbs, "5:3", "unknown key 'steps' in 'runs' of a node20 action")) << climbs.all();
}

TEST(ActionMetadataErrors, UnknownTopLevelKeySuggestsTheNearOne) {
  auto parsed = parse("inptus: {}\nruns:\n  using: node20\n  main: a.js\n");
  EXPECT_TRUE(has_error(parsed, "1:1", "unknown key 'inptus' in the action (did you mean 'inputs'?)"))
      << parsed.all();
}

TEST(ActionMetadataErrors, SyntaxErrorsAndHostileFilesEndInADiagnostic) {
  auto syntax = parse("runs:\n  using: [composite\n");
  EXPECT_FALSE(syntax.action);
  EXPECT_FALSE(syntax.errors.empty());
  auto not_a_map = parse("- a\n- b\n");
  EXPECT_TRUE(has_error(not_a_map, "1:1", "must be a mapping")) << not_a_map.all();
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'k'; ++c)
    bomb += std::string(1, c) + ": &" + c + " [*" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) +
            ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + "]\n";
  bomb += "runs:\n  using: composite\n  steps: *k\n";
  auto parsed = parse(bomb);
  EXPECT_FALSE(parsed.action);
  EXPECT_FALSE(parsed.errors.empty());
}

TEST(ActionMetadataErrors, FirstErrorSummarisesTheRest) {
  Diagnostics diagnostics;
  parse_action_metadata("runs:\n  using: docker\nfoo: 1\n", "a/action.yml", diagnostics);
  const std::string line = first_error(diagnostics);
  EXPECT_EQ(line.rfind("a/action.yml:2:10: error: 'using: docker' is refused", 0), 0u) << line;
  EXPECT_NE(line.find("(and 1 more error)"), std::string::npos) << line;
}

class ActionMetadataFiles : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  sandci::testing::TempDir temp_{"sandci-action-meta-"};
  fs::path dir_ = temp_.path();
};

TEST_F(ActionMetadataFiles, ReadsActionYmlThenActionYaml) {
  write("action.yaml", "name: second\nruns:\n  using: node20\n  main: a.js\n");
  Diagnostics diagnostics;
  auto action = load_action_metadata(dir_, "./tools/x", diagnostics);
  ASSERT_TRUE(action) << first_error(diagnostics);
  EXPECT_EQ(action->name, "second");
  EXPECT_EQ(action->file, "./tools/x/action.yaml");
  write("action.yml", "name: first\nruns:\n  using: bogus\n");
  diagnostics.clear();
  EXPECT_FALSE(load_action_metadata(dir_, "./tools/x", diagnostics));
  EXPECT_EQ(first_error(diagnostics).rfind("./tools/x/action.yml:3:10: error: unknown 'using: bogus'", 0), 0u)
      << first_error(diagnostics);
}

TEST_F(ActionMetadataFiles, NoMetadataOrASymlinkIsAnError) {
  Diagnostics diagnostics;
  EXPECT_FALSE(load_action_metadata(dir_, "./tools/x", diagnostics));
  EXPECT_EQ(first_error(diagnostics), "./tools/x: error: holds no action.yml or action.yaml: it is not an action");
  write("real.yml", "runs:\n  using: node20\n  main: a.js\n");
  fs::create_symlink(dir_ / "real.yml", dir_ / "action.yml");
  diagnostics.clear();
  EXPECT_FALSE(load_action_metadata(dir_, "./tools/x", diagnostics));
  EXPECT_NE(first_error(diagnostics).find("action.yml: error: is not a regular file"), std::string::npos)
      << first_error(diagnostics);
}

}  // namespace
}  // namespace sandci::scheduler
