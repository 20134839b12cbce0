#include "agent/runner/secret_masker.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

namespace sandci::agent {
namespace {

std::string url_safe(std::string s) {
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

// Decodes the base64 characters of `s` starting at `offset`, stopping at the first
// character that is not base64 (a test-only helper to look for leaked secrets).
std::string decode_from(std::string_view s, std::size_t offset) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (std::size_t i = offset; i < s.size(); ++i) {
    int v = value(s[i]);
    if (v < 0) break;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

bool base64_leaks(std::string_view masked, std::string_view secret) {
  for (std::size_t i = 0; i < masked.size(); ++i)
    if (decode_from(masked, i).find(secret) != std::string::npos) return true;
  return false;
}

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(SecretMasker, MasksEveryOccurrence) {
  SecretMasker m;
  m.add("hunter2-password");
  EXPECT_EQ(m.mask("pw=hunter2-password and again hunter2-password."), "pw=*** and again ***.");
  EXPECT_EQ(m.mask("nothing here"), "nothing here");
  EXPECT_EQ(m.mask(""), "");
}

TEST(SecretMasker, IgnoresBlankSecrets) {
  SecretMasker m;
  m.add("");
  m.add("  \t");
  m.add("\n\n");
  EXPECT_EQ(m.pattern_count(), 0u);
  EXPECT_EQ(m.mask("a b  c\t"), "a b  c\t");
}

TEST(SecretMasker, ShortSecretsAreMaskedOnlyAsWritten) {
  SecretMasker m;
  m.add("ab1");
  EXPECT_EQ(secret_variants("ab1"), std::vector<std::string>{"ab1"});
  EXPECT_EQ(m.mask("xab1y"), "x***y");
  EXPECT_EQ(m.mask(base64_encode("ab1")), base64_encode("ab1"));
}

TEST(SecretMasker, OverlappingSecretsAreMaskedFully) {
  SecretMasker m;
  m.add("abcdef");
  m.add("defghi");
  m.add("cd");
  EXPECT_EQ(m.mask("xxabcdefghiyy"), "xx***yy");
  EXPECT_EQ(m.mask("abcdefdefghi"), "***");  // adjacent matches merge
  EXPECT_EQ(m.mask("zcdz"), "z***z");
}

TEST(SecretMasker, LongestSecretWinsOverItsPrefix) {
  SecretMasker m;
  m.add("token");
  m.add("token-extended-value");
  EXPECT_EQ(m.mask("v=token-extended-value;"), "v=***;");
  EXPECT_EQ(m.mask("v=token-ext"), "v=***-ext");
}

TEST(SecretMasker, MasksEachLineOfAMultiLineSecret) {
  SecretMasker m;
  const std::string key =
      "-----BEGIN KEY-----\r\nMIIEpAIBAAKCAQEA7\nqweRTYuiop1234\n\n-----END KEY-----\n";
  m.add(key);
  EXPECT_EQ(m.mask("MIIEpAIBAAKCAQEA7"), "***");
  EXPECT_EQ(m.mask("  qweRTYuiop1234  "), "  ***  ");
  EXPECT_EQ(m.mask("-----END KEY-----"), "***");
  // The whole value JSON-escaped (a step dumping its env as JSON) is masked in one piece.
  EXPECT_EQ(m.mask("{\"KEY\":\"-----BEGIN KEY-----\\r\\nMIIEpAIBAAKCAQEA7\\nqweRTYuiop1234\\n\\n"
                   "-----END KEY-----\\n\"}"),
            "{\"KEY\":\"***\"}");
  // The blank line inside the key does not make every line masked.
  EXPECT_EQ(m.mask("ordinary line"), "ordinary line");
}

TEST(SecretMasker, MasksJsonEscapedForm) {
  SecretMasker m;
  m.add("pa\"ss\\word");
  EXPECT_EQ(m.mask(R"({"password":"pa\"ss\\word"})"), R"({"password":"***"})");
  EXPECT_EQ(m.mask("raw: pa\"ss\\word"), "raw: ***");
}

TEST(SecretMasker, MasksBase64AtEveryAlignment) {
  const std::string secret = "hunter2-password";
  SecretMasker m;
  m.add(secret);
  for (const std::string prefix : {"", "x", "xy", "xyz", "wxyz"}) {
    for (const std::string suffix : {"", "z", "zz", "zzz"}) {
      std::string encoded = base64_encode(prefix + secret + suffix);
      for (const std::string& line :
           {encoded, url_safe(encoded), "Authorization: Basic " + encoded + " end"}) {
        std::string masked = m.mask(line);
        SCOPED_TRACE("prefix='" + prefix + "' suffix='" + suffix + "' line=" + line);
        EXPECT_NE(masked.find("***"), std::string::npos) << masked;
        EXPECT_FALSE(base64_leaks(masked, secret)) << masked;
      }
    }
  }
}

TEST(SecretMasker, MasksUrlEncodedForm) {
  SecretMasker m;
  m.add("p@ss:w/rd");
  EXPECT_EQ(m.mask("git clone https://bot:p%40ss%3Aw%2Frd@git.example/repo"),
            "git clone https://bot:***@git.example/repo");
  EXPECT_EQ(m.mask("https://bot:p%40ss%3aw%2frd@h"), "https://bot:***@h");
}

TEST(SecretMasker, MasksUrlSafeBase64) {
  // Bytes chosen so that the standard encoding holds '+' and '/'.
  const std::string secret = "\xfb\xef\xbe\xfb\xef\xbe-key";
  std::string encoded = base64_encode(secret);
  ASSERT_NE(encoded.find_first_of("+/"), std::string::npos);
  SecretMasker m;
  m.add(secret);
  EXPECT_EQ(m.mask("t=" + url_safe(encoded)), "t=***");
  EXPECT_EQ(m.mask("t=" + encoded), "t=***");
}

TEST(SecretMasker, ConsumesAddMaskLines) {
  SecretMasker m;
  EXPECT_TRUE(m.consume_add_mask("::add-mask::s3cr3t-value"));
  EXPECT_EQ(m.mask("echo s3cr3t-value"), "echo ***");
  // Leading whitespace and CRLF are accepted, escapes undone (%0A is a newline).
  EXPECT_TRUE(m.consume_add_mask("  ::add-mask::first-line%0Asecond-line\r"));
  EXPECT_EQ(m.mask("first-line"), "***");
  EXPECT_EQ(m.mask("second-line"), "***");
  EXPECT_FALSE(m.consume_add_mask("echo ::add-mask::not-a-command"));
  EXPECT_FALSE(m.consume_add_mask("::warning::not add-mask"));
  EXPECT_EQ(m.mask("not-a-command"), "not-a-command");
}

TEST(SecretMasker, ThreadSafeAddAndMask) {
  SecretMasker m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 200; ++i) {
        std::string secret = "secret-" + std::to_string(t) + "-" + std::to_string(i) + "-x";
        m.add(secret);
        EXPECT_EQ(m.mask("[" + secret + "]"), "[***]");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(m.mask("[secret-3-199-x][secret-0-0-x]"), "[***][***]");
}

// Random secrets placed at random spots of random lines never survive masking.
TEST(SecretMasker, NoSecretEverSurvives) {
  std::mt19937 rng(12345);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_+/=";
  auto random_string = [&](std::size_t min_len, std::size_t max_len) {
    std::size_t n = std::uniform_int_distribution<std::size_t>(min_len, max_len)(rng);
    std::string s;
    for (std::size_t i = 0; i < n; ++i)
      s += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    return s;
  };
  std::vector<std::string> secrets;
  SecretMasker m;
  for (int i = 0; i < 300; ++i) {
    secrets.push_back(random_string(4, 40));
    m.add(secrets.back());
  }
  for (int round = 0; round < 2000; ++round) {
    std::string line = random_string(0, 20);
    int count = std::uniform_int_distribution<int>(1, 4)(rng);
    std::vector<std::size_t> used;
    for (int k = 0; k < count; ++k) {
      std::size_t idx = std::uniform_int_distribution<std::size_t>(0, secrets.size() - 1)(rng);
      used.push_back(idx);
      // Sometimes glue secrets together so that they overlap or touch.
      line += (k % 2 ? "" : random_string(0, 3)) + secrets[idx];
    }
    std::string masked = m.mask(line);
    for (const auto& s : secrets) ASSERT_EQ(masked.find(s), std::string::npos) << line;
  }
}

TEST(SecretMasker, ManySecretsStayCorrect) {
  SecretMasker m;
  for (int i = 0; i < 5000; ++i) m.add("tok_" + std::to_string(i * 7919) + "_end");
  EXPECT_GT(m.pattern_count(), 5000u);
  EXPECT_EQ(m.mask("a tok_39595_end b tok_7919_end c tok_1_end"), "a *** b *** c tok_1_end");
}

TEST(SecretAssignment, SplitsNameAndValue) {
  auto a = parse_secret_assignment("API_TOKEN=ab=cd");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, "API_TOKEN");
  EXPECT_EQ(a->second, "ab=cd");
  EXPECT_EQ(parse_secret_assignment("EMPTY=")->second, "");
}

TEST(SecretAssignment, ErrorsNeverQuoteTheValue) {
  auto no_eq = parse_secret_assignment("hunter2-password");
  ASSERT_FALSE(no_eq.has_value());
  EXPECT_EQ(no_eq.error().find("hunter2"), std::string::npos);
  EXPECT_FALSE(parse_secret_assignment("1X=v").has_value());
  EXPECT_FALSE(parse_secret_assignment("A-B=v").has_value());
  EXPECT_FALSE(parse_secret_assignment("=v").has_value());
}

TEST(SecretsFile, ParsesDotenvStyle) {
  auto r = parse_secrets_file(
      "# deploy secrets\n"
      "\n"
      "TOKEN=abc123\n"
      "export REGISTRY_PASSWORD = 'p@ss word'\r\n"
      "QUOTED=\"line1\\nline2 \\\"q\\\"\"\n"
      "  SPACED =  padded value  \n"
      "KEY<<EOF\n"
      "-----BEGIN KEY-----\n"
      "MIIEpAIBAAKCAQEA7\n"
      "-----END KEY-----\n"
      "EOF\n"
      "LAST=x");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(*r, (NameValueList{{"TOKEN", "abc123"},
                               {"REGISTRY_PASSWORD", "p@ss word"},
                               {"QUOTED", "line1\nline2 \"q\""},
                               {"SPACED", "padded value"},
                               {"KEY", "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA7\n-----END KEY-----"},
                               {"LAST", "x"}}));
}

TEST(SecretsFile, ErrorsHaveLineNumbersAndNoValues) {
  auto err = [](std::string_view content) {
    auto r = parse_secrets_file(content);
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error().to_string();
  };
  EXPECT_EQ(err("A=1\njust-a-secret-value\n"), "line 2: expected NAME=VALUE or NAME<<DELIMITER");
  EXPECT_EQ(err("A=1\nB-C=2\n"), "line 2: invalid secret name 'B-C'");
  EXPECT_EQ(err("A=\"s3cret\n"), "line 1: unterminated double quote");
  EXPECT_EQ(err("K<<END\nsecret\n"), "line 1: heredoc for 'K' is never closed");
  EXPECT_EQ(err("K<<\n"), "line 1: heredoc for 'K' has no delimiter");
}

}  // namespace
}  // namespace sandci::agent
