#include "scheduler/expression.h"

#include <gtest/gtest.h>

#include <pthread.h>

#include <cmath>
#include <functional>
#include <string>

namespace sandci::scheduler {
namespace {

EvalContext sample_context() {
  EvalContext ctx;
  ctx.contexts = Value::parse(R"({
    "github": {
      "event_name": "push",
      "ref": "refs/heads/main",
      "run_number": 42,
      "event": {
        "commits": [{"message": "first", "id": 1}, {"message": "second", "id": 2}],
        "pull_request": null,
        "labels": ["bug", "Help Wanted"]
      }
    },
    "env": {"FOO": "bar", "EMPTY": "", "ZERO": "0", "Mixed_Case": "yes"},
    "matrix": {
      "os": "ubuntu-latest",
      "node": 18,
      "ratio": 0.5,
      "include": [{"os": "linux", "arch": "x64"}, {"os": "macos"}, 7]
    },
    "needs": {
      "build": {"result": "success", "outputs": {"version": "1.2.3"}},
      "test": {"result": "failure", "outputs": {}}
    },
    "steps": {"my-step": {"outputs": {"path": "/tmp/out"}, "conclusion": "success"}},
    "secrets": {"TOKEN": "s3cret"},
    "inputs": {"debug": true, "count": "3"},
    "vars": {},
    "job": {"status": "success"},
    "runner": {"os": "Linux"},
    "strategy": {"fail-fast": true}
  })");
  return ctx;
}

std::expected<Value, ExpressionError> run(std::string_view text, const EvalContext& ctx) {
  auto expression = parse_expression(text);
  if (!expression) return std::unexpected(expression.error());
  return (*expression)->evaluate(ctx);
}

// Evaluates against the sample context; a failure is reported and yields a marker.
Value eval(std::string_view text, const EvalContext& ctx = sample_context()) {
  auto value = run(text, ctx);
  if (!value) {
    ADD_FAILURE() << "'" << text << "' failed: " << value.error().to_string();
    return "<error>";
  }
  return *value;
}

std::string show(std::string_view text) { return to_display_string(eval(text)); }

// The error of parsing or evaluating text; reports a failure if it succeeds.
ExpressionError error_of(std::string_view text, const EvalContext& ctx = sample_context()) {
  auto value = run(text, ctx);
  if (value) {
    ADD_FAILURE() << "'" << text << "' unexpectedly gave " << value->dump();
    return {};
  }
  return value.error();
}

std::string error_text(std::string_view text) { return error_of(text).to_string(); }

// ---- Literals ----

TEST(ExpressionLiterals, NullAndBooleans) {
  EXPECT_TRUE(eval("null").is_null());
  EXPECT_EQ(eval("true"), Value(true));
  EXPECT_EQ(eval("false"), Value(false));
}

TEST(ExpressionLiterals, KeywordsAreCaseSensitive) {
  // As in Actions, TRUE is not a literal but an (unknown) context name.
  EXPECT_EQ(error_text("TRUE"), "unknown context 'TRUE' at offset 0");
}

TEST(ExpressionLiterals, DecimalNumbers) {
  EXPECT_EQ(show("42"), "42");
  EXPECT_EQ(show("-7"), "-7");
  EXPECT_EQ(show("+3"), "3");
  EXPECT_EQ(show("1.5"), "1.5");
  EXPECT_EQ(show(".5"), "0.5");
  EXPECT_EQ(show("-.25"), "-0.25");
  EXPECT_EQ(show("2."), "2");
}

TEST(ExpressionLiterals, HexAndOctalNumbers) {
  EXPECT_EQ(show("0xff"), "255");
  EXPECT_EQ(show("0x1F"), "31");
  EXPECT_EQ(show("0o17"), "15");
  // Actions reads hex as a 32-bit signed integer.
  EXPECT_EQ(show("0xFFFFFFFF"), "-1");
}

TEST(ExpressionLiterals, ExponentNumbers) {
  EXPECT_EQ(show("1e3"), "1000");
  EXPECT_EQ(show("1E+3"), "1000");
  EXPECT_EQ(show("2.5e-1"), "0.25");
  EXPECT_EQ(show("1e20"), "1E+20");
}

TEST(ExpressionLiterals, NaNAndInfinity) {
  EXPECT_EQ(show("NaN"), "NaN");
  EXPECT_EQ(show("Infinity"), "Infinity");
  EXPECT_EQ(show("-Infinity"), "-Infinity");
}

TEST(ExpressionLiterals, IntegralNumbersAreIntegers) {
  // So toJSON and display never show "3.0".
  EXPECT_TRUE(eval("3.0").is_number_integer());
  EXPECT_TRUE(eval("1.5").is_number_float());
}

TEST(ExpressionLiterals, Strings) {
  EXPECT_EQ(eval("'hello'"), Value("hello"));
  EXPECT_EQ(eval("''"), Value(""));
  EXPECT_EQ(eval("'it''s'"), Value("it's"));
  EXPECT_EQ(eval("''''"), Value("'"));
  EXPECT_EQ(eval("'a \"b\" ${{ c }}'"), Value("a \"b\" ${{ c }}"));
}

TEST(ExpressionLiterals, InvalidNumberIsAnError) {
  EXPECT_EQ(error_text("1.2.3"), "invalid number '1.2.3' at offset 0");
  EXPECT_EQ(error_text("1 == 12abc"), "invalid number '12abc' at offset 5");
  EXPECT_EQ(error_text("-"), "invalid number '-' at offset 0");
}

TEST(ExpressionLiterals, UnterminatedString) {
  EXPECT_EQ(error_text("'abc"), "unterminated string literal at offset 0");
  EXPECT_EQ(error_text("1 == 'it''s"), "unterminated string literal at offset 5");
}

TEST(ExpressionLiterals, DoubleQuotesAreNotStrings) {
  EXPECT_EQ(error_text("\"abc\""), "unexpected token '\"abc\"' at offset 0");
}

// ---- Contexts and property access ----

TEST(ExpressionContexts, WholeContext) {
  EXPECT_EQ(eval("runner"), Value::parse(R"({"os": "Linux"})"));
}

TEST(ExpressionContexts, DotAccess) {
  EXPECT_EQ(eval("github.event_name"), Value("push"));
  EXPECT_EQ(eval("github.event.commits"), sample_context().contexts["github"]["event"]["commits"]);
}

TEST(ExpressionContexts, BracketAccess) {
  EXPECT_EQ(eval("github['event_name']"), Value("push"));
  EXPECT_EQ(eval("github.event.commits[1].message"), Value("second"));
  EXPECT_EQ(eval("github.event.commits[0]['message']"), Value("first"));
  EXPECT_EQ(eval("steps['my-step'].outputs.path"), Value("/tmp/out"));
}

TEST(ExpressionContexts, ComputedIndex) {
  EXPECT_EQ(eval("github.event.labels[matrix.node == 18]"), Value("Help Wanted"));  // true -> 1
  EXPECT_EQ(eval("github.event.labels['1']"), Value("Help Wanted"));
  EXPECT_EQ(eval("github.event.labels[1.9]"), Value("Help Wanted"));  // floored
  EXPECT_EQ(eval("github[format('event{0}', '_name')]"), Value("push"));
}

TEST(ExpressionContexts, HyphenatedNames) {
  EXPECT_EQ(eval("steps.my-step.conclusion"), Value("success"));
  EXPECT_EQ(eval("strategy.fail-fast"), Value(true));
}

TEST(ExpressionContexts, CaseInsensitiveNames) {
  EXPECT_EQ(eval("GitHub.Event_Name"), Value("push"));
  EXPECT_EQ(eval("env.mixed_case"), Value("yes"));
  EXPECT_EQ(eval("env.FOO"), Value("bar"));
}

TEST(ExpressionContexts, MissingValuesAreNull) {
  EXPECT_TRUE(eval("github.nope").is_null());
  EXPECT_TRUE(eval("github.nope.deeper.still").is_null());
  EXPECT_TRUE(eval("github.event.pull_request.number").is_null());
  EXPECT_TRUE(eval("github.event.commits[5]").is_null());
  EXPECT_TRUE(eval("github.event.commits[-1]").is_null());
  EXPECT_TRUE(eval("github.event_name.length").is_null());  // property of a string
  EXPECT_TRUE(eval("matrix.node[0]").is_null());
}

TEST(ExpressionContexts, DeclaredButAbsentContextIsNull) {
  EvalContext empty;
  EXPECT_TRUE(eval("github", empty).is_null());
  EXPECT_TRUE(eval("secrets.TOKEN", empty).is_null());
}

TEST(ExpressionContexts, AllKnownContextsParse) {
  for (const char* name : {"github", "env", "vars", "matrix", "needs", "steps", "secrets", "inputs",
                           "job", "runner", "strategy"}) {
    EXPECT_TRUE(parse_expression(name).has_value()) << name;
  }
}

TEST(ExpressionContexts, UnknownContextIsAParseError) {
  EXPECT_EQ(error_text("foo.bar"), "unknown context 'foo' at offset 0");
  EXPECT_EQ(error_text("true && bogus"), "unknown context 'bogus' at offset 8");
}

TEST(ExpressionContexts, UnknownContextSuggestsNearMiss) {
  EXPECT_EQ(error_text("gihub.sha"), "unknown context 'gihub' (did you mean 'github'?) at offset 0");
  EXPECT_EQ(error_of("matirx.os").message, "unknown context 'matirx' (did you mean 'matrix'?)");
  EXPECT_EQ(error_of("secret.X").message, "unknown context 'secret' (did you mean 'secrets'?)");
  EXPECT_EQ(error_of("joob.x").message, "unknown context 'joob' (did you mean 'job'?)");
  // Too far from everything: no suggestion.
  EXPECT_EQ(error_of("foo").message, "unknown context 'foo'");
}

TEST(ExpressionContexts, StatusFunctionWithoutParentheses) {
  EXPECT_EQ(error_of("success").message, "unknown context 'success' (did you mean 'success()'?)");
}

TEST(ExpressionContexts, PropertyNamesMayBeKeywords) {
  EvalContext ctx;
  ctx.contexts["inputs"] = Value::parse(R"({"true": 1, "null": 2})");
  EXPECT_EQ(eval("inputs.true", ctx), Value(1));
  EXPECT_EQ(eval("inputs.null", ctx), Value(2));
}

TEST(ExpressionContexts, NoPropertyAccessOnLiterals) {
  EXPECT_EQ(error_text("'abc'.length"), "unexpected token '.' at offset 5");
  EXPECT_EQ(error_text("1[0]"), "unexpected token '[' at offset 1");
}

TEST(ExpressionContexts, AccessOnCallAndGroupResults) {
  EXPECT_EQ(eval("fromJSON('{\"a\": {\"b\": 5}}').a.b"), Value(5));
  EXPECT_EQ(eval("(github.event).commits[0].id"), Value(1));
  EXPECT_EQ(eval("fromJSON('[10, 20]')[1]"), Value(20));
}

TEST(ExpressionContexts, BadPropertySyntax) {
  EXPECT_EQ(error_text("github."), "unexpected end of expression at offset 7");
  EXPECT_EQ(error_text("github.'x'"), "unexpected token ''x'' at offset 7");
  EXPECT_EQ(error_text("github[0"), "unexpected end of expression at offset 8");
  EXPECT_EQ(error_text("github[]"), "unexpected token ']' at offset 7");
}

// ---- Object filters ----

TEST(ExpressionFilters, ObjectFilter) {
  EXPECT_EQ(eval("needs.*.result"), Value::parse(R"(["success", "failure"])"));
}

TEST(ExpressionFilters, ArrayFilter) {
  // Elements without the property (and non-objects) are left out.
  EXPECT_EQ(eval("matrix.include.*.os"), Value::parse(R"(["linux", "macos"])"));
  EXPECT_EQ(eval("matrix.include.*.arch"), Value::parse(R"(["x64"])"));
  EXPECT_EQ(eval("github.event.commits[*].message"), Value::parse(R"(["first", "second"])"));
}

TEST(ExpressionFilters, NestedFilters) {
  EXPECT_EQ(eval("needs.*.outputs.*"), Value::parse(R"(["1.2.3"])"));
  EXPECT_EQ(eval("needs.*.outputs.version"), Value::parse(R"(["1.2.3"])"));
}

TEST(ExpressionFilters, FilterOnWholeObjectAndScalar) {
  EXPECT_EQ(eval("runner.*"), Value::parse(R"(["Linux"])"));
  EXPECT_EQ(eval("github.event_name.*"), Value::array());
  EXPECT_EQ(eval("github.nope.*"), Value::array());
}

TEST(ExpressionFilters, FilterWithIndex) {
  EXPECT_EQ(eval("github.event.commits.*['id']"), Value::parse("[1, 2]"));
  EXPECT_EQ(eval("fromJSON('[[1,2],[3]]').*[0]"), Value::parse("[1, 3]"));
}

TEST(ExpressionFilters, FilterResultsWorkWithFunctions) {
  EXPECT_EQ(eval("contains(needs.*.result, 'failure')"), Value(true));
  EXPECT_EQ(eval("contains(needs.*.result, 'cancelled')"), Value(false));
  EXPECT_EQ(eval("join(matrix.include.*.os, ' ')"), Value("linux macos"));
  EXPECT_TRUE(is_truthy(eval("github.nope.*")));  // an empty array is still truthy
}

TEST(ExpressionFilters, WildcardOnlyAfterDotOrBracket) {
  EXPECT_EQ(error_text("*"), "unexpected token '*' at offset 0");
  EXPECT_EQ(error_text("needs[*"), "unexpected token '*' at offset 6");
}

// ---- Operators ----

TEST(ExpressionOperators, Not) {
  EXPECT_EQ(eval("!true"), Value(false));
  EXPECT_EQ(eval("!0"), Value(true));
  EXPECT_EQ(eval("!''"), Value(true));
  EXPECT_EQ(eval("!'a'"), Value(false));
  EXPECT_EQ(eval("!!env.FOO"), Value(true));
  EXPECT_EQ(eval("!github"), Value(false));
}

TEST(ExpressionOperators, StringEqualityIsCaseInsensitive) {
  EXPECT_EQ(eval("'ABC' == 'abc'"), Value(true));
  EXPECT_EQ(eval("github.ref == 'REFS/heads/MAIN'"), Value(true));
  EXPECT_EQ(eval("'abc' != 'abd'"), Value(true));
  EXPECT_EQ(eval("'abc' == 'abc '"), Value(false));
}

TEST(ExpressionOperators, LooseEqualityCoercesToNumber) {
  EXPECT_EQ(eval("null == 0"), Value(true));
  EXPECT_EQ(eval("null == ''"), Value(true));     // 0 == 0
  EXPECT_EQ(eval("null == false"), Value(true));  // both 0
  EXPECT_EQ(eval("true == 1"), Value(true));
  EXPECT_EQ(eval("true == '1'"), Value(true));
  EXPECT_EQ(eval("false == '0'"), Value(true));
  EXPECT_EQ(eval("'42' == 42"), Value(true));
  EXPECT_EQ(eval("' 42 ' == 42"), Value(true));  // whitespace trimmed
  EXPECT_EQ(eval("'0x10' == 16"), Value(true));
  EXPECT_EQ(eval("'' == 0"), Value(true));
  EXPECT_EQ(eval("'abc' == 0"), Value(false));  // NaN
  EXPECT_EQ(eval("'true' == true"), Value(false));  // 'true' -> NaN
  EXPECT_EQ(eval("matrix.node == '18'"), Value(true));
  EXPECT_EQ(eval("env.ZERO == false"), Value(true));
}

TEST(ExpressionOperators, NullEqualsOnlyNullAndZeroish) {
  EXPECT_EQ(eval("null == null"), Value(true));
  EXPECT_EQ(eval("github.nope == null"), Value(true));
  EXPECT_EQ(eval("github.event.pull_request == null"), Value(true));
  EXPECT_EQ(eval("'x' == null"), Value(false));
  EXPECT_EQ(eval("github == null"), Value(false));  // object vs number
}

TEST(ExpressionOperators, NaNIsNeverEqual) {
  EXPECT_EQ(eval("NaN == NaN"), Value(false));
  EXPECT_EQ(eval("NaN != NaN"), Value(true));
  EXPECT_EQ(eval("NaN < 1"), Value(false));
  EXPECT_EQ(eval("NaN >= 1"), Value(false));
}

TEST(ExpressionOperators, ObjectsCompareByIdentity) {
  EXPECT_EQ(eval("github.event == github.event"), Value(true));
  EXPECT_EQ(eval("github.event == github"), Value(false));
  EXPECT_EQ(eval("fromJSON('{}') == fromJSON('{}')"), Value(false));
  EXPECT_EQ(eval("github == 'Object'"), Value(false));
}

TEST(ExpressionOperators, Ordering) {
  EXPECT_EQ(eval("1 < 2"), Value(true));
  EXPECT_EQ(eval("2 <= 2"), Value(true));
  EXPECT_EQ(eval("3 > 2.5"), Value(true));
  EXPECT_EQ(eval("2 >= 3"), Value(false));
  EXPECT_EQ(eval("'10' > 9"), Value(true));  // numeric after coercion
  EXPECT_EQ(eval("'b' > 'A'"), Value(true));  // case-insensitive
  EXPECT_EQ(eval("'abc' < 'ABD'"), Value(true));
  EXPECT_EQ(eval("'B' <= 'b'"), Value(true));
  EXPECT_EQ(eval("false < true"), Value(true));
  EXPECT_EQ(eval("null < 1"), Value(true));
  EXPECT_EQ(eval("github < github"), Value(false));
}

TEST(ExpressionOperators, AndOrReturnOperands) {
  EXPECT_EQ(eval("'a' && 'b'"), Value("b"));
  EXPECT_EQ(eval("'' && 'b'"), Value(""));
  EXPECT_EQ(eval("0 || 'fallback'"), Value("fallback"));
  EXPECT_EQ(eval("env.FOO || 'default'"), Value("bar"));
  EXPECT_EQ(eval("env.MISSING || 'default'"), Value("default"));
  EXPECT_TRUE(eval("null && true").is_null());
  EXPECT_EQ(eval("false || 0"), Value(0));
  EXPECT_EQ(eval("matrix.node == 18 && 'yes' || 'no'"), Value("yes"));
  EXPECT_EQ(eval("matrix.node == 20 && 'yes' || 'no'"), Value("no"));
}

TEST(ExpressionOperators, AndOrShortCircuit) {
  // The right side would fail (invalid JSON) if it were evaluated.
  EXPECT_EQ(eval("false && fromJSON('{')"), Value(false));
  EXPECT_EQ(eval("true || fromJSON('{')"), Value(true));
  EXPECT_EQ(error_of("true && fromJSON('{')").offset, 8u);
}

TEST(ExpressionOperators, Precedence) {
  // && binds tighter than ||.
  EXPECT_EQ(eval("true || false && false"), Value(true));
  EXPECT_EQ(eval("(true || false) && false"), Value(false));
  // Comparison binds tighter than equality, ! tighter than both.
  EXPECT_EQ(eval("1 < 2 == true"), Value(true));
  EXPECT_EQ(eval("true == 1 < 2"), Value(true));
  EXPECT_EQ(eval("!false == true"), Value(true));
  EXPECT_EQ(eval("!(1 == 1)"), Value(false));
}

TEST(ExpressionOperators, ChainedComparisonsGoLeftToRight) {
  EXPECT_EQ(eval("1 == 1 == true"), Value(true));  // (1 == 1) == true
  EXPECT_EQ(eval("3 > 2 > 1"), Value(false));      // true > 1 -> 1 > 1
}

TEST(ExpressionOperators, WhitespaceIsFree) {
  EXPECT_EQ(eval("  github . event_name=='push'&&( matrix.node>=18 )  "), Value(true));
  EXPECT_EQ(eval("\tcontains ( 'abc' , 'B' )\n"), Value(true));
}

TEST(ExpressionOperators, SingleCharacterOperatorsSuggestDoubled) {
  EXPECT_EQ(error_text("1 = 1"), "unexpected token '=' (did you mean '=='?) at offset 2");
  EXPECT_EQ(error_text("true & false"), "unexpected token '&' (did you mean '&&'?) at offset 5");
  EXPECT_EQ(error_text("true | false"), "unexpected token '|' (did you mean '||'?) at offset 5");
}

// ---- Syntax errors ----

TEST(ExpressionSyntax, UnexpectedClosingParenthesis) {
  EXPECT_EQ(error_text("(1 == 1))"), "unexpected token ')' at offset 8");
  EXPECT_EQ(error_text("success())"), "unexpected token ')' at offset 9");
  EXPECT_EQ(error_text("github.sha)"), "unexpected token ')' at offset 10");
}

TEST(ExpressionSyntax, MissingOperand) {
  EXPECT_EQ(error_text("1 =="), "unexpected end of expression at offset 4");
  EXPECT_EQ(error_text("&& true"), "unexpected token '&&' at offset 0");
  EXPECT_EQ(error_text("true && || false"), "unexpected token '||' at offset 8");
  EXPECT_EQ(error_text("()"), "unexpected token ')' at offset 1");
}

TEST(ExpressionSyntax, MissingOperator) {
  EXPECT_EQ(error_text("true false"), "unexpected token 'false' at offset 5");
  EXPECT_EQ(error_text("github.sha 'x'"), "unexpected token ''x'' at offset 11");
}

TEST(ExpressionSyntax, UnclosedGroup) {
  EXPECT_EQ(error_text("(true"), "unexpected end of expression at offset 5");
  EXPECT_EQ(error_text("contains('a', 'b'"), "unexpected end of expression at offset 17");
}

TEST(ExpressionSyntax, EmptyExpression) {
  EXPECT_EQ(error_text(""), "expected an expression at offset 0");
  EXPECT_EQ(error_text("   "), "expected an expression at offset 0");
}

TEST(ExpressionSyntax, StrayCharacters) {
  EXPECT_EQ(error_text("github.sha # comment"), "unexpected token '#' at offset 11");
  EXPECT_EQ(error_text("env.A$"), "unexpected token 'A$' at offset 4");
}

TEST(ExpressionSyntax, LongTokensAreShortenedInMessages) {
  std::string text = "1 == 1 '" + std::string(100, 'x') + "'";
  EXPECT_EQ(error_of(text).message, "unexpected token ''" + std::string(31, 'x') + "...'");
}

// ---- Functions ----

TEST(ExpressionFunctions, NamesAreCaseInsensitive) {
  EXPECT_EQ(eval("CONTAINS('abc', 'b')"), Value(true));
  EXPECT_EQ(eval("tojson(1)"), Value("1"));
  EXPECT_EQ(eval("FromJson('2')"), Value(2));
  EXPECT_EQ(eval("Success()"), Value(true));
}

TEST(ExpressionFunctions, UnknownFunction) {
  EXPECT_EQ(error_text("foo()"), "unknown function 'foo' at offset 0");
  EXPECT_EQ(error_text("true && startWith('a', 'b')"),
            "unknown function 'startWith' (did you mean 'startsWith'?) at offset 8");
  EXPECT_EQ(error_of("tojsn(1)").message, "unknown function 'tojsn' (did you mean 'toJSON'?)");
  EXPECT_EQ(error_of("github()").message, "unknown function 'github'");
}

TEST(ExpressionFunctions, WrongArityIsAParseError) {
  EXPECT_EQ(error_text("contains('a')"), "contains() takes 2 arguments, got 1 at offset 0");
  EXPECT_EQ(error_of("startsWith('a', 'b', 'c')").message, "startsWith() takes 2 arguments, got 3");
  EXPECT_EQ(error_of("success(1)").message, "success() takes no arguments, got 1");
  EXPECT_EQ(error_of("join()").message, "join() takes 1 to 2 arguments, got 0");
  EXPECT_EQ(error_of("format()").message, "format() takes at least 1 argument, got 0");
  EXPECT_EQ(error_of("hashFiles()").message, "hashFiles() takes at least 1 argument, got 0");
  EXPECT_EQ(error_of("toJSON(1, 2)").message, "toJSON() takes 1 argument, got 2");
  // An arity error is found without evaluating (an unknown context later still parses first).
  EXPECT_EQ(error_of("always(1) && fromJSON('{')").offset, 0u);
}

TEST(ExpressionFunctions, ArgumentSyntax) {
  EXPECT_EQ(error_text("contains('a',)"), "unexpected token ')' at offset 13");
  EXPECT_EQ(error_text("contains(,'a')"), "unexpected token ',' at offset 9");
  EXPECT_EQ(error_text("contains('a' 'b')"), "unexpected token ''b'' at offset 13");
}

TEST(ExpressionFunctions, ContainsOnStrings) {
  EXPECT_EQ(eval("contains('Hello World', 'WORLD')"), Value(true));
  EXPECT_EQ(eval("contains('abc', 'd')"), Value(false));
  EXPECT_EQ(eval("contains('abc', '')"), Value(true));
  EXPECT_EQ(eval("contains(github.ref, 'heads')"), Value(true));
  EXPECT_EQ(eval("contains(12345, 34)"), Value(true));  // primitives as strings
  EXPECT_EQ(eval("contains('true story', true)"), Value(true));
  EXPECT_EQ(eval("contains(github, 'push')"), Value(false));  // objects never contain
}

TEST(ExpressionFunctions, ContainsOnArrays) {
  EXPECT_EQ(eval("contains(github.event.labels, 'bug')"), Value(true));
  EXPECT_EQ(eval("contains(github.event.labels, 'help wanted')"), Value(true));  // loose ==
  EXPECT_EQ(eval("contains(github.event.labels, 'help')"), Value(false));  // whole elements
  EXPECT_EQ(eval("contains(fromJSON('[1, 2, 3]'), '2')"), Value(true));
  EXPECT_EQ(eval("contains(fromJSON('[]'), 1)"), Value(false));
  EXPECT_EQ(eval("contains(fromJSON('[\"push\", \"pull_request\"]'), github.event_name)"), Value(true));
}

TEST(ExpressionFunctions, StartsWithAndEndsWith) {
  EXPECT_EQ(eval("startsWith(github.ref, 'REFS/HEADS/')"), Value(true));
  EXPECT_EQ(eval("startsWith('abc', 'bc')"), Value(false));
  EXPECT_EQ(eval("endsWith(github.ref, '/Main')"), Value(true));
  EXPECT_EQ(eval("endsWith('abc', 'ab')"), Value(false));
  EXPECT_EQ(eval("startsWith('abc', '')"), Value(true));
  EXPECT_EQ(eval("endsWith('a', 'abc')"), Value(false));
  EXPECT_EQ(eval("startsWith(123, 12)"), Value(true));
  EXPECT_EQ(eval("startsWith(github, '')"), Value(false));  // non-primitive -> false
}

TEST(ExpressionFunctions, Format) {
  EXPECT_EQ(eval("format('Hello {0} {1} {0}', 'Mona', 'the Octocat')"), Value("Hello Mona the Octocat Mona"));
  EXPECT_EQ(eval("format('{{0}} is {0}', 1)"), Value("{0} is 1"));
  EXPECT_EQ(eval("format('{{{0}}}', 'x')"), Value("{x}"));
  EXPECT_EQ(eval("format('no placeholders')"), Value("no placeholders"));
  EXPECT_EQ(eval("format('{0}|{1}|{2}|{3}', null, true, 1.5, matrix.node)"), Value("|true|1.5|18"));
}

TEST(ExpressionFunctions, FormatErrors) {
  EXPECT_EQ(error_text("format('{1}', 'a')"),
            "format(): '{1}' refers to argument 1 but only 1 were given at offset 0");
  EXPECT_EQ(error_of("format('{0}')").message, "format(): '{0}' refers to argument 0 but only 0 were given");
  EXPECT_EQ(error_of("format('{', 1)").message, "format(): invalid format string '{'");
  EXPECT_EQ(error_of("format('a}b', 1)").message, "format(): invalid format string 'a}b'");
  EXPECT_EQ(error_of("format('{x}', 1)").message, "format(): invalid format string '{x}'");
  EXPECT_EQ(error_of("format('{}', 1)").message, "format(): invalid format string '{}'");
  EXPECT_EQ(error_of("format('{99999999999999999999999}', 1)").offset, 0u);
  EXPECT_EQ(error_of("true && format('{', 1)").offset, 8u);
}

TEST(ExpressionFunctions, Join) {
  EXPECT_EQ(eval("join(github.event.labels)"), Value("bug,Help Wanted"));
  EXPECT_EQ(eval("join(github.event.labels, ', ')"), Value("bug, Help Wanted"));
  EXPECT_EQ(eval("join(fromJSON('[1, true, null, \"x\"]'), '-')"), Value("1-true--x"));
  EXPECT_EQ(eval("join('single')"), Value("single"));  // primitives pass through
  EXPECT_EQ(eval("join(fromJSON('[]'))"), Value(""));
  EXPECT_EQ(eval("join(github)"), Value(""));  // objects join to nothing
}

TEST(ExpressionFunctions, ToJsonIsPrettyWithTwoSpaces) {
  EXPECT_EQ(eval("toJSON(runner)"), Value("{\n  \"os\": \"Linux\"\n}"));
  EXPECT_EQ(eval("toJSON(needs.*.result)"), Value("[\n  \"success\",\n  \"failure\"\n]"));
  EXPECT_EQ(eval("toJSON('a\"b')"), Value("\"a\\\"b\""));
  EXPECT_EQ(eval("toJSON(null)"), Value("null"));
  EXPECT_EQ(eval("toJSON(1.0)"), Value("1"));
  EXPECT_EQ(eval("toJSON(fromJSON('{\"a\": 2.0, \"b\": [0.5]}'))"),
            Value("{\n  \"a\": 2,\n  \"b\": [\n    0.5\n  ]\n}"));
  EXPECT_EQ(eval("toJSON(fromJSON('{}'))"), Value("{}"));
}

TEST(ExpressionFunctions, FromJson) {
  EXPECT_EQ(eval("fromJSON('{\"a\": [1, 2]}').a[1]"), Value(2));
  EXPECT_EQ(eval("fromJSON('true')"), Value(true));
  EXPECT_EQ(eval("fromJSON('\"s\"')"), Value("s"));
  EXPECT_TRUE(eval("fromJSON('null')").is_null());
  EXPECT_EQ(eval("fromJSON(inputs.count) == 3"), Value(true));
  EXPECT_EQ(eval("fromJSON(toJSON(github.event)).commits[1].id"), Value(2));
}

TEST(ExpressionFunctions, FromJsonRejectsInvalidJson) {
  ExpressionError e = error_of("fromJSON('{\"a\": }')");
  EXPECT_EQ(e.offset, 0u);
  EXPECT_TRUE(e.message.starts_with("fromJSON(): invalid JSON: ")) << e.message;
  EXPECT_TRUE(error_of("fromJSON('')").message.starts_with("fromJSON(): invalid JSON")) << error_of("fromJSON('')").message;
  EXPECT_EQ(error_of("1 == fromJSON('nope')").offset, 5u);
}

TEST(ExpressionFunctions, StatusFunctions) {
  EvalContext ok;
  EXPECT_EQ(eval("success()", ok), Value(true));
  EXPECT_EQ(eval("failure()", ok), Value(false));
  EXPECT_EQ(eval("always()", ok), Value(true));
  EXPECT_EQ(eval("cancelled()", ok), Value(false));

  EvalContext failed;
  failed.status.any_failed = true;
  EXPECT_EQ(eval("success()", failed), Value(false));
  EXPECT_EQ(eval("failure()", failed), Value(true));
  EXPECT_EQ(eval("always()", failed), Value(true));

  EvalContext cancelled;
  cancelled.status.cancelled = true;
  cancelled.status.any_failed = true;
  EXPECT_EQ(eval("success()", cancelled), Value(false));
  EXPECT_EQ(eval("failure()", cancelled), Value(false));
  EXPECT_EQ(eval("cancelled()", cancelled), Value(true));
}

TEST(ExpressionFunctions, UsesStatusFunction) {
  EXPECT_FALSE((*parse_expression("github.ref == 'x'"))->uses_status_function());
  EXPECT_TRUE((*parse_expression("failure()"))->uses_status_function());
  EXPECT_TRUE((*parse_expression("github.ref == 'x' && ALWAYS()"))->uses_status_function());
  EXPECT_TRUE((*parse_expression("!cancelled()"))->uses_status_function());
  EXPECT_FALSE((*parse_expression("contains('success()', 'x')"))->uses_status_function());
}

TEST(ExpressionFunctions, HashFilesDelegates) {
  EvalContext ctx;
  std::vector<std::string> seen;
  ctx.hash_files = [&](const std::vector<std::string>& patterns) -> std::expected<std::string, std::string> {
    seen = patterns;
    return "abc123";
  };
  EXPECT_EQ(eval("hashFiles('**/package-lock.json', '!x', 3)", ctx), Value("abc123"));
  EXPECT_EQ(seen, (std::vector<std::string>{"**/package-lock.json", "!x", "3"}));
}

TEST(ExpressionFunctions, HashFilesErrors) {
  EvalContext none;
  EXPECT_EQ(error_of("true && hashFiles('x')", none).to_string(), "hashFiles() is not available here at offset 8");
  EvalContext failing;
  failing.hash_files = [](const std::vector<std::string>&) -> std::expected<std::string, std::string> {
    return std::unexpected("pattern escapes the workspace");
  };
  EXPECT_EQ(error_of("hashFiles('../x')", failing).message, "hashFiles(): pattern escapes the workspace");
}

// ---- Truthiness and display ----

TEST(ExpressionValues, Truthiness) {
  EXPECT_FALSE(is_truthy(Value(false)));
  EXPECT_FALSE(is_truthy(Value(0)));
  EXPECT_FALSE(is_truthy(Value(-0.0)));
  EXPECT_FALSE(is_truthy(Value(std::nan(""))));
  EXPECT_FALSE(is_truthy(Value("")));
  EXPECT_FALSE(is_truthy(Value(nullptr)));
  EXPECT_TRUE(is_truthy(Value(true)));
  EXPECT_TRUE(is_truthy(Value(-1)));
  EXPECT_TRUE(is_truthy(Value(0.1)));
  EXPECT_TRUE(is_truthy(Value("false")));  // a non-empty string
  EXPECT_TRUE(is_truthy(Value("0")));
  EXPECT_TRUE(is_truthy(Value::array()));
  EXPECT_TRUE(is_truthy(Value::object()));
}

TEST(ExpressionValues, DisplayStrings) {
  EXPECT_EQ(to_display_string(Value(nullptr)), "");
  EXPECT_EQ(to_display_string(Value(true)), "true");
  EXPECT_EQ(to_display_string(Value(false)), "false");
  EXPECT_EQ(to_display_string(Value("text")), "text");
  EXPECT_EQ(to_display_string(Value(3)), "3");
  EXPECT_EQ(to_display_string(Value(3.0)), "3");
  EXPECT_EQ(to_display_string(Value(-2.5)), "-2.5");
  EXPECT_EQ(to_display_string(Value(0.1 + 0.2)), "0.3");  // 15 significant digits
  EXPECT_EQ(to_display_string(Value(1.0 / 3.0)), "0.333333333333333");
  EXPECT_EQ(to_display_string(Value(123456789012345678.0)), "1.23456789012346E+17");
  EXPECT_EQ(to_display_string(Value(0.00001)), "1E-05");
  EXPECT_EQ(to_display_string(Value(std::nan(""))), "NaN");
  EXPECT_EQ(to_display_string(Value(-HUGE_VAL)), "-Infinity");
  EXPECT_EQ(to_display_string(Value::parse(R"({"a":[1,2.0]})")), R"({"a":[1,2]})");
}

TEST(ExpressionValues, DisplayOfInvalidUtf8DoesNotThrow) {
  Value v = Value::array({std::string("\xff\xfe")});
  EXPECT_EQ(to_display_string(v), "[\"\xEF\xBF\xBD\xEF\xBF\xBD\"]");
}

// ---- Conditions ----

TEST(ExpressionConditions, EmptyMeansSuccess) {
  EvalContext ok, failed;
  failed.status.any_failed = true;
  EXPECT_EQ(evaluate_condition("", ok), true);
  EXPECT_EQ(evaluate_condition("  ", ok), true);
  EXPECT_EQ(evaluate_condition("", failed), false);
  EXPECT_EQ(evaluate_condition("${{ }}", failed), false);
}

TEST(ExpressionConditions, BareAndWrapped) {
  auto ctx = sample_context();
  EXPECT_EQ(evaluate_condition("github.event_name == 'push'", ctx), true);
  EXPECT_EQ(evaluate_condition("${{ github.event_name == 'push' }}", ctx), true);
  EXPECT_EQ(evaluate_condition("  ${{github.event_name != 'push'}}  ", ctx), false);
  EXPECT_EQ(evaluate_condition("env.FOO", ctx), true);  // truthy string
  EXPECT_EQ(evaluate_condition("env.EMPTY", ctx), false);
  EXPECT_EQ(evaluate_condition("${{ contains('}}', '}') }}", ctx), true);
}

TEST(ExpressionConditions, ImplicitSuccess) {
  auto ctx = sample_context();
  ctx.status.any_failed = true;
  EXPECT_EQ(evaluate_condition("true", ctx), false);
  EXPECT_EQ(evaluate_condition("always()", ctx), true);
  EXPECT_EQ(evaluate_condition("failure() && github.event_name == 'push'", ctx), true);
  EXPECT_EQ(evaluate_condition("${{ !cancelled() }}", ctx), true);
  // Not evaluated at all once success() is false, so its error does not surface.
  EXPECT_EQ(evaluate_condition("fromJSON('{')", ctx), false);
  ctx.status = {};
  ctx.status.cancelled = true;
  EXPECT_EQ(evaluate_condition("true", ctx), false);
  EXPECT_EQ(evaluate_condition("cancelled()", ctx), true);
}

TEST(ExpressionConditions, ErrorOffsetsPointIntoTheCondition) {
  auto ctx = sample_context();
  auto bare = evaluate_condition("github.sha ==", ctx);
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().to_string(), "unexpected end of expression at offset 13");
  auto wrapped = evaluate_condition("  ${{ gihub.sha }}", ctx);
  ASSERT_FALSE(wrapped);
  EXPECT_EQ(wrapped.error().to_string(), "unknown context 'gihub' (did you mean 'github'?) at offset 6");
  auto runtime = evaluate_condition("${{ fromJSON('x') }}", ctx);
  ASSERT_FALSE(runtime);
  EXPECT_EQ(runtime.error().offset, 4u);
}

