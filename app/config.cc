// The config loader: TOML file, then CARTWATCH_* environment variables, then flags.
// Every key is described in docs/config.md; config/cartwatch.toml is the example.
//
// Scalar keys of [server], [storage], [profiles], [limits] and [templates] live in one table
// (ScalarKeys()) so that the file, the environment and the flags share one parser and one
// validator per key. [[sites]], [[rules]] and [[webhooks]] come from the file only.

#include "app/config.h"

#include <toml++/toml.h>
#include <unistd.h>  // environ

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <utility>
#include <type_traits>
#include <variant>

#include "rules/email.h"
#include "rules/timezone.h"
#include "util/ascii.h"
#include "util/base64.h"
#include "util/log.h"
#include "webhooks/signature.h"
#include "webhooks/url.h"
#include "util/time.h"

namespace cartwatch {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kEnvPrefix = "CARTWATCH_";
constexpr std::string_view kConfigPathVariable = "CARTWATCH_CONFIG";
constexpr std::string_view kDurationHint = R"((use e.g. "15s", "1h", "90d"))";

// Sanity caps that also keep every value inside the type that stores it.
constexpr std::int64_t kMaxLimit = std::int64_t{1} << 30;      // [limits]: 1 GiB / 1 Gi items
constexpr std::int64_t kMaxMegabytes = std::int64_t{1} << 20;  // *_mb keys: 1 TiB
constexpr std::int64_t kMaxConnections = 10'000'000;
constexpr std::int64_t kMaxQueuedMessages = std::int64_t{1} << 32;
constexpr std::int64_t kMaxDedupIds = std::int64_t{1} << 32;
constexpr std::int64_t kMaxIoThreads = 1024;
constexpr std::int64_t kMaxBackgroundJobs = 256;

[[noreturn]] void Fail(std::string_view where, std::string_view reason) {
  std::string what;
  what.reserve(where.size() + 2 + reason.size());
  what.append(where).append(": ").append(reason);
  throw ConfigError(what);
}

// `text` in double quotes, with quotes, backslashes and control characters escaped, for error
// messages. Long values are cut.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out.append(buf);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > kMaxShown) out.append("...");
  out.push_back('"');
  return out;
}

std::string ToUpperUnderscore(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '.' || c == '-') {
      c = '_';
    } else if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return out;
}

// The TOML type of `node` in words, for "expected X, got Y".
const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string Expected(std::string_view what, const toml::node& node) {
  return "expected " + std::string(what) + ", got " + TypeName(node);
}

std::string BadDuration(std::string_view text) {
  return "bad duration " + Quote(text) + " " + std::string(kDurationHint);
}

// "" when `text` is "host:port" or "[v6]:port" with port 0-65535, else why not.
std::string CheckListenAddress(std::string_view text) {
  const std::string bad =
      "bad listen address " + Quote(text) +
      R"( (use "host:port", e.g. "0.0.0.0:8080", or "[v6]:port", e.g. "[::]:8080"))";
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad;
    host = host.substr(1, host.size() - 2);
    for (char c : host) {
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return bad;
    }
    if (host.find(':') == std::string_view::npos) return bad;
  } else {
    for (char c : host) {
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) return bad;  // also an unbracketed IPv6 address
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad;
  }
  if (std::stoi(std::string(port)) > 65535) {
    return "bad listen address " + Quote(text) + ": port must be 0-65535";
  }
  return {};
}

// The port of an address that passed CheckListenAddress.
std::string_view PortOf(std::string_view address) { return address.substr(address.rfind(':') + 1); }

// "" when `url` is an absolute http(s) URL with a host, else why not.
std::string CheckWebhookUrl(std::string_view url) {
  if (webhooks::ParseUrl(url)) return {};
  return "must be an http:// or https:// URL with a host (no user info, no fragment; a port "
         "from 1 to 65535), got " + Quote(url);
}

