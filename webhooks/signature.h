// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"):
// each delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
// `webhook-signature`, which is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "."
// + body)) for each of the endpoint's secrets, space-separated (two during a secret
// rotation), verifiable by the `standardwebhooks` libraries.
//
// Pure functions (OpenSSL's HMAC): safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cartwatch::webhooks {

// The signing key of a "whsec_<base64>" secret; nullopt when it is not one.
std::optional<std::string> SecretKey(std::string_view secret);

// "v1,<base64 signature>" of one key.
std::string Sign(std::string_view key, std::string_view id, std::int64_t timestamp_seconds,
                 std::string_view body);

// The `webhook-signature` header: one signature a key, space-separated.
std::string SignatureHeader(const std::vector<std::string>& keys, std::string_view id,
                            std::int64_t timestamp_seconds, std::string_view body);

}  // namespace cartwatch::webhooks