TEST(ExpressionConditions, WrapperErrors) {
  auto ctx = sample_context();
  auto open = evaluate_condition("${{ true", ctx);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().to_string(), "unterminated '${{' (no matching '}}') at offset 0");
  auto mixed = evaluate_condition("${{ true }} && false", ctx);
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().offset, 11u);
}

TEST(ExpressionConditions, CheckConditionMatchesEvaluation) {
  EXPECT_FALSE(check_condition(""));
  EXPECT_FALSE(check_condition("${{ }}"));
  EXPECT_FALSE(check_condition("github.ref == 'x' && failure()"));
  EXPECT_FALSE(check_condition(" ${{ contains('}}', '}') }} "));
  auto bad = check_condition("  ${{ gihub.sha }}");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->to_string(), "unknown context 'gihub' (did you mean 'github'?) at offset 6");
  auto mixed = check_condition("${{ true }} && false");
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->offset, 11u);
  auto open = check_condition("${{ true");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->offset, 0u);
  // Runtime errors are not its business.
  EXPECT_FALSE(check_condition("fromJSON('{')"));
}

// ---- Interpolation ----

TEST(ExpressionInterpolation, ReplacesEachExpression) {
  auto ctx = sample_context();
  EXPECT_EQ(interpolate("event=${{ github.event_name }} node=${{matrix.node}}!", ctx),
            "event=push node=18!");
  EXPECT_EQ(interpolate("${{ env.FOO }}${{ env.FOO }}", ctx), "barbar");
  EXPECT_EQ(interpolate("[${{ github.nope }}]", ctx), "[]");
  EXPECT_EQ(interpolate("${{ matrix.ratio }} ${{ 1 == 1 }}", ctx), "0.5 true");
}