// "" when `origin` is "*" or "scheme://host[:port]" (what browsers send in Origin).
std::string CheckOrigin(std::string_view origin) {
  if (origin == "*") return {};
  const std::string bad =
      "bad origin " + Quote(origin) +
      R"( (an origin is scheme://host[:port] with no path, e.g. "https://shop.example", or "*"))";
  const std::size_t sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return bad;
  const std::string_view host = origin.substr(sep + 3);
  if (host.empty() || host.find_first_of("/?#") != std::string_view::npos) return bad;
  for (char c : origin) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad;
  }
  // Origins are compared exactly, as browsers send them: no patterns, no default ports.
  if (host.find('*') != std::string_view::npos) {
    return "bad origin " + Quote(origin) +
           " (patterns are not supported: list each origin, or use \"*\" for any)";
  }
  const std::string_view scheme = origin.substr(0, sep);
  if ((scheme == "https" && host.ends_with(":443")) ||
      (scheme == "http" && host.ends_with(":80"))) {
    return "bad origin " + Quote(origin) +
           " (browsers leave out the default port: write it without the port)";
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Scalar keys: the ones the environment and flags may override.

using Value = std::variant<std::string, bool, std::int64_t, milliseconds>;
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

template <typename T>
using Field = T& (*)(Config&);

// The field's value in a const config: the accessors only name a member.
template <typename T>
const T& Get(Field<T> field, const Config& config) {
  return field(const_cast<Config&>(config));
}

// A duration as the config writes it: "15s", "90d", "1500ms".
std::string ShowDuration(milliseconds d) {
  const std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  struct Unit {
    std::int64_t ms;
    const char* suffix;
  };
  for (Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"}, Unit{1000, "s"}}) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
  }
  return std::to_string(ms) + "ms";
}

ScalarKey StringKey(std::string_view section, std::string_view key, Field<std::string> field) {
  return {section, key, Kind::kString, [field](Config& config, const Value& value) -> std::string {
            const auto& text = std::get<std::string>(value);
            if (text.empty()) return "must not be empty";
            field(config) = text;
            return {};
          },
          [field](const Config& config) { return Get(field, config); }};
}

ScalarKey WalRecoveryKey() {
  return {"storage", "wal_recovery", Kind::kString,
          [](Config& config, const Value& value) -> std::string {
            const auto& text = std::get<std::string>(value);
            if (text == "auto") {
              config.storage.wal_recovery = storage::WalRecovery::kAuto;
            } else if (text == "strict") {
              config.storage.wal_recovery = storage::WalRecovery::kStrict;
            } else if (text == "point_in_time") {
              config.storage.wal_recovery = storage::WalRecovery::kPointInTime;
            } else {
              return "must be \"auto\", \"strict\" or \"point_in_time\", got \"" + text + "\"";
            }
            return {};
          },
          [](const Config& config) -> std::string {
            switch (config.storage.wal_recovery) {
              case storage::WalRecovery::kAuto: return "auto";
              case storage::WalRecovery::kStrict: return "strict";
              case storage::WalRecovery::kPointInTime: return "point_in_time";
            }
            return "auto";
          }};
}

ScalarKey QuietHoursKey() {
  return {"rule_engine", "quiet_hours", Kind::kString,
          [](Config& config, const Value& value) -> std::string {
            const auto& text = std::get<std::string>(value);
            if (!text.empty() && !rules::ParseQuietHours(text)) {
              return "must be \"HH:MM-HH:MM\" (24-hour clock, start and end differ), or \"\" "
                     "for none; got \"" + text + "\"";
            }
            config.rule_engine.quiet_hours = text;
            return {};
          },
          [](const Config& config) { return config.rule_engine.quiet_hours; }};
}

ScalarKey LogLevelKey() {
  return {"log", "level", Kind::kString,
          [](Config& config, const Value& value) -> std::string {
            const auto& text = std::get<std::string>(value);
            auto level = log::ParseLevel(text);
            if (!level) return "must be \"debug\", \"info\", \"warn\" or \"error\", got \"" + text + "\"";
            config.log_level = *level;
            return {};
          },
          [](const Config& config) { return std::string(log::LevelName(config.log_level)); }};
}

ScalarKey ListenKey(std::string_view section, std::string_view key, Field<std::string> field) {
  return {section, key, Kind::kString, [field](Config& config, const Value& value) -> std::string {
            const auto& text = std::get<std::string>(value);
            if (std::string reason = CheckListenAddress(text); !reason.empty()) return reason;
            field(config) = text;
            return {};
          },
          [field](const Config& config) { return Get(field, config); }};
}

ScalarKey BoolKey(std::string_view section, std::string_view key, Field<bool> field) {
  return {section, key, Kind::kBool, [field](Config& config, const Value& value) -> std::string {
            field(config) = std::get<bool>(value);
            return {};
          },
          [field](const Config& config) -> std::string { return Get(field, config) ? "true" : "false"; }};
}

// An integer in [min, max], stored shifted left by `shift` bits (20 for the *_mb keys).
template <typename T>
ScalarKey IntegerKey(std::string_view section, std::string_view key, std::int64_t min,
                     std::int64_t max, Field<T> field, int shift = 0) {
  return {section, key, Kind::kInteger,
          [field, min, max, shift](Config& config, const Value& value) -> std::string {
            const std::int64_t number = std::get<std::int64_t>(value);
            if (number < min) {
              return "must be at least " + std::to_string(min) + ", got " + std::to_string(number);
            }
            if (number > max) {
              return "must be at most " + std::to_string(max) + ", got " + std::to_string(number);
            }
            if constexpr (std::is_floating_point_v<T>) {
              (void)shift;  // *_mb keys are integers
              field(config) = static_cast<T>(number);  // a whole number where a double is kept
            } else {
              field(config) = static_cast<T>(static_cast<T>(number) << shift);
            }
            return {};
          },
          [field, shift](const Config& config) -> std::string {
            const T value = Get(field, config);
            if constexpr (std::is_floating_point_v<T>) {
              (void)shift;
              return std::to_string(static_cast<std::int64_t>(value));
            } else {
              return std::to_string(value >> shift);
            }
          }};
}

// Durations are added to clock readings (steady_clock counts nanoseconds in 64 bits), so
// each has a ceiling: 1 day for connection timeouts, 100 years for the others.
constexpr milliseconds kMaxTimeout = std::chrono::hours(24);
constexpr milliseconds kMaxDuration = std::chrono::hours(24 * 365 * 100);

ScalarKey DurationKey(std::string_view section, std::string_view key, bool zero_allowed,
                      Field<milliseconds> field, milliseconds max = kMaxDuration) {
  return {section, key, Kind::kDuration,
          [field, zero_allowed, max](Config& config, const Value& value) -> std::string {
            const milliseconds duration = std::get<milliseconds>(value);
            if (!zero_allowed && duration <= milliseconds::zero()) return "must be more than 0";
            if (duration > max) {
              return max == kMaxTimeout ? "must be at most 1 day" : "must be at most 100 years";
            }
            field(config) = duration;
            return {};
          },
          [field](const Config& config) { return ShowDuration(Get(field, config)); }};
}

const std::vector<ScalarKey>& ScalarKeys() {
  // clang-format 14 mangles "-> auto&" lambdas ("Config & c"); the table is kept by hand.
  // clang-format off
  static const std::vector<ScalarKey>* const keys = new std::vector<ScalarKey>{
      ListenKey("server", "listen", [](Config& c) -> auto& { return c.server.listen; }),
      ListenKey("server", "admin_listen",
                [](Config& c) -> auto& { return c.server.admin_listen; }),
      IntegerKey<int>("server", "io_threads", 0, kMaxIoThreads,
                      [](Config& c) -> auto& { return c.server.io_threads; }),
      DurationKey("server", "read_timeout", false,
                  [](Config& c) -> auto& { return c.server.read_timeout; }, kMaxTimeout),
      DurationKey("server", "idle_timeout", false,
                  [](Config& c) -> auto& { return c.server.idle_timeout; }, kMaxTimeout),
      DurationKey("server", "write_timeout", false,
                  [](Config& c) -> auto& { return c.server.write_timeout; }, kMaxTimeout),
      DurationKey("server", "shutdown_grace", true,
                  [](Config& c) -> auto& { return c.server.shutdown_grace; }, kMaxTimeout),
      BoolKey("server", "metrics", [](Config& c) -> auto& { return c.server.metrics; }),
      IntegerKey<std::size_t>("server", "max_connections", 1, kMaxConnections,
                              [](Config& c) -> auto& { return c.server.max_connections; }),
      IntegerKey<std::size_t>("server", "admin_max_connections", 1, kMaxConnections,
                              [](Config& c) -> auto& { return c.server.admin_max_connections; }),

      StringKey("storage", "data_dir", [](Config& c) -> auto& { return c.storage.data_dir; }),
      BoolKey("storage", "fsync", [](Config& c) -> auto& { return c.storage.fsync; }),
      DurationKey("storage", "dedup_window", false,
                  [](Config& c) -> auto& { return c.storage.dedup_window; }),
      IntegerKey<std::size_t>("storage", "dedup_max_ids", 1000, kMaxDedupIds,
                              [](Config& c) -> auto& { return c.storage.dedup_max_ids; }),
      DurationKey("storage", "retention", true,
                  [](Config& c) -> auto& { return c.storage.retention; }),
      IntegerKey<std::size_t>("storage", "max_queued_messages", 1, kMaxQueuedMessages,
                              [](Config& c) -> auto& { return c.storage.max_queued_messages; }),
      IntegerKey<std::size_t>("storage", "max_queued_mb", 1, kMaxMegabytes,
                              [](Config& c) -> auto& { return c.storage.max_queued_bytes; }, 20),
      IntegerKey<std::size_t>("storage", "block_cache_mb", 1, kMaxMegabytes,
                              [](Config& c) -> auto& { return c.storage.block_cache_bytes; }, 20),
      IntegerKey<std::size_t>("storage", "write_buffer_mb", 1, kMaxMegabytes,
                              [](Config& c) -> auto& { return c.storage.write_buffer_bytes; }, 20),
      IntegerKey<int>("storage", "max_background_jobs", 1, kMaxBackgroundJobs,
                      [](Config& c) -> auto& { return c.storage.max_background_jobs; }),
      IntegerKey<std::size_t>("storage", "state_cache_entries", 0, kMaxQueuedMessages,
                              [](Config& c) -> auto& { return c.storage.state_cache_entries; }),
      DurationKey("storage", "state_write_delay", true,
                  [](Config& c) -> auto& { return c.storage.state_write_delay; }),
      IntegerKey<std::size_t>("storage", "state_max_unwritten", 1, kMaxQueuedMessages,
                              [](Config& c) -> auto& { return c.storage.state_max_unwritten; }),
      IntegerKey<std::uint64_t>("storage", "min_free_mb", 0, kMaxMegabytes,
                                [](Config& c) -> auto& { return c.storage.min_free_bytes; }, 20),
      WalRecoveryKey(),
      BoolKey("storage", "compress_event_log",
              [](Config& c) -> auto& { return c.storage.compress_event_log; }),

      DurationKey("profiles", "session_timeout", false,
                  [](Config& c) -> auto& { return c.storage.profiles.session_timeout; }),
      IntegerKey<double>("profiles", "ltv_lifetime_years", 1, 100,
                         [](Config& c) -> auto& { return c.storage.profiles.expected_lifetime_years; }),
      DurationKey("profiles", "thresholds_interval", false,
                  [](Config& c) -> auto& { return c.storage.thresholds_interval; }),

      IntegerKey<std::size_t>("limits", "max_message_bytes", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.max_message_bytes; }),
      IntegerKey<std::size_t>("limits", "max_request_bytes", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.max_request_bytes; }),
      IntegerKey<std::size_t>("limits", "max_batch_messages", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.max_batch_messages; }),
      IntegerKey<std::size_t>("limits", "max_header_bytes", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.max_header_bytes; }),
      IntegerKey<std::size_t>("limits", "max_receiving_mb", 0, kMaxMegabytes,
                              [](Config& c) -> auto& { return c.limits.max_receiving_bytes; }, 20),
      IntegerKey<double>("limits", "client_rate_limit", 0, kMaxLimit,
                         [](Config& c) -> auto& { return c.limits.client_rate_limit; }),
      IntegerKey<double>("limits", "client_rate_burst", 0, kMaxLimit,
                         [](Config& c) -> auto& { return c.limits.client_rate_burst; }),
      IntegerKey<std::size_t>("limits", "events_page_default", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.events_page_default; }),
      IntegerKey<std::size_t>("limits", "events_page_max", 1, kMaxLimit,
                              [](Config& c) -> auto& { return c.limits.events_page_max; }),

      StringKey("templates", "dir", [](Config& c) -> auto& { return c.templates_dir; }),

      DurationKey("rule_engine", "timer_tick", false,
                  [](Config& c) -> auto& { return c.rule_engine.timer_tick; }, kMaxTimeout),
      DurationKey("rule_engine", "email_cooldown", true,
                  [](Config& c) -> auto& { return c.rule_engine.email_cooldown; }),
      QuietHoursKey(),

      LogLevelKey(),
  };
  // clang-format on
  return *keys;
}

