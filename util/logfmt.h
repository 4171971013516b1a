// logfmt values for the log lines (docs/operations.md: `key=value`, values with spaces
// quoted). A pure function.
#pragma once

#include <string>
#include <string_view>

namespace cartwatch::util {

// `value` as a logfmt value: bare when it is a plain word, else in quotes with `"` and `\`
// escaped and control characters as \n, \t or \u00XX; bytes that are not UTF-8 as U+FFFD.
std::string LogfmtValue(std::string_view value);

}  // namespace cartwatch::util
