// The config's scalar keys (the ones the environment and flags may override) in one table,
// so that the file, the environment and the flags share one parser and one validator per
// key, and the checks and conversions the loader shares with them. Private to app/: the
// loader (config.cc) is their one user.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "app/config.h"

namespace cartwatch::config_keys {

inline constexpr std::string_view kEnvPrefix = "CARTWATCH_";
inline constexpr std::string_view kDurationHint = R"((use e.g. "15s", "1h", "90d"))";

// Sanity caps that also keep every value inside the type that stores it.
inline constexpr std::int64_t kMaxLimit = std::int64_t{1} << 30;      // [limits]: 1 GiB / 1 Gi items
inline constexpr std::int64_t kMaxMegabytes = std::int64_t{1} << 20;  // *_mb keys: 1 TiB
inline constexpr std::int64_t kMaxConnections = 10'000'000;
inline constexpr std::int64_t kMaxQueuedMessages = std::int64_t{1} << 32;
inline constexpr std::int64_t kMaxDedupIds = std::int64_t{1} << 32;
inline constexpr std::int64_t kMaxIoThreads = 1024;
inline constexpr std::int64_t kMaxCommitDelayUs = 100'000;  // 100 ms
inline constexpr std::int64_t kMaxBackgroundJobs = 256;


// Durations are added to clock readings (steady_clock counts nanoseconds in 64 bits), so
// each has a ceiling: 1 day for connection timeouts, 100 years for the others.
inline constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24);
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24 * 365 * 100);

// `text` in double quotes, with quotes, backslashes and control characters escaped, for error
// messages. Long values are cut.
std::string Quote(std::string_view text);
// "data_dir" -> "DATA_DIR"
std::string ToUpperUnderscore(std::string_view text);
// "a string", "an integer", ... for "expected X, got Y".
std::string Expected(std::string_view what, const toml::node& node);
// Why `text` is not a duration.
std::string BadDuration(std::string_view text);
// "" when `text` is a listen address host:port, else why not.
std::string CheckListenAddress(std::string_view text);
// The port of an address that passed CheckListenAddress.
std::string_view PortOf(std::string_view address);
// "" when `url` is an absolute http(s) URL with a host, else why not.
std::string CheckWebhookUrl(std::string_view url);
// "" when `origin` is "*" or "scheme://host[:port]" (what browsers send in Origin).
std::string CheckOrigin(std::string_view origin);

using Value = std::variant<std::string, bool, std::int64_t, std::chrono::milliseconds>;
enum class Kind { kString, kBool, kInteger, kDuration };

struct ScalarKey {
  std::string_view section;
  std::string_view key;
  Kind kind;
  // Validates `value` and stores it in `config`; returns why it is refused, or "" once stored.
  std::function<std::string(Config&, const Value&)> store;
  // The value in `config`, as it would be written in the file (without TOML's quotes).
  std::function<std::string(const Config&)> show;

  std::string Path() const { return std::string(section) + "." + std::string(key); }
  std::string EnvName() const {
    return std::string(kEnvPrefix) + ToUpperUnderscore(section) + "_" + ToUpperUnderscore(key);
  }
  std::string FlagName() const {
    std::string flag = "--" + std::string(key);
    std::replace(flag.begin(), flag.end(), '_', '-');
    return flag;
  }
};

// Every scalar key, in the order of docs/config.md.
const std::vector<ScalarKey>& ScalarKeys();
// The key `section`.`key`; null when there is none.
const ScalarKey* FindScalarKey(std::string_view section, std::string_view key);

// The value of `node` as `kind`, or the reason it is not one.
std::variant<Value, std::string> ValueFromToml(Kind kind, const toml::node& node);
// The value of an environment variable or flag `text` as `kind`, or the reason it is not one.
std::variant<Value, std::string> ValueFromString(Kind kind, const std::string& text);

}  // namespace cartwatch::config_keys
