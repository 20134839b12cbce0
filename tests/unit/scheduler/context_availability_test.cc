// Each key where GitHub evaluates expressions allows only the contexts (and special
// functions) of its row in GitHub's context availability table: one allowed and
// one refused context per row, checked by loading a workflow, with the refusal at
// the file:line:col of the name. Also checks the docs print the same table.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "scheduler/context_availability.h"
#include "scheduler/workflow_loader.h"

namespace sandci::scheduler {
namespace {

// A job that runs steps, with `job` lines (indented 4) and `step` lines of its
// one step (indented 8); `head` is the step's first line.
std::string steps_job(const std::string& job, const std::string& step = "",
                      const std::string& head = "- run: echo hi") {
  return "on: push\n"
         "jobs:\n"
         "  build:\n"
         "    runs-on: ubuntu-latest\n" +
         job +
         "    steps:\n"
         "      " + head + "\n" + step;
}

// The same job with a matrix, so `matrix` has something to name.
std::string matrix_job(const std::string& job) {
  return steps_job("    strategy:\n      matrix:\n        os: [debian, alpine]\n" + job);
}

// A job calling a reusable workflow, with `job` lines (indented 4).
std::string call_job(const std::string& job) {
  return "on: push\n"
         "jobs:\n"
         "  call:\n"
         "    uses: ./.github/workflows/lib.yml\n" + job;
}

const std::string kSteps = "jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";

// A reusable workflow, `call` lines under `on.workflow_call` (indented 4).
std::string callable(const std::string& call) {
  return "on:\n  workflow_call:\n" + call + kSteps;
}

struct Row {
  std::string key;        // the row of the table this case covers
  std::string text;       // a workflow with '@' where the expression goes
  std::string allowed;    // an expression naming a context the row allows
  std::string refused;    // an expression naming one it does not allow
  std::string context;    // what `refused` names that is not allowed
  std::string path;       // the key as the message names it
};

std::ostream& operator<<(std::ostream& out, const Row& row) { return out << row.key; }

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {"run-name", "run-name: @\n" + steps_job(""), "${{ inputs.who }} on ${{ github.ref }}",
       "deploy ${{ secrets.token }}", "secrets", "run-name"},
      {"concurrency", "concurrency: @\n" + steps_job(""), "ci-${{ vars.LANE }}", "ci-${{ env.LANE }}", "env",
       "concurrency"},
      {"env", "env:\n  TOKEN: @\n" + steps_job(""), "${{ secrets.token }}", "${{ matrix.os }}", "matrix", "env"},
      {"jobs.<job_id>.concurrency", matrix_job("    concurrency: @\n"), "lane-${{ matrix.os }}",
       "lane-${{ steps.a.outputs.b }}", "steps", "jobs.build.concurrency"},
      {"jobs.<job_id>.container", matrix_job("    container: @\n"), "${{ matrix.os }}", "${{ env.IMAGE }}", "env",
       "jobs.build.container"},
      {"jobs.<job_id>.container.env.<env_id>", steps_job("    container:\n      image: debian\n      env:\n        A: @\n"),
       "${{ secrets.token }}", "${{ steps.a.outputs.b }}", "steps", "jobs.build.container.env"},
      {"jobs.<job_id>.container.image", matrix_job("    container:\n      image: @\n"), "${{ matrix.os }}",
       "${{ runner.os }}", "runner", "jobs.build.container.image"},
      {"jobs.<job_id>.continue-on-error", matrix_job("    continue-on-error: @\n"), "${{ matrix.os == 'alpine' }}",
       "${{ secrets.token == '' }}", "secrets", "jobs.build.continue-on-error"},
      {"jobs.<job_id>.defaults.run", steps_job("    defaults:\n      run:\n        working-directory: @\n"),
       "${{ env.DIR }}", "${{ secrets.token }}", "secrets", "jobs.build.defaults.run"},
      {"jobs.<job_id>.env", matrix_job("    env:\n      A: @\n"), "${{ secrets.token }}-${{ matrix.os }}",
       "${{ env.B }}", "env", "jobs.build.env"},
      {"jobs.<job_id>.environment", matrix_job("    environment: @\n"), "${{ matrix.os }}", "${{ secrets.stage }}",
       "secrets", "jobs.build.environment"},
      {"jobs.<job_id>.environment.url", steps_job("    environment:\n      name: prod\n      url: @\n"),
       "${{ steps.deploy.outputs.url }}", "${{ secrets.host }}", "secrets", "jobs.build.environment.url"},
      {"jobs.<job_id>.if", steps_job("    if: @\n"), "github.ref == 'refs/heads/main'", "secrets.token != ''",
       "secrets", "jobs.build.if"},
      {"jobs.<job_id>.name", matrix_job("    name: @\n"), "build on ${{ matrix.os }}", "build on ${{ runner.os }}",
       "runner", "jobs.build.name"},
      {"jobs.<job_id>.outputs.<output_id>", steps_job("    outputs:\n      v: @\n"), "${{ steps.a.outputs.v }}",
       "${{ jobs.a.outputs.v }}", "jobs", "jobs.build.outputs"},
      {"jobs.<job_id>.runs-on",
       "on: push\njobs:\n  build:\n    strategy:\n      matrix:\n        os: [a]\n    runs-on: @\n"
       "    steps:\n      - run: echo hi\n",
       "${{ matrix.os }}", "${{ steps.a.outputs.b }}", "steps", "jobs.build.runs-on"},
      {"jobs.<job_id>.secrets.<secrets_id>", call_job("    secrets:\n      token: @\n"), "${{ secrets.deploy }}",
       "${{ env.TOKEN }}", "env", "jobs.call.secrets"},
      {"jobs.<job_id>.steps.continue-on-error", steps_job("", "        continue-on-error: @\n"),
       "${{ secrets.token == '' }}", "${{ jobs.a.result == 'failure' }}", "jobs", "jobs.build.steps.continue-on-error"},
      {"jobs.<job_id>.steps.env", steps_job("", "        env:\n          A: @\n"), "${{ hashFiles('go.sum') }}",
       "${{ jobs.a.outputs.v }}", "jobs", "jobs.build.steps.env"},
      {"jobs.<job_id>.steps.if", steps_job("", "        if: @\n"), "steps.a.outcome == 'success'",
       "secrets.token != ''", "secrets", "jobs.build.steps.if"},
      {"jobs.<job_id>.steps.name", steps_job("", "        name: @\n"), "use ${{ secrets.token }}",
       "use ${{ jobs.a.outputs.v }}", "jobs", "jobs.build.steps.name"},
      {"jobs.<job_id>.steps.run", steps_job("", "", "- run: @"), "echo ${{ runner.os }} ${{ job.status }}",
       "echo ${{ jobs.a.outputs.v }}", "jobs", "jobs.build.steps.run"},
      {"jobs.<job_id>.steps.timeout-minutes", steps_job("", "        timeout-minutes: @\n"), "${{ env.MINUTES }}",
       "${{ jobs.a.outputs.minutes }}", "jobs", "jobs.build.steps.timeout-minutes"},
      {"jobs.<job_id>.steps.with", steps_job("", "        with:\n          key: @\n", "- uses: ./.github/actions/setup"),
       "${{ steps.a.outputs.key }}", "${{ jobs.a.outputs.key }}", "jobs", "jobs.build.steps.with"},
      {"jobs.<job_id>.steps.working-directory", steps_job("", "        working-directory: @\n"), "${{ env.DIR }}",
       "${{ jobs.a.outputs.dir }}", "jobs", "jobs.build.steps.working-directory"},
      {"jobs.<job_id>.strategy", steps_job("    strategy:\n      matrix:\n        os: @\n"),
       "${{ fromJSON(vars.OSES) }}", "${{ fromJSON(env.OSES) }}", "env", "jobs.build.strategy"},
      {"jobs.<job_id>.timeout-minutes", matrix_job("    timeout-minutes: @\n"), "${{ vars.MINUTES }}",
       "${{ env.MINUTES }}", "env", "jobs.build.timeout-minutes"},
      {"jobs.<job_id>.with.<with_id>", call_job("    with:\n      who: @\n"), "${{ github.actor }}",
       "${{ secrets.token }}", "secrets", "jobs.call.with"},
      {"on.workflow_call.inputs.<inputs_id>.default",
       callable("    inputs:\n      who:\n        type: string\n        default: @\n"), "${{ github.actor }}",
       "${{ env.WHO }}", "env", "on.workflow_call.inputs.who.default"},
      {"on.workflow_call.outputs.<output_id>.value", callable("    outputs:\n      v:\n        value: @\n"),
       "${{ jobs.build.outputs.v }}", "${{ steps.a.outputs.v }}", "steps", "on.workflow_call.outputs.v.value"},
  };
  return kRows;
}