const ScalarKey* FindScalarKey(std::string_view section, std::string_view key) {
  for (const ScalarKey& k : ScalarKeys()) {
    if (k.section == section && k.key == key) return &k;
  }
  return nullptr;
}

// The value of `node` as `kind`, or the reason it is not one.
std::variant<Value, std::string> ValueFromToml(Kind kind, const toml::node& node) {
  switch (kind) {
    case Kind::kString:
      if (const auto* s = node.as_string()) return Value(s->get());
      return Expected("a string", node);
    case Kind::kBool:
      if (const auto* b = node.as_boolean()) return Value(b->get());
      return Expected("a boolean", node);
    case Kind::kInteger:
      if (const auto* i = node.as_integer()) return Value(i->get());
      return Expected("an integer", node);
    case Kind::kDuration:
      if (const auto* s = node.as_string()) {
        if (auto duration = util::ParseDuration(s->get())) return Value(*duration);
        return BadDuration(s->get());
      }
      return Expected(R"(a duration string such as "15s")", node);
  }
  assert(false && "every Kind is handled above");
  return std::string();
}

// The value of an environment variable or flag `text` as `kind`, or the reason it is not one.
std::variant<Value, std::string> ValueFromString(Kind kind, const std::string& text) {
  switch (kind) {
    case Kind::kString:
      return Value(text);
    case Kind::kBool:
      if (text == "1" || util::IEquals(text, "true")) return Value(true);
      if (text == "0" || util::IEquals(text, "false")) return Value(false);
      return "expected true or false, got " + Quote(text);
    case Kind::kInteger: {
      std::int64_t number = 0;
      const char* end = text.data() + text.size();
      const auto [ptr, ec] = std::from_chars(text.data(), end, number);
      if (text.empty() || ec != std::errc() || ptr != end) {
        return "expected an integer, got " + Quote(text);
      }
      return Value(number);
    }
    case Kind::kDuration:
      if (auto duration = util::ParseDuration(text)) return Value(*duration);
      return BadDuration(text);
  }
  assert(false && "every Kind is handled above");
  return std::string();
}

