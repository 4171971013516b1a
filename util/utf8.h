// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
// Pure functions: safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace cartwatch::util {

// Whether `s` is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

// `s` with each maximal ill-formed subsequence replaced by U+FFFD (the "substitution of
// maximal subparts" of Unicode chapter 3, as browsers' TextDecoder does); `s` itself when
// it is valid.
std::string ToValidUtf8(std::string_view s);

}  // namespace cartwatch::util
