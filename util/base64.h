// Base64 (RFC 4648) encoding and decoding. Pure functions: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cartwatch::util {

// Standard alphabet with '=' padding.
std::string Base64Encode(std::string_view bytes);

// Decodes the standard alphabet ('+', '/') or the URL-safe one ('-', '_'), with or without
// '=' padding. Returns nullopt on any other character or an impossible length.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace cartwatch::util
