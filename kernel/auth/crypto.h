// Auth's crypto primitives; they live in the SDK (telekern/crypto.h) so
// modules that keep users hash passwords the way Login verifies them.
#pragma once

#include "telekern/crypto.h"

namespace telekern::kernel::auth {

using telekern::base64url_decode;
using telekern::base64url_encode;
using telekern::constant_time_equal;
using telekern::hash_password;
using telekern::hmac_sha256;
using telekern::random_bytes;
using telekern::sha256_hex;
using telekern::verify_password;

}  // namespace telekern::kernel::auth
