// ASCII case-insensitive comparison (HTTP header values, URL schemes, TOML words). Pure.
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace cartwatch::util {

inline bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace cartwatch::util