// Rows of keys sandci refuses whole (service containers, registry credentials):
// the key itself is an error, so no expression in it is ever read.
const std::vector<std::pair<std::string, std::string>>& refused_rows() {
  static const std::vector<std::pair<std::string, std::string>> kRefused = {
      {"jobs.<job_id>.container.credentials",
       steps_job("    container:\n      image: debian\n      credentials:\n        password: ${{ secrets.p }}\n")},
      {"jobs.<job_id>.services", steps_job("    services:\n      db: ${{ matrix.db }}\n")},
      {"jobs.<job_id>.services.<service_id>.credentials",
       steps_job("    services:\n      db:\n        image: pg\n        credentials:\n          password: ${{ secrets.p }}\n")},
      {"jobs.<job_id>.services.<service_id>.env.<env_id>",
       steps_job("    services:\n      db:\n        image: pg\n        env:\n          A: ${{ secrets.p }}\n")},
  };
  return kRefused;
}

std::string with(std::string text, const std::string& expression) {
  text.replace(text.find('@'), 1, expression);
  return text;
}

struct Loaded {
  bool ok = false;
  std::vector<std::string> errors;  // each as "ci.yml:line:col: error: message"
};

Loaded load(const std::string& text) {
  Diagnostics diagnostics;
  Loaded loaded;
  loaded.ok = parse_workflow(text, "ci.yml", diagnostics).has_value();
  for (const auto& d : diagnostics)
    if (d.severity == Severity::error) loaded.errors.push_back(d.to_string());
  return loaded;
}