// ---------------------------------------------------------------------------------------
// Tables of the file.

// One table of the file (a section, or one entry of an array of tables): reads typed values
// and fails with "<file>: <path>.<key>: <reason>".
class TableReader {
 public:
  TableReader(const std::string& file, std::string path, const toml::table& table)
      : file_(file), path_(std::move(path)), table_(table) {}

  std::string Path(std::string_view key) const { return path_ + "." + std::string(key); }

  [[noreturn]] void Fail(std::string_view key, std::string_view reason) const {
    cartwatch::Fail(file_ + ": " + Path(key), reason);
  }

  // Fails on the first key not in `known`.
  void CheckKnown(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, node] : table_) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
        Fail(key.str(), "unknown key");
      }
    }
  }

  const toml::node* Find(std::string_view key) const { return table_.get(key); }

  std::optional<std::string> String(std::string_view key) const {
    const toml::node* node = Find(key);
    if (node == nullptr) return std::nullopt;
    if (const auto* s = node->as_string()) return s->get();
    Fail(key, Expected("a string", *node));
  }

  // A string that must be present and non-empty.
  std::string RequiredString(std::string_view key) const {
    std::optional<std::string> value = String(key);
    if (!value) Fail(key, "required key is missing");
    if (value->empty()) Fail(key, "must not be empty");
    return *value;
  }

  std::optional<bool> Bool(std::string_view key) const {
    const toml::node* node = Find(key);
    if (node == nullptr) return std::nullopt;
    if (const auto* b = node->as_boolean()) return b->get();
    Fail(key, Expected("a boolean", *node));
  }

  // An integer or float, finite and >= `min` (> `min` when `min_exclusive`).
  std::optional<double> Number(std::string_view key, double min, bool min_exclusive) const {
    const toml::node* node = Find(key);
    if (node == nullptr) return std::nullopt;
    double number = 0;
    if (const auto* i = node->as_integer()) {
      number = static_cast<double>(i->get());
    } else if (const auto* f = node->as_floating_point()) {
      number = f->get();
    } else {
      Fail(key, Expected("a number", *node));
    }
    if (!std::isfinite(number)) Fail(key, "must be a finite number");
    if (min_exclusive ? number <= min : number < min) {
      char bound[32];
      std::snprintf(bound, sizeof bound, "%g", min);
      Fail(key, std::string(min_exclusive ? "must be more than " : "must be at least ") + bound);
    }
    return number;
  }

  std::optional<milliseconds> Duration(std::string_view key, bool zero_allowed) const {
    const toml::node* node = Find(key);
    if (node == nullptr) return std::nullopt;
    std::variant<Value, std::string> value = ValueFromToml(Kind::kDuration, *node);
    if (const auto* reason = std::get_if<std::string>(&value)) Fail(key, *reason);
    const milliseconds duration = std::get<milliseconds>(std::get<Value>(value));
    if (!zero_allowed && duration <= milliseconds::zero()) Fail(key, "must be more than 0");
    return duration;
  }

  // An array of strings; each element is checked by `check` ("" or why it is refused).
  std::optional<std::vector<std::string>> Strings(
      std::string_view key, const std::function<std::string(const std::string&)>& check) const {
    const toml::node* node = Find(key);
    if (node == nullptr) return std::nullopt;
    const toml::array* array = node->as_array();
    if (array == nullptr) Fail(key, Expected("an array of strings", *node));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const std::string element = std::string(key) + "[" + std::to_string(i) + "]";
      const toml::node& item = *array->get(i);
      const auto* s = item.as_string();
      if (s == nullptr) Fail(element, Expected("a string", item));
      if (std::string reason = check(s->get()); !reason.empty()) Fail(element, reason);
      out.push_back(s->get());
    }
    return out;
  }

 private:
  const std::string& file_;
  const std::string path_;
  const toml::table& table_;
};

// The entries of the array of tables `name` ([[name]]), each with its path "name[i]".
std::vector<std::pair<std::string, const toml::table*>> ArrayOfTables(const std::string& file,
                                                                      std::string_view name,
                                                                      const toml::node& node) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    Fail(file + ": " + std::string(name),
         Expected("an array of tables ([[" + std::string(name) + "]])", node));
  }
  std::vector<std::pair<std::string, const toml::table*>> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    std::string path = std::string(name) + "[" + std::to_string(i) + "]";
    const toml::node& item = *array->get(i);
    const toml::table* table = item.as_table();
    if (table == nullptr) Fail(file + ": " + path, Expected("a table", item));
    out.emplace_back(std::move(path), table);
  }
  return out;
}