TEST(ExpressionInterpolation, TextOutsideIsUnchanged) {
  auto ctx = sample_context();
  EXPECT_EQ(interpolate("no expressions: $ {{ }} ${ {x}} }}", ctx), "no expressions: $ {{ }} ${ {x}} }}");
  EXPECT_EQ(interpolate("", ctx), "");
  EXPECT_EQ(interpolate("line1\n${{ 'a' }}\nline3", ctx), "line1\na\nline3");
  EXPECT_EQ(interpolate("${{ format('{0}}}', 'x') }}", ctx), "x}");
}

TEST(ExpressionInterpolation, ObjectsBecomeJson) {
  auto ctx = sample_context();
  EXPECT_EQ(interpolate("${{ runner }}", ctx), R"({"os":"Linux"})");
}

TEST(ExpressionInterpolation, Errors) {
  auto ctx = sample_context();
  auto open = interpolate("echo ${{ github.sha", ctx);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().to_string(), "unterminated '${{' (no matching '}}') at offset 5");
  auto parse = interpolate("a ${{ 1 }} b ${{ nope }}", ctx);
  ASSERT_FALSE(parse);
  EXPECT_EQ(parse.error().to_string(), "unknown context 'nope' at offset 17");
  auto runtime = interpolate("x${{ fromJSON('{') }}", ctx);
  ASSERT_FALSE(runtime);
  EXPECT_EQ(runtime.error().offset, 5u);
  auto empty = interpolate("${{ }}", ctx);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().to_string(), "expected an expression at offset 3");
}