// "ci.yml:line:col" of the first `name.` (or `name(`) after the '@' in `text`.
std::string position_of(const std::string& templ, const std::string& expression, const std::string& name) {
  const std::string text = with(templ, expression);
  const std::size_t offset = templ.find('@') + expression.find(name);
  const std::size_t line = std::count(text.begin(), text.begin() + offset, '\n') + 1;
  const std::size_t line_start = text.rfind('\n', offset);
  const std::size_t column = offset - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
  return "ci.yml:" + std::to_string(line) + ":" + std::to_string(column);
}

std::string joined(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

class ContextAvailabilityRow : public ::testing::TestWithParam<Row> {};

TEST_P(ContextAvailabilityRow, AllowsItsContexts) {
  const Row& row = GetParam();
  auto loaded = load(with(row.text, row.allowed));
  EXPECT_TRUE(loaded.ok) << ::testing::PrintToString(loaded.errors);
}

TEST_P(ContextAvailabilityRow, RefusesAnotherContextAtItsPosition) {
  const Row& row = GetParam();
  const ContextAvailability* table_row = find_availability(row.key);
  ASSERT_NE(table_row, nullptr) << row.key;
  auto loaded = load(with(row.text, row.refused));
  EXPECT_FALSE(loaded.ok);
  const std::string expected = position_of(row.text, row.refused, row.context + ".") + ": error: `" +
                               row.context + "` is not available in " + row.path +
                               "; available: " + joined(table_row->contexts);
  EXPECT_EQ(loaded.errors, std::vector<std::string>{expected});
}

INSTANTIATE_TEST_SUITE_P(EveryKey, ContextAvailabilityRow, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           std::string name;
                           for (char c : info.param.key)
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           return name;
                         });

TEST(ContextAvailability, RefusedKeysAreRefusedWhole) {
  for (const auto& [key, text] : refused_rows()) {
    ASSERT_NE(find_availability(key), nullptr) << key;
    auto loaded = load(text);
    EXPECT_FALSE(loaded.ok) << key;
    ASSERT_EQ(loaded.errors.size(), 1u) << key << ::testing::PrintToString(loaded.errors);
    EXPECT_NE(loaded.errors[0].find("is not supported by sandci"), std::string::npos) << loaded.errors[0];
  }
}

// A test per row: every row of the table is covered by a case above.
TEST(ContextAvailability, EveryRowHasACase) {
  std::set<std::string> covered;
  for (const auto& row : rows()) covered.insert(row.key);
  for (const auto& [key, text] : refused_rows()) covered.insert(key);
  std::set<std::string> table;
  for (const auto& row : context_availability()) table.emplace(row.key);
  EXPECT_EQ(covered, table);
}