// ---------------------------------------------------------------------------------------

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  void LoadFile(const toml::table& root) {
    for (const auto& [key, node] : root) {
      const std::string_view name = key.str();
      if (name == "server" || name == "storage" || name == "profiles" || name == "limits" ||
          name == "templates" || name == "rule_engine" || name == "log") {
        LoadScalarSection(name, node);
      } else if (name == "sites") {
        LoadSites(node);
      } else if (name == "rules") {
        LoadRules(node);
      } else if (name == "webhooks") {
        LoadWebhooks(node);
      } else if (name == "delivery") {
        LoadDelivery(node);
      } else {
        Fail(file_ + ": " + std::string(name),
             node.is_table() || node.is_array_of_tables() ? "unknown section" : "unknown key");
      }
    }
    if (config_.sites.empty()) {
      Fail(file_ + ": sites",
           "at least one [[sites]] entry is required (with name, write_key and secret_key)");
    }
  }

  void ApplyEnvironment(const std::map<std::string, std::string>& env) {
    for (const auto& [name, text] : env) {
      if (name.rfind(kEnvPrefix, 0) != 0 || name == kConfigPathVariable) continue;
      const ScalarKey* found = nullptr;
      for (const ScalarKey& key : ScalarKeys()) {
        if (key.EnvName() == name) found = &key;
      }
      const std::string where = "environment " + name;
      if (found == nullptr) {
        Fail(where,
             "unknown variable (CARTWATCH_<SECTION>_<KEY> sets a key of [server], [storage], "
             "[profiles], [limits], [templates], [rule_engine] or [log]; see docs/config.md)");
      }
      Override(*found, text, Origin{Source::kEnvironment, where});
    }
  }

  void ApplyFlags(const std::map<std::string, std::string>& flags) {
    for (const auto& [name, text] : flags) {
      const std::size_t dot = name.find('.');
      std::string key = dot == std::string::npos ? std::string() : name.substr(dot + 1);
      std::replace(key.begin(), key.end(), '-', '_');
      const ScalarKey* found =
          dot == std::string::npos ? nullptr : FindScalarKey(name.substr(0, dot), key);
      if (found == nullptr) Fail("flag " + name, "unknown setting");
      Override(*found, text, Origin{Source::kFlag, "flag " + found->FlagName()});
    }
  }

  // Checks that need several keys, after every source has been applied.
  void CheckCombinations() {
    const collector::Limits& limits = config_.limits;
    CheckNotMore("limits.events_page_default", limits.events_page_default, "limits.events_page_max",
                 limits.events_page_max);
    CheckNotMore("limits.max_message_bytes", limits.max_message_bytes, "limits.max_request_bytes",
                 limits.max_request_bytes);
    const collector::ServerOptions& server = config_.server;
    if (server.listen == server.admin_listen && PortOf(server.listen) != "0") {
      if (RankOf("server.listen") > RankOf("server.admin_listen")) {
        Fail(OriginOf("server.listen"),
             "same address as server.admin_listen (" + Quote(server.listen) + ")");
      }
      Fail(OriginOf("server.admin_listen"),
           "same address as server.listen (" + Quote(server.listen) + ")");
    }
  }

  // Reads the e-mail templates and checks that every rule's e-mail has one.
  void LoadTemplates() {
    std::string error;
    auto templates = rules::EmailTemplates::Load(config_.templates_dir, &error);
    if (!templates) Fail(OriginOf("templates.dir"), error);
    for (std::size_t i = 0; i < config_.rules.size(); ++i) {
      const RuleConfig& rule = config_.rules[i];
      const std::string path = "rules[" + std::to_string(i) + "]";
      auto check = [&](const std::vector<std::string>& actions, const std::string& name,
                       const std::string& key) {
        if (!HasEmail(actions) || !templates->Languages(name).empty()) return;
        Fail(file_ + ": " + key, "no template " + Quote(name) + " in " + Quote(config_.templates_dir) +
                                     " (it needs " + name + ".<language>.subject and " + name +
                                     ".<language>.html; templates.dir is relative to the "
                                     "working directory)");
      };
      if (rule.stages.empty()) check(rule.actions, rule.template_name, path + ".template");
      for (std::size_t j = 0; j < rule.stages.size(); ++j) {
        check(rule.stages[j].actions, rule.stages[j].template_name,
              path + ".stages[" + std::to_string(j) + "].template");
      }
    }
    config_.storage.email_templates =
        std::make_shared<const rules::EmailTemplates>(std::move(*templates));
  }

  Config Take() {
    config_.storage.rules = ToRuleSet(config_);
    config_.storage.rules.sites = std::move(site_settings_);
    config_.storage.timer_tick = config_.rule_engine.timer_tick;
    for (const WebhookConfig& webhook : config_.webhooks) {
      config_.storage.webhooks.push_back(
          storage::WebhookEndpoint{.name = webhook.name, .events = webhook.events});
    }
    config_.storage.delivery_schedule.delays.clear();
    for (auto delay : config_.delivery.retry_schedule) {
      config_.storage.delivery_schedule.delays.push_back(delay.count());
    }
    config_.storage.delivery_schedule.jitter = config_.delivery.retry_jitter;
    return std::move(config_);
  }

 private:
  // Where a value came from, in increasing precedence.
  enum class Source { kDefault, kFile, kEnvironment, kFlag };
  struct Origin {
    Source source;
    std::string where;  // "<file>: <path>", "environment X" or "flag --x"
  };

  std::map<std::string, rules::SiteSettings, std::less<>> site_settings_;  // by site name

  std::string OriginOf(const std::string& path) const {
    auto it = origin_.find(path);
    return it != origin_.end() ? it->second.where : file_ + ": " + path;
  }
  Source RankOf(const std::string& path) const {
    auto it = origin_.find(path);
    return it != origin_.end() ? it->second.source : Source::kDefault;
  }

  // Fails unless small <= big. Blames the key whose value came from the source of higher
  // precedence (the one the user most likely just changed), `small_path` on a tie.
  void CheckNotMore(const std::string& small_path, std::size_t small, const std::string& big_path,
                    std::size_t big) const {
    if (small <= big) return;
    if (RankOf(big_path) > RankOf(small_path)) {
      Fail(OriginOf(big_path), std::to_string(big) + " is less than " + small_path + " (" +
                                   std::to_string(small) + ")");
    }
    Fail(OriginOf(small_path),
         std::to_string(small) + " is more than " + big_path + " (" + std::to_string(big) + ")");
  }

  void LoadScalarSection(std::string_view section, const toml::node& node) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      Fail(file_ + ": " + std::string(section),
           Expected("a table ([" + std::string(section) + "])", node));
    }
    for (const auto& [key, value] : *table) {
      const std::string where = file_ + ": " + std::string(section) + "." + std::string(key.str());
      if (section == "limits" && key.str() == "trusted_proxies") {
        LoadTrustedProxies(where, value);
        continue;
      }
      const ScalarKey* found = FindScalarKey(section, key.str());
      if (found == nullptr) Fail(where, "unknown key");
      std::variant<Value, std::string> parsed = ValueFromToml(found->kind, value);
      if (const auto* reason = std::get_if<std::string>(&parsed)) Fail(where, *reason);
      Store(*found, std::get<Value>(parsed), Origin{Source::kFile, where});
    }
  }

  // limits.trusted_proxies: an array of addresses and address blocks (file only).
  void LoadTrustedProxies(const std::string& where, const toml::node& node) {
    const toml::array* array = node.as_array();
    if (array == nullptr) Fail(where, Expected("an array of strings", node));
    std::vector<std::string> blocks;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const std::string element = where + "[" + std::to_string(i) + "]";
      const toml::node& item = *array->get(i);
      const auto* text = item.as_string();
      if (text == nullptr) Fail(element, Expected("a string", item));
      if (!collector::IsAddressBlock(text->get())) {
        Fail(element, "\"" + text->get() +
                          "\" is not an IP address or block such as \"10.0.0.0/8\" or \"::1\"");
      }
      blocks.push_back(text->get());
    }
    config_.limits.trusted_proxies = std::move(blocks);
  }

  void Override(const ScalarKey& key, const std::string& text, Origin origin) {
    std::variant<Value, std::string> parsed = ValueFromString(key.kind, text);
    if (const auto* reason = std::get_if<std::string>(&parsed)) Fail(origin.where, *reason);
    Store(key, std::get<Value>(parsed), std::move(origin));
  }

  void Store(const ScalarKey& key, const Value& value, Origin origin) {
    if (std::string reason = key.store(config_, value); !reason.empty()) {
      Fail(origin.where, reason);
    }
    origin_[key.Path()] = std::move(origin);
  }

  void LoadSites(const toml::node& node) {
    // Which site uses each name and key, to name it in duplicate errors.
    std::map<std::string, std::string> names, write_keys, secret_keys;
    for (const auto& [path, table] : ArrayOfTables(file_, "sites", node)) {
      TableReader site(file_, path, *table);
      site.CheckKnown({"name", "write_key", "secret_key", "allowed_origins", "rate_limit",
                       "rate_burst", "timezone", "locale", "cart_url"});
      collector::Site out;
      out.name = site.RequiredString("name");
      out.write_key = site.RequiredString("write_key");
      out.secret_key = site.RequiredString("secret_key");
      out.allowed_origins =
          site.Strings("allowed_origins", CheckOrigin).value_or(std::vector<std::string>{});
      out.rate_limit = site.Number("rate_limit", 0, false).value_or(out.rate_limit);
      // Below one request in about 17 minutes a limit is a typo, and Retry-After (whole
      // seconds, computed from it) would overflow.
      if (out.rate_limit > 0 && out.rate_limit < 0.001) {
        site.Fail("rate_limit", "must be 0 (no limit) or at least 0.001 requests/s");
      }
      out.rate_burst = site.Number("rate_burst", 0, false).value_or(out.rate_burst);
      // What the rule engine's actions take from the site.
      rules::SiteSettings settings;
      if (auto timezone = site.String("timezone")) {
        if (!rules::TimeZone::Load(*timezone)) {
          site.Fail("timezone", "unknown time zone " + Quote(*timezone) +
                                    " (an IANA name such as \"Europe/Berlin\", from the tzdata "
                                    "package's /usr/share/zoneinfo)");
        }
        settings.timezone = std::move(*timezone);
      }
      if (auto locale = site.String("locale")) {
        if (rules::LanguageOf(*locale).empty() ||
            locale->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
                std::string::npos) {
          site.Fail("locale", "must be a language tag such as \"en\" or \"ru-RU\"");
        }
        settings.locale = std::move(*locale);
      }
      if (auto cart_url = site.String("cart_url")) {
        if (!cart_url->starts_with("https://") && !cart_url->starts_with("http://")) {
          site.Fail("cart_url", "must be an http:// or https:// URL");
        }
        settings.cart_url = std::move(*cart_url);
      }

      if (auto it = names.find(out.name); it != names.end()) {
        site.Fail("name", "duplicate site name " + Quote(out.name));
      }
      // Stored keys prefix the name with a one-byte length (docs/storage.md).
      if (out.name.size() > 255) site.Fail("name", "longer than 255 bytes");
      if (auto it = write_keys.find(out.write_key); it != write_keys.end()) {
        site.Fail("write_key", "duplicate write key (also used by site " + Quote(it->second) + ")");
      }
      if (auto it = secret_keys.find(out.secret_key); it != secret_keys.end()) {
        site.Fail("secret_key",
                  "duplicate secret key (also used by site " + Quote(it->second) + ")");
      }
      if (auto it = secret_keys.find(out.write_key); it != secret_keys.end()) {
        site.Fail("write_key", "same as the secret key of site " + Quote(it->second) +
                                   " (write keys are public; secret keys must not be)");
      }
      if (out.write_key == out.secret_key) {
        site.Fail("write_key",
                  "same as this site's secret key (write keys are public; "
                  "secret keys must not be)");
      }
      if (auto it = write_keys.find(out.secret_key); it != write_keys.end()) {
        site.Fail("secret_key", "same as the write key of site " + Quote(it->second) +
                                    " (write keys are public; secret keys must not be)");
      }
      site_settings_[out.name] = std::move(settings);
      names.emplace(out.name, out.name);
      write_keys.emplace(out.write_key, out.name);
      secret_keys.emplace(out.secret_key, out.name);
      config_.sites.push_back(std::move(out));
    }
  }

  void LoadRules(const toml::node& node) {
    std::set<std::string> names;
    std::set<std::uint32_t> ids;
    for (const auto& [path, table] : ArrayOfTables(file_, "rules", node)) {
      TableReader rule(file_, path, *table);
      rule.CheckKnown({"name", "kind", "idle", "stages", "after", "adaptive", "min_after", "factor",
                       "actions", "template", "cooldown", "min_cart_value", "segments", "abc"});
      RuleConfig out;
      out.name = rule.RequiredString("name");
      if (!names.insert(out.name).second) {
        rule.Fail("name", "duplicate rule name " + Quote(out.name));
      }
      if (!ids.insert(rules::RuleId(out.name)).second) {
        rule.Fail("name", "rename the rule: its name hashes like another rule's (" +
                              Quote(out.name) + ")");
      }
      if (names.size() > 255) rule.Fail("name", "at most 255 rules");
      out.kind = rule.RequiredString("kind");
      // The keys each kind reads; any other one is a mistake worth reporting.
      std::vector<std::string_view> own;
      if (out.kind == "abandoned_cart") {
        own = {"idle", "stages", "min_cart_value"};
      } else if (out.kind == "cart_filled") {
        own = {"min_cart_value"};
      } else if (out.kind == "dormant_customer") {
        own = {"after", "adaptive", "min_after", "factor"};
      } else if (out.kind == "high_value_cart") {
        own = {"factor", "min_cart_value"};
        out.factor = 2;
      } else {
        rule.Fail("kind", "unknown kind " + Quote(out.kind) +
                              " (use cart_filled, abandoned_cart, dormant_customer or "
                              "high_value_cart)");
      }
      for (std::string_view key :
           {"idle", "stages", "after", "adaptive", "min_after", "factor", "min_cart_value"}) {
        if (rule.Find(key) != nullptr && std::find(own.begin(), own.end(), key) == own.end()) {
          rule.Fail(key, "not used by kind " + Quote(out.kind));
        }
      }
      if (rule.Find("stages") != nullptr) {
        for (std::string_view key : {"idle", "actions"}) {
          if (rule.Find(key) != nullptr) {
            rule.Fail(key, "not used with stages (each stage has its own after and actions)");
          }
        }
      }
      out.idle = rule.Duration("idle", false).value_or(out.idle);
      out.after = rule.Duration("after", false).value_or(out.after);
      out.adaptive = rule.Bool("adaptive").value_or(out.adaptive);
      out.min_after = rule.Duration("min_after", false).value_or(out.min_after);
      out.factor = rule.Number("factor", 0, true).value_or(out.factor);
      out.cooldown = rule.Duration("cooldown", true).value_or(out.cooldown);
      out.min_cart_value = rule.Number("min_cart_value", 0, false).value_or(0);
      if (auto segments = rule.Strings("segments", [](const std::string& name) -> std::string {
            for (int s = 0; s <= static_cast<int>(profiles::RfmSegment::kLost); ++s) {
              if (profiles::SegmentName(static_cast<profiles::RfmSegment>(s)) == name) return {};
            }
            return "unknown RFM segment " + Quote(name) + " (docs/profiles.md lists them)";
          })) {
        out.segments = std::move(*segments);
      }
      if (auto abc = rule.Strings("abc", [](const std::string& name) -> std::string {
            if (name == "A" || name == "B" || name == "C") return {};
            return "unknown ABC class " + Quote(name) + " (use A, B or C)";
          })) {
        out.abc = std::move(*abc);
      }
      if (auto actions = Actions(rule, "actions")) out.actions = std::move(*actions);
      if (auto name = rule.String("template")) {
        if (name->empty()) rule.Fail("template", "must not be empty");
        out.template_name = std::move(*name);
      }
      if (const toml::node* stages = rule.Find("stages")) {
        for (const auto& [stage_path, stage_table] :
             ArrayOfTables(file_, path + ".stages", *stages)) {
          TableReader stage(file_, stage_path, *stage_table);
          stage.CheckKnown({"after", "actions", "template"});
          RuleStageConfig s;
          if (stage.Find("after") == nullptr) stage.Fail("after", "required key is missing");
          s.after = *stage.Duration("after", false);
          if (auto actions = Actions(stage, "actions")) s.actions = std::move(*actions);
          s.template_name = stage.String("template").value_or(out.template_name);
          if (s.template_name.empty() && HasEmail(s.actions)) {
            stage.Fail("template", "required by the email action (a template name from [templates] dir)");
          }
          if (!out.stages.empty() && s.after <= out.stages.back().after) {
            stage.Fail("after", "must be later than the stage before it");
          }
          out.stages.push_back(std::move(s));
        }
        if (out.stages.empty()) rule.Fail("stages", "must list at least one stage");
        if (out.stages.size() > 16) rule.Fail("stages", "at most 16 stages");
      } else if (HasEmail(out.actions) && out.template_name.empty()) {
        rule.Fail("template",
                  "required by the email action (a template name from [templates] dir)");
      }
      config_.rules.push_back(std::move(out));
    }
  }

  static bool HasEmail(const std::vector<std::string>& actions) {
    return std::find(actions.begin(), actions.end(), "email") != actions.end();
  }

  // The actions of a rule or a stage: non-empty, each "task" or "email", no repeats.
  static std::optional<std::vector<std::string>> Actions(const TableReader& table,
                                                         std::string_view key) {
    auto actions = table.Strings(key, [](const std::string& action) -> std::string {
      if (action == "task" || action == "email") return {};
      return "unknown action " + Quote(action) + " (use task or email)";
    });
    if (!actions) return std::nullopt;
    if (actions->empty()) table.Fail(key, "must list at least one action");
    for (std::size_t i = 1; i < actions->size(); ++i) {
      if (std::find(actions->begin(), actions->begin() + i, (*actions)[i]) !=
          actions->begin() + i) {
        table.Fail(std::string(key) + "[" + std::to_string(i) + "]",
                   "duplicate action " + Quote((*actions)[i]));
      }
    }
    return actions;
  }

  void LoadWebhooks(const toml::node& node) {
    std::set<std::string> names;
    for (const auto& [path, table] : ArrayOfTables(file_, "webhooks", node)) {
      TableReader webhook(file_, path, *table);
      webhook.CheckKnown({"name", "url", "secret", "previous_secret", "events", "allow_private",
                          "timeout", "max_in_flight", "ca_file"});
      WebhookConfig out;
      out.url = webhook.RequiredString("url");
      if (std::string reason = CheckWebhookUrl(out.url); !reason.empty()) {
        webhook.Fail("url", reason);
      }
      if (auto name = webhook.String("name")) {
        if (name->empty() || name->find_first_of("/?#% ") != std::string::npos) {
          webhook.Fail("name", "must be non-empty, without '/', '?', '#', '%' or spaces (it is "
                               "part of the URL POST /v1/endpoints/{name}/enable)");
        }
        out.name = std::move(*name);
      } else {
        out.name = HostOf(out.url);
      }
      if (!names.insert(out.name).second) {
        webhook.Fail(webhook.Find("name") ? "name" : "url",
                     "a second endpoint named " + Quote(out.name) +
                         (webhook.Find("name") ? "" : " (the URL's host; give each a name)"));
      }
      auto secret = [&](std::string_view key, bool required) {
        std::optional<std::string> value =
            required ? std::optional<std::string>(webhook.RequiredString(key)) : webhook.String(key);
        if (value && !webhooks::SecretKey(*value)) {
          // The secret itself is never echoed.
          webhook.Fail(key, R"(must be "whsec_" followed by base64 (Standard Webhooks), )"
                            R"(e.g. "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")");
        }
        return value.value_or(std::string());
      };
      out.secret = secret("secret", true);
      out.previous_secret = secret("previous_secret", false);
      out.events = webhook
                       .Strings("events",
                                [](const std::string& event) -> std::string {
                                  if (event == "task.created" || event == "email.triggered") return {};
                                  return "unknown event type " + Quote(event) +
                                         " (Cartwatch sends task.created and email.triggered)";
                                })
                       .value_or(std::vector<std::string>{});
      out.allow_private = webhook.Bool("allow_private").value_or(out.allow_private);
      out.timeout = webhook.Duration("timeout", false).value_or(out.timeout);
      if (auto n = webhook.Number("max_in_flight", 1, false)) {
        if (*n != std::floor(*n) || *n > 1000) {
          webhook.Fail("max_in_flight", "must be a whole number from 1 to 1000");
        }
        out.max_in_flight = static_cast<std::size_t>(*n);
      }
      if (auto ca = webhook.String("ca_file")) {
        if (std::FILE* f = std::fopen(ca->c_str(), "rb")) {
          std::fclose(f);
        } else {
          webhook.Fail("ca_file", "cannot read " + Quote(*ca) + ": " + std::strerror(errno));
        }
        out.ca_file = std::move(*ca);
      }
      config_.webhooks.push_back(std::move(out));
    }
  }

  // The host of an http(s) URL CheckWebhookUrl accepted.
  static std::string HostOf(const std::string& url) { return webhooks::ParseUrl(url)->host; }

  void LoadDelivery(const toml::node& node) {
    const toml::table* table = node.as_table();
    if (table == nullptr) Fail(file_ + ": delivery", Expected("a table", node));
    TableReader delivery(file_, "delivery", *table);
    delivery.CheckKnown({"tick", "retry_schedule", "retry_jitter"});
    DeliveryConfig& out = config_.delivery;
    out.tick = delivery.Duration("tick", false).value_or(out.tick);
    if (out.tick > kMaxTimeout) delivery.Fail("tick", "must be at most 24h");
    if (auto schedule = delivery.Strings("retry_schedule", [](const std::string& text) -> std::string {
          auto d = util::ParseDuration(text);
          if (!d || d->count() <= 0) return "must be a duration more than 0, like \"5s\" or \"2h\"";
          return {};
        })) {
      if (schedule->size() > 100) delivery.Fail("retry_schedule", "must have at most 100 delays");
      out.retry_schedule.clear();
      for (const std::string& text : *schedule) out.retry_schedule.push_back(*util::ParseDuration(text));
    }
    if (auto jitter = delivery.Number("retry_jitter", 0, false)) {
      if (*jitter >= 1) delivery.Fail("retry_jitter", "must be from 0 to less than 1 (a fraction of the delay)");
      out.retry_jitter = *jitter;
    }
  }

  const std::string file_;
  Config config_;
  // Key path ("limits.events_page_max") -> where its current value came from.
  std::map<std::string, Origin> origin_;
};

