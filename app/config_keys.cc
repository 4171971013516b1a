// The config's scalar keys and the checks and conversions they share (app/config_keys.h).
#include "app/config_keys.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "rules/timezone.h"
#include "util/ascii.h"
#include "util/log.h"
#include "util/time.h"
#include "webhooks/url.h"

namespace cartwatch {
namespace config_keys {

using std::chrono::milliseconds;

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
      IntegerKey<std::uint32_t>("server", "commit_delay_us", 0, kMaxCommitDelayUs,
                                [](Config& c) -> auto& { return c.server.commit_delay_us; }),
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
      IntegerKey<std::size_t>("storage", "state_cache_mb", 0, kMaxMegabytes,
                              [](Config& c) -> auto& { return c.storage.state_cache_bytes; }, 20),
      DurationKey("storage", "memory_trim_interval", true,
                  [](Config& c) -> auto& { return c.storage.memory_trim_interval; }),
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

}  // namespace config_keys

std::vector<std::pair<std::string, std::string>> EffectiveSettings(const Config& config) {
  using namespace config_keys;  // NOLINT
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

}  // namespace cartwatch