TEST(ExpressionInterpolation, CheckReportsEveryError) {
  auto errors = check_interpolation("${{ gihub.sha }} ok ${{ 1 == }} ${{ github.sha }} ${{ x");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].to_string(), "unknown context 'gihub' (did you mean 'github'?) at offset 4");
  EXPECT_EQ(errors[1].to_string(), "unexpected end of expression at offset 29");
  EXPECT_EQ(errors[2].to_string(), "unterminated '${{' (no matching '}}') at offset 50");
  EXPECT_TRUE(check_interpolation("plain ${{ github.sha }} text").empty());
  // Runtime failures are not parse errors.
  EXPECT_TRUE(check_interpolation("${{ fromJSON('{') }}").empty());
}

// ---- Hostile input ----

TEST(ExpressionLimits, TooLong) {
  std::string text(kMaxExpressionLength + 1, ' ');
  text[0] = '1';
  auto e = error_of(text);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_EQ(e.message, "expression too long (65537 bytes, limit 65536)");
  // At the limit it is fine.
  EXPECT_EQ(eval(std::string_view(text).substr(0, kMaxExpressionLength)), Value(1));
}

TEST(ExpressionLimits, DeepParentheses) {
  // The whole expression is the first level.
  std::string ok = std::string(kMaxExpressionDepth - 1, '(') + "1" + std::string(kMaxExpressionDepth - 1, ')');
  EXPECT_EQ(eval(ok), Value(1));
  std::size_t n = 30000;
  std::string deep = std::string(n, '(') + "1" + std::string(n, ')');
  EXPECT_EQ(error_text(deep), "expression nested too deeply (limit 256 levels) at offset 256");
}

