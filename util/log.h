// The service's log (docs/operations.md, "Logs"): one logfmt line per significant event on
// stderr, each written whole (one write(2), under a lock) so that lines from different
// threads never interleave:
//
//   ts=2026-12-07T15:54:56.123Z level=warn msg="endpoint disabled" endpoint=crm
//
// `ts` is UTC with milliseconds, `level` one of debug, info, warn, error; lines below the
// level set by SetLevel (`[log] level`, default info) are neither formatted nor written (the
// arguments of Add are still evaluated). Usage:
//
//   log::Warn("endpoint disabled").Add("endpoint", name).Add("status", 410);
//
// The line is written when the expression ends. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace cartwatch::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<Level> ParseLevel(std::string_view name);
std::string_view LevelName(Level level);

// Lines below `level` are dropped from now on. Default kInfo.
void SetLevel(Level level);
bool Enabled(Level level);

// Where lines go: the file descriptor (default 2). For tests.
void SetOutput(int fd);

// One line, written by the destructor. Neither copied nor moved: made by the functions
// below and used in the same expression.
class Line {
 public:
  Line(Level level, std::string_view msg);
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  ~Line();

  // `key` is a plain word (letters, digits, '_', '.'); `value` is quoted when it needs to
  // be (util::LogfmtValue).
  Line& Add(std::string_view key, std::string_view value);
  Line& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  Line& Add(std::string_view key, const std::string& value) { return Add(key, std::string_view(value)); }
  template <typename T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  Line& Add(std::string_view key, T value) {
    if constexpr (std::is_signed_v<T>) {
      return AddSigned(key, static_cast<std::int64_t>(value));
    } else {
      return AddUnsigned(key, static_cast<std::uint64_t>(value));
    }
  }
  Line& Add(std::string_view key, double value);
  Line& Add(std::string_view key, bool value) { return Add(key, std::string_view(value ? "true" : "false")); }
  // `pairs` already in logfmt ("a=1 b=x"), appended as they are.
  Line& AddRaw(std::string_view pairs);

 private:
  void AppendKey(std::string_view key);  // " key="
  Line& AddSigned(std::string_view key, std::int64_t value);
  Line& AddUnsigned(std::string_view key, std::uint64_t value);

  bool enabled_;
  std::string text_;
};

inline Line Debug(std::string_view msg) { return Line(Level::kDebug, msg); }
inline Line Info(std::string_view msg) { return Line(Level::kInfo, msg); }
inline Line Warn(std::string_view msg) { return Line(Level::kWarn, msg); }
inline Line Error(std::string_view msg) { return Line(Level::kError, msg); }

}  // namespace cartwatch::log