// The whole file, or a ConfigError naming the system's reason.
std::string ReadFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) Fail(path, std::string("cannot read file: ") + std::strerror(errno));
  std::string contents;
  char buffer[65536];
  while (true) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, file);
    contents.append(buffer, n);
    if (n < sizeof buffer) break;
  }
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) Fail(path, std::string("cannot read file: ") + std::strerror(error));
  return contents;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> EffectiveSettings(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const ScalarKey& key : ScalarKeys()) out.emplace_back(key.Path(), key.show(config));
  auto names = [](const auto& items, auto name) {
    std::string list;
    for (const auto& item : items) {
      if (!list.empty()) list += ',';
      list += name(item);
    }
    return list;
  };
  out.emplace_back("sites", names(config.sites, [](const collector::Site& s) { return s.name; }));
  out.emplace_back("rules", names(config.rules, [](const RuleConfig& r) { return r.name; }));
  out.emplace_back("webhooks", names(config.webhooks, [](const WebhookConfig& w) {
                     auto url = webhooks::ParseUrl(w.url);
                     // The path and query may hold a token: only where it goes.
                     return url ? w.name + "=" + (url->tls ? "https://" : "http://") + url->host_header : w.name;
                   }));
  return out;
}

Config LoadConfig(const std::string& path, const std::map<std::string, std::string>& env,
                  const std::map<std::string, std::string>& flags) {
  const std::string contents = ReadFile(path);
  toml::table root;
  try {
    root = toml::parse(contents, path);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    Fail(path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column),
         "TOML syntax error: " + std::string(e.description()));
  }
  Loader loader(path);
  loader.LoadFile(root);
  loader.ApplyEnvironment(env);
  loader.ApplyFlags(flags);
  loader.CheckCombinations();
  loader.LoadTemplates();
  return loader.Take();
}