TEST(ExpressionLimits, LongRunsOfNot) {
  // A run of '!' is one node, so it needs no depth at all.
  EXPECT_EQ(eval(std::string(60000, '!') + "true"), Value(true));
  EXPECT_EQ(eval(std::string(60001, '!') + "true"), Value(false));
  EXPECT_EQ(eval("!!'x'"), Value(true));  // a bool, not the operand
}

TEST(ExpressionLimits, DeepCallsAndIndexes) {
  std::string calls;
  for (int i = 0; i < 5000; ++i) calls += "toJSON(";
  calls += "1" + std::string(5000, ')');
  EXPECT_EQ(error_of(calls).offset, 256u * 7);  // the argument of the 256th call
  std::string indexes = "github";
  for (int i = 0; i < 5000; ++i) indexes += "[github";
  indexes += std::string(5000, ']');
  EXPECT_EQ(error_of(indexes).message, "expression nested too deeply (limit 256 levels)");
}

// Runs fn on a thread with a small stack: an overflow crashes the test binary.
void run_on_small_stack(std::size_t bytes, const std::function<void()>& fn) {
#if defined(__SANITIZE_ADDRESS__)
  bytes *= 8;  // sanitizer frames are much larger
#elif !defined(__OPTIMIZE__)
  bytes *= 4;  // so are unoptimized ones
#endif
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, bytes), 0);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, trampoline, const_cast<std::function<void()>*>(&fn)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

