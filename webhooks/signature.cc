#include "webhooks/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/base64.h"

namespace cartwatch::webhooks {

std::optional<std::string> SecretKey(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (!secret.starts_with(kPrefix)) return std::nullopt;
  auto key = util::Base64Decode(secret.substr(kPrefix.size()));
  if (!key || key->empty()) return std::nullopt;
  return key;
}

std::string Sign(std::string_view key, std::string_view id, std::int64_t timestamp_seconds,
                 std::string_view body) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id);
  content.push_back('.');
  content.append(std::to_string(timestamp_seconds));
  content.push_back('.');
  content.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &size);
  return "v1," + util::Base64Encode(std::string_view(reinterpret_cast<const char*>(mac), size));
}

std::string SignatureHeader(const std::vector<std::string>& keys, std::string_view id,
                            std::int64_t timestamp_seconds, std::string_view body) {
  std::string header;
  for (const std::string& key : keys) {
    if (!header.empty()) header.push_back(' ');
    header += Sign(key, id, timestamp_seconds, body);
  }
  return header;
}

}  // namespace cartwatch::webhooks
