#include "telekern/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <vector>

#include "telekern/strings.h"

namespace telekern {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kPasswordScheme = "pbkdf2-sha256";

std::string pbkdf2(std::string_view password, std::string_view salt, int iterations) {
  std::string out(32, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}
}  // namespace

std::string base64url_encode(std::string_view data) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3f];
  return out;
}

absl::StatusOr<std::string> base64url_decode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  // Unpadded, as JWTs are: a '=' is as invalid as any other stray character
  // (skipping what follows it would give a token more than one spelling).
  for (char c : text) {
    const char* position = std::char_traits<char>::find(kAlphabet, 64, c);
    if (position == nullptr) {
      return absl::InvalidArgumentError(
          str_cat("invalid base64url character '", std::string(1, c), "'"));
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(position - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // Canonical encodings only: leftover bits must be zero, so a token has
  // exactly one spelling.
  if (bits >= 6 || (buffer & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("non-canonical base64url encoding");
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return std::string(reinterpret_cast<char*>(digest), length);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(size_t count) {
  std::string out(count, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count));
  return out;
}

std::string hash_password(std::string_view password, int iterations) {
  std::string salt = random_bytes(16);
  return str_cat(kPasswordScheme, "$", iterations, "$", base64url_encode(salt), "$",
                 base64url_encode(pbkdf2(password, salt, iterations)));
}

absl::StatusOr<bool> verify_password(std::string_view password, std::string_view encoded) {
  std::vector<std::string> parts = split(encoded, '$', false);
  auto iterations = parts.size() == 4 ? parse_int(parts[1]) : std::nullopt;
  if (parts.size() != 4 || parts[0] != kPasswordScheme || !iterations || *iterations < 1000) {
    return absl::InvalidArgumentError(
        "password hash must look like pbkdf2-sha256$<iterations>=1000+$<salt>$<hash>; "
        "make one with `telekernd --hash-password`");
  }
  auto salt = base64url_decode(parts[2]);
  auto expected = base64url_decode(parts[3]);
  if (!salt.ok() || !expected.ok()) {
    return absl::InvalidArgumentError("password hash has invalid base64url salt or hash");
  }
  return constant_time_equal(pbkdf2(password, *salt, static_cast<int>(*iterations)), *expected);
}

}  // namespace telekern
