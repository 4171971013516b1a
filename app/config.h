// Config: everything `cartwatch` reads from its TOML file (config/cartwatch.toml is the
// documented example), from CARTWATCH_* environment variables and from command-line flags.
// Parsed and validated once at start-up, then passed around as const&.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "collector/options.h"
#include "rules/rules.h"
#include "storage/store.h"
#include "util/log.h"

namespace cartwatch {

// One stage of an abandoned_cart rule ([[rules]] stages = [...]).
struct RuleStageConfig {
  std::chrono::milliseconds after = std::chrono::hours(1);  // after the cart's last change
  std::vector<std::string> actions = {"task"};              // "task" and/or "email"
  std::string template_name;                                // TOML key "template"
};

// One rule of the rule engine (docs/config.md, [[rules]]; docs/rules.md). Validated here;
// run by rules/ (ToRuleSet).
struct RuleConfig {
  std::string name;
  std::string kind;  // cart_filled | abandoned_cart | dormant_customer | high_value_cart
  // abandoned_cart: how long a cart must sit unchanged (its one stage). Default 1h.
  std::chrono::milliseconds idle = std::chrono::hours(1);
  // abandoned_cart: the stages, when given (then `idle` and `actions` are not).
  std::vector<RuleStageConfig> stages;
  // dormant_customer: no order for this long. Default 90d.
  std::chrono::milliseconds after = std::chrono::hours(24 * 90);
  // dormant_customer: use factor x the customer's own mean interval between orders, at
  // least min_after (default 14d).
  bool adaptive = false;
  std::chrono::milliseconds min_after = std::chrono::hours(24 * 14);
  // dormant_customer (adaptive): default 2.5; high_value_cart: cart value / AOV above which
  // the rule fires, default 2.
  double factor = 2.5;
  std::vector<std::string> actions = {"task"};  // "task" and/or "email"
  std::string template_name;                    // TOML key "template"
  // Minimum time between two firings of this rule for one customer. Default 0 (none).
  std::chrono::milliseconds cooldown = std::chrono::milliseconds(0);
  // Conditions: the cart's value at least this (cart kinds); the customer's RFM segment
  // and ABC class among these (empty: any).
  double min_cart_value = 0;
  std::vector<std::string> segments;
  std::vector<std::string> abc;
};

// [rule_engine]: what applies to every rule.
struct RuleEngineConfig {
  std::chrono::milliseconds timer_tick = std::chrono::seconds(1);
  std::chrono::milliseconds email_cooldown = std::chrono::hours(16);
  std::string quiet_hours;  // "HH:MM-HH:MM"; empty: none
};

// One webhook endpoint (docs/config.md, [[webhooks]]; docs/webhooks.md).
struct WebhookConfig {
  std::string name;                 // unique; default: the URL's host
  std::string url;
  std::string secret;               // "whsec_" + base64: signs every delivery
  // The secret being replaced, during a rotation: deliveries carry both signatures.
  std::string previous_secret;
  std::vector<std::string> events;  // "task.created", "email.triggered"; empty: every type
  bool allow_private = false;       // allow private/loopback addresses
  std::chrono::milliseconds timeout = std::chrono::seconds(15);  // connect, write, read each
  std::size_t max_in_flight = 8;    // deliveries at once to this endpoint
  std::string ca_file;              // PEM CA certificates to trust instead of the system's
};

// [delivery]: how webhook deliveries are sent and retried (docs/webhooks.md).
struct DeliveryConfig {
  std::chrono::milliseconds tick = std::chrono::seconds(1);  // how often the queues are read
  // The delays after failed attempts 1, 2, ...; after the last the delivery is dead.
  std::vector<std::chrono::milliseconds> retry_schedule = {
      std::chrono::seconds(5), std::chrono::minutes(5), std::chrono::minutes(30),
      std::chrono::hours(2),   std::chrono::hours(5),   std::chrono::hours(10),
      std::chrono::hours(10)};
  double retry_jitter = 0.1;  // each delay varies by up to this fraction
};

struct Config {
  collector::ServerOptions server;    // [server]
  storage::StoreOptions storage;      // [storage]
  collector::Limits limits;           // [limits]
  std::vector<collector::Site> sites; // [[sites]]
  std::vector<RuleConfig> rules;      // [[rules]]
  RuleEngineConfig rule_engine;       // [rule_engine]
  std::vector<WebhookConfig> webhooks;  // [[webhooks]]
  DeliveryConfig delivery;              // [delivery]
  std::string templates_dir = "config/templates";  // [templates] dir
  log::Level log_level = log::Level::kInfo;        // [log] level
};

// A config that cannot be used. what() is "<file>: <key>: <reason>", e.g.
// "config/cartwatch.toml: storage.fsyncc: unknown key".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The rules as the rule engine runs them (StoreOptions::rules is set to this by LoadConfig).
rules::RuleSet ToRuleSet(const Config& config);

// Loads `path`, then applies `env` (CARTWATCH_* variables) and then `flags` on top.
// `env` keys look like "CARTWATCH_STORAGE_DATA_DIR" (section and key, upper case, '.'
// and '-' as '_'); `flags` keys are "section.key" (main maps --listen to server.listen).
// Throws ConfigError on an unreadable file, TOML syntax error, unknown key, wrong type,
// bad duration, bad listen address, a site without name/write_key/secret_key, duplicate
// site names or write keys, an unknown rule kind, or a bad webhook.
Config LoadConfig(const std::string& path, const std::map<std::string, std::string>& env,
                  const std::map<std::string, std::string>& flags);

// The config as it is in effect, for the log line at start: every scalar key
// ("server.listen", "storage.fsync", ...) with its value as the file would write it, then
// "sites", "rules" and "webhooks" naming the configured ones. Never a secret or a write
// key; a webhook is named with its URL's scheme, host and port only.
std::vector<std::pair<std::string, std::string>> EffectiveSettings(const Config& config);

// The CARTWATCH_* variables of the current process environment.
std::map<std::string, std::string> CartwatchEnvironment();

}  // namespace cartwatch
