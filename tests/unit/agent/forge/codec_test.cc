#include "agent/forge/codec.h"

#include <gtest/gtest.h>

namespace sandci::agent::forge {
namespace {

TEST(Codec, HmacSha256KnownAnswer) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Codec, HexRoundTripAndRejects) {
  const auto digest = hmac_sha256("k", "m");
  EXPECT_EQ(sha256_from_hex(hex_encode(digest)), digest);
  EXPECT_EQ(sha256_from_hex(hex_encode(digest).substr(2)), std::nullopt);
  EXPECT_EQ(sha256_from_hex(std::string(64, 'x')), std::nullopt);
}

TEST(Codec, Base64RoundTripAndRejects) {
  for (std::string text : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(base64_decode(base64_encode(text)), text);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_decode("Zm8"), "fo");
  EXPECT_EQ(base64_decode("Zm9v!"), std::nullopt);
  EXPECT_EQ(base64_decode("Z"), std::nullopt);
}

TEST(Codec, FormDecode) {
  EXPECT_EQ(form_decode("a+b%2Bc%7B%7d"), "a b+c{}");
  EXPECT_EQ(form_decode("%"), std::nullopt);
  EXPECT_EQ(form_decode("%4"), std::nullopt);
  EXPECT_EQ(form_decode("%zz"), std::nullopt);
}

TEST(Codec, PercentEncodeKeepsOnlyUnreserved) {
  EXPECT_EQ(percent_encode("group/sub project~v1.0_x-y"), "group%2Fsub%20project~v1.0_x-y");
}

TEST(Codec, TruncateUtf8) {
  EXPECT_EQ(truncate_utf8("hello", 5), "hello");
  EXPECT_EQ(truncate_utf8("hello!", 5), "hell\u2026");
  EXPECT_EQ(truncate_utf8("\u65e5\u672c\u8a9e\u306e\u6587", 3), "\u65e5\u672c\u2026");
  EXPECT_EQ(truncate_utf8("ab", 0), "");
  // An invalid byte counts as one character and is never split from its neighbours.
  EXPECT_EQ(truncate_utf8("a\xff\xfe" "bcd", 4), "a\xff\xfe\u2026");
}

}  // namespace
}  // namespace sandci::agent::forge