std::string nest(const std::string& open, const std::string& middle, const std::string& close, std::size_t n) {
  std::string text;
  for (std::size_t i = 0; i < n; ++i) text += open;
  text += middle;
  for (std::size_t i = 0; i < n; ++i) text += close;
  return text;
}

TEST(ExpressionLimits, DeepestAllowedFitsInASmallStack) {
  // Parsing, evaluating and destroying the deepest accepted expressions of each
  // shape must fit in 256 KiB of stack.
  const std::size_t n = kMaxExpressionDepth - 1;
  const std::vector<std::pair<std::string, Value>> cases = {
      {nest("(", "1", ")", n), Value(1)},
      {nest("fromJSON(", "'1'", ")", n), Value(1)},
      {nest("matrix[", "'os'", "]", n), Value(nullptr)},  // matrix[matrix[..]] is null past 1 level
      {nest("1 || 1 && 1 == 1 < (", "1", ")", n / 5 - 1), Value(1)},  // 5 levels each
      {nest("format('{0}', ", "'x'", ")", n), Value("x")},
  };
  auto ctx = sample_context();
  for (const auto& [text, expected] : cases) {
    std::expected<Value, ExpressionError> result;
    run_on_small_stack(256 * 1024, [&] { result = run(text, ctx); });
    ASSERT_TRUE(result.has_value()) << text.substr(0, 40) << ": " << result.error().to_string();
    EXPECT_EQ(*result, expected) << text.substr(0, 40);
  }
  // One more level is refused, still within the small stack.
  std::expected<Value, ExpressionError> deeper;
  run_on_small_stack(256 * 1024, [&] { deeper = run(nest("toJSON(", "1", ")", n + 1), ctx); });
  ASSERT_FALSE(deeper.has_value());
  EXPECT_EQ(deeper.error().message, "expression nested too deeply (limit 256 levels)");
}

