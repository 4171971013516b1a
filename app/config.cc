// The config loader: TOML file, then CARTWATCH_* environment variables, then flags.
// Every key is described in docs/config.md; config/cartwatch.toml is the example.
//
// Scalar keys (app/config_keys.h) are shared by the file, the environment and the flags;
// [[sites]], [[rules]] and [[webhooks]] come from the file only.

#include "app/config.h"

#include "app/config_keys.h"

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

using namespace config_keys;  // NOLINT: this file is their one user besides config_keys.cc

using std::chrono::milliseconds;

constexpr std::string_view kConfigPathVariable = "CARTWATCH_CONFIG";

[[noreturn]] void Fail(std::string_view where, std::string_view reason) {
  std::string what;
  what.reserve(where.size() + 2 + reason.size());
  what.append(where).append(": ").append(reason);
  throw ConfigError(what);
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
