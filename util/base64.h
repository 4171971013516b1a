// Base64 (RFC 4648) encoding and decoding. Pure functions: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cartwatch::util {

// Standard alphabet with '=' padding.
std::string Base64Encode(std::string_view bytes);

// Decodes the standard alphabet ('+', '/') or the URL-safe one ('-', '_'), with or without
// '=' padding (when present it must complete the last 4-character group). Returns nullopt on
// any other character (whitespace included) or an impossible length. Unused low bits of the
// last character are ignored, as most decoders do.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace cartwatch::util