TEST(ExpressionLimits, AmplificationIsCapped) {
  // Each toJSON doubles the backslashes: 2^200 bytes unless capped.
  auto e = error_of(nest("toJSON(", "'\\\"'", ")", 200));
  EXPECT_EQ(e.message, "toJSON(): result longer than 8388608 bytes");
  std::string numbers = "1";
  for (int i = 0; i < 2000; ++i) numbers += ",1";
  std::string many_refs = "format('";
  for (int i = 0; i < 9000; ++i) many_refs += "{0}";
  many_refs += "', format('{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}', join(fromJSON('[" + numbers + "]'), '" +
               std::string(1000, 'x') + "')))";
  EXPECT_EQ(error_of(many_refs).message, "format(): result longer than 8388608 bytes");
  EvalContext ctx;
  ctx.contexts["inputs"] = Value::array();
  for (int i = 0; i < 10000; ++i) ctx.contexts["inputs"].push_back(i);
  EXPECT_EQ(error_of("join(inputs, '" + std::string(1000, '-') + "')", ctx).message,
            "join(): result longer than 8388608 bytes");
  ctx.contexts["inputs"] = std::string(1 << 20, 'a');
  std::string text;
  for (int i = 0; i < 9; ++i) text += "${{ inputs }}";
  auto big = interpolate(text, ctx);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().to_string(), "interpolated text longer than 8388608 bytes at offset 104");
}