TEST(ContextAvailability, TheMessageNamesTheJobAndWhatIsAllowed) {
  auto loaded = load(steps_job("    if: ${{ secrets.token != '' }}\n"));
  EXPECT_EQ(loaded.errors, std::vector<std::string>{
                               "ci.yml:5:13: error: `secrets` is not available in jobs.build.if; "
                               "available: github, needs, vars, inputs"});
}

TEST(ContextAvailability, EveryRefusedNameIsReported) {
  auto loaded = load("on: push\njobs:\n  build:\n    runs-on: ${{ env.A }}-${{ steps.b.outputs.c }}\n"
                     "    steps:\n      - run: echo hi\n");
  ASSERT_EQ(loaded.errors.size(), 2u) << ::testing::PrintToString(loaded.errors);
  EXPECT_NE(loaded.errors[0].find("ci.yml:4:18: error: `env` is not available in jobs.build.runs-on"),
            std::string::npos) << loaded.errors[0];
  EXPECT_NE(loaded.errors[1].find("ci.yml:4:31: error: `steps` is not available in jobs.build.runs-on"),
            std::string::npos) << loaded.errors[1];
}

TEST(ContextAvailability, ContextNamesAreCaseInsensitive) {
  auto loaded = load(steps_job("    if: Secrets.token\n"));
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_NE(loaded.errors[0].find("`secrets` is not available in jobs.build.if"), std::string::npos);
}

TEST(ContextAvailability, StatusFunctionsOnlyInConditions) {
  EXPECT_TRUE(load(steps_job("    if: always()\n")).ok);
  EXPECT_TRUE(load(steps_job("", "        if: failure() && steps.a.outcome == 'failure'\n")).ok);
  auto loaded = load(steps_job("    env:\n      DONE: ${{ success() }}\n"));
  EXPECT_EQ(loaded.errors, std::vector<std::string>{
                               "ci.yml:6:17: error: `success()` is not available in jobs.build.env; "
                               "functions available there besides the common ones: none"});
}

TEST(ContextAvailability, HashFilesOnlyInSteps) {
  EXPECT_TRUE(load(steps_job("", "        if: hashFiles('**/go.sum') != ''\n")).ok);
  EXPECT_TRUE(load(steps_job("", "", "- run: echo ${{ hashFiles('go.sum') }}")).ok);
  auto loaded = load(steps_job("    if: hashFiles('go.sum') != ''\n"));
  EXPECT_EQ(loaded.errors, std::vector<std::string>{
                               "ci.yml:5:9: error: `hashFiles()` is not available in jobs.build.if; "
                               "functions available there besides the common ones: always, cancelled, "
                               "success, failure"});
}

TEST(ContextAvailability, CommonFunctionsAreAllowedEverywhere) {
  EXPECT_TRUE(load("run-name: ${{ format('{0}', toJSON(fromJSON('[1]'))) }} ${{ contains(github.ref, 'x') }}\n" +
                   steps_job(""))
                  .ok);
}

TEST(ContextAvailability, KeysOutsideTheTableAreNotChecked) {
  // Step shell and workflow defaults are not in GitHub's table: sandci evaluates
  // them at run time without refusing any context.
  EXPECT_TRUE(load(steps_job("", "        shell: ${{ env.SHELL }}\n")).ok);
  EXPECT_TRUE(load("defaults:\n  run:\n    working-directory: ${{ env.DIR }}\n" + steps_job("")).ok);
}

// docs/workflow-syntax.md prints the table between two markers, one row per line:
// "| `key` | contexts | functions or none |". It must be the table here.
TEST(ContextAvailability, DocsPrintTheTable) {
  std::ifstream in(std::string(SANDCI_SOURCE_DIR) + "/docs/workflow-syntax.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const auto begin = doc.find("<!-- context-availability -->");
  const auto end = doc.find("<!-- /context-availability -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::vector<std::string> documented;
  std::istringstream block(doc.substr(begin, end - begin));
  for (std::string line; std::getline(block, line);)
    if (line.starts_with("| `")) documented.push_back(line);
  std::vector<std::string> expected;
  for (const auto& row : context_availability()) {
    const std::string functions = row.functions.empty() ? "none" : joined(row.functions);
    expected.push_back("| `" + std::string(row.key) + "` | " + joined(row.contexts) + " | " +
                       functions + " |");
  }
  EXPECT_EQ(documented, expected);
}

}  // namespace
}  // namespace sandci::scheduler