rules::RuleSet ToRuleSet(const Config& config) {
  rules::RuleSet set;
  set.settings.email_cooldown = config.rule_engine.email_cooldown.count();
  set.settings.quiet_hours = rules::ParseQuietHours(config.rule_engine.quiet_hours);
  for (const RuleConfig& in : config.rules) {
    rules::Rule out;
    out.name = in.name;
    out.kind = *rules::KindNamed(in.kind);
    auto stage = [](std::chrono::milliseconds after, const std::vector<std::string>& actions,
                    const std::string& template_name) {
      rules::Stage s;
      s.after = after.count();
      s.task = std::find(actions.begin(), actions.end(), "task") != actions.end();
      s.email = std::find(actions.begin(), actions.end(), "email") != actions.end();
      if (s.email) s.email_template = template_name;
      return s;
    };
    if (!in.stages.empty()) {
      for (const RuleStageConfig& s : in.stages) {
        out.stages.push_back(stage(s.after, s.actions, s.template_name));
      }
    } else {
      const auto after = out.kind == rules::Kind::kAbandonedCart ? in.idle : std::chrono::milliseconds(0);
      out.stages.push_back(stage(after, in.actions, in.template_name));
    }
    out.conditions.min_cart_value =
        static_cast<profiles::Amount>(in.min_cart_value * profiles::kAmountScale + 0.5);
    out.conditions.segments = in.segments;
    out.conditions.abc = in.abc;
    out.factor = in.factor;
    out.after = in.after.count();
    out.adaptive = in.adaptive;
    out.min_after = in.min_after.count();
    out.cooldown = in.cooldown.count();
    set.rules.push_back(std::move(out));
  }
  return set;
}

std::map<std::string, std::string> CartwatchEnvironment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view variable = *entry;
    const std::size_t equals = variable.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view name = variable.substr(0, equals);
    if (name.rfind(kEnvPrefix, 0) != 0) continue;
    out.emplace(name, variable.substr(equals + 1));
  }
  return out;
}

}  // namespace cartwatch