TEST(ExpressionLimits, LongFlatChainsAreFine) {
  // Chains are stored flat, so only nesting counts against the limit.
  std::string ors = "false";
  for (int i = 0; i < 5000; ++i) ors += " || false";
  ors += " || 'last'";
  EXPECT_EQ(eval(ors), Value("last"));
  std::string path = "github";
  for (int i = 0; i < 5000; ++i) path += ".x";
  EXPECT_TRUE(eval(path).is_null());
  std::string eqs = "1";
  for (int i = 0; i < 5000; ++i) eqs += " == 1";
  EXPECT_EQ(eval(eqs), Value(true));
}

TEST(ExpressionLimits, DeepJson) {
  std::string deep = std::string(20000, '[') + std::string(20000, ']');
  auto e = error_of("fromJSON('" + deep + "')");
  EXPECT_EQ(e.message, "fromJSON(): JSON nested deeper than 512 levels");
  // A deep value from outside (a context) cannot be printed recursively either.
  EvalContext ctx;
  Value v = Value::array();
  for (int i = 0; i < 20000; ++i) v = Value::array({std::move(v)});
  ctx.contexts["inputs"] = std::move(v);
  EXPECT_EQ(error_of("toJSON(inputs)", ctx).message, "toJSON(): value nested deeper than 512 levels");
  EXPECT_EQ(to_display_string(ctx.contexts["inputs"]), "Array");
}

TEST(ExpressionLimits, GarbageNeverCrashes) {
  // A cheap deterministic fuzz: every result must be a value or an error.
  const std::string alphabet = "()[].*!=<>&|,' \"ab0x1e-${}github";
  unsigned state = 12345;
  auto ctx = sample_context();
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    std::size_t length = 1 + round % 40;
    for (std::size_t i = 0; i < length; ++i) {
      state = state * 1103515245u + 12345u;
      text += alphabet[(state >> 16) % alphabet.size()];
    }
    auto result = run(text, ctx);
    if (!result) {
      EXPECT_LE(result.error().offset, text.size()) << text;
    }
    (void)interpolate(text, ctx);
    (void)check_interpolation(text);
  }
}

}  // namespace
}  // namespace sandci::scheduler
