#pragma once
// The byte-level helpers the webhook and status code share: HMACs, hex, base64 and
// URL encodings. Decoders return nullopt on malformed input instead of guessing.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sandci::agent::forge {

using Sha256Digest = std::array<unsigned char, 32>;
using Sha1Digest = std::array<unsigned char, 20>;

Sha256Digest hmac_sha256(std::string_view key, std::string_view message);
Sha1Digest hmac_sha1(std::string_view key, std::string_view message);

// True when both digests hold the same bytes, in time that does not depend on where
// they differ (CRYPTO_memcmp).
bool digests_equal(const Sha256Digest& a, const Sha256Digest& b);

// Lowercase hex of the bytes.
std::string hex_encode(std::string_view bytes);
template <std::size_t N>
std::string hex_encode(const std::array<unsigned char, N>& bytes) {
  return hex_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}
// Exactly 64 hex digits (either case) to 32 bytes; nullopt otherwise.
std::optional<Sha256Digest> sha256_from_hex(std::string_view hex);

// RFC 4648 standard alphabet with padding.
std::string base64_encode(std::string_view bytes);
template <std::size_t N>
std::string base64_encode(const std::array<unsigned char, N>& bytes) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}
// Standard alphabet; padding optional but the length must then be consistent. nullopt
// on any other character.
std::optional<std::string> base64_decode(std::string_view text);

// application/x-www-form-urlencoded value decoding: '+' is a space, %XX a byte.
// nullopt on a malformed escape.
std::optional<std::string> form_decode(std::string_view text);

// Percent-encodes every byte except RFC 3986 unreserved characters (so '/' becomes %2F,
// as GitLab's URL-encoded project paths need).
std::string percent_encode(std::string_view text);

// `text` without the white space at either end.
std::string_view trim(std::string_view text);

// The prefix of `text` holding at most `max_chars` UTF-8 characters; when `text` is
// longer, the prefix holds max_chars - 1 characters and an ellipsis (U+2026). A byte
// that does not start a valid UTF-8 sequence counts as one character, so the cut never
// splits a valid multi-byte character.
std::string truncate_utf8(std::string_view text, std::size_t max_chars);

}  // namespace sandci::agent::forge
