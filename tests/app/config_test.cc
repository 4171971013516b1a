// Tests of the config loader (app/config.h): the example config, every class of error, the
// precedence flag > environment > file > default, and defaults for missing sections.

#include "app/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

namespace cartwatch {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Map = std::map<std::string, std::string>;

// The smallest valid config: one site.
constexpr const char* kSite = R"(
[[sites]]
name = "demo"
write_key = "demo-write-key"
secret_key = "demo-secret-key"
)";

std::filesystem::path ExampleConfigPath() {
  // tests/app/config_test.cc -> config/cartwatch.toml
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "config" /
         "cartwatch.toml";
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "cartwatch_config_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `toml` to <tmp>/cfg.toml and returns the path.
  std::string Write(const std::string& toml) {
    const std::string path = (dir_ / "cfg.toml").string();
    std::ofstream(path, std::ios::binary) << toml;
    return path;
  }

  Config Load(const std::string& toml, const Map& env = {}, const Map& flags = {}) {
    return LoadConfig(Write(toml), env, flags);
  }

  // The what() of the ConfigError that loading `toml` throws ("" when it loads).
  std::string Error(const std::string& toml, const Map& env = {}, const Map& flags = {}) {
    try {
      LoadConfig(Write(toml), env, flags);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::string File() const { return (dir_ / "cfg.toml").string(); }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, ExampleConfigLoads) {
  ASSERT_TRUE(std::filesystem::exists(ExampleConfigPath())) << ExampleConfigPath();
  const Config config = LoadConfig(ExampleConfigPath().string(), {}, {});
  const Config defaults;

  EXPECT_EQ(config.server.listen, "0.0.0.0:8080");
  EXPECT_EQ(config.server.admin_listen, "127.0.0.1:9464");
  EXPECT_EQ(config.storage.data_dir, "./data");
  EXPECT_FALSE(config.storage.fsync);

  ASSERT_EQ(config.sites.size(), 1u);
  EXPECT_EQ(config.sites[0].name, "demo");
  EXPECT_EQ(config.sites[0].write_key, "demo-write-key");
  EXPECT_EQ(config.sites[0].secret_key, "demo-secret-key");
  EXPECT_THAT(config.sites[0].allowed_origins,
              ::testing::ElementsAre("http://localhost:8000", "http://127.0.0.1:8000"));

  // The rule set a store usually wants, with the templates Cartwatch ships.
  const rules::RuleSet& set = config.storage.rules;
  ASSERT_EQ(set.rules.size(), 4u);
  EXPECT_EQ(set.rules[0].kind, rules::Kind::kCartFilled);
  EXPECT_EQ(set.rules[1].kind, rules::Kind::kAbandonedCart);
  ASSERT_EQ(set.rules[1].stages.size(), 2u);
  EXPECT_EQ(set.rules[1].stages[0].after, 3600 * 1000);
  EXPECT_TRUE(set.rules[1].stages[0].task && set.rules[1].stages[0].email);
  EXPECT_EQ(set.rules[1].stages[1].email_template, "abandoned_cart_2");
  EXPECT_EQ(set.rules[2].kind, rules::Kind::kHighValueCart);
  EXPECT_EQ(set.rules[3].kind, rules::Kind::kDormantCustomer);
  EXPECT_TRUE(set.rules[3].adaptive);
  EXPECT_EQ(set.rules[3].stages[0].email_template, "win_back");
  EXPECT_TRUE(set.settings.quiet_hours.has_value());
  EXPECT_EQ(set.Site("demo").cart_url, "http://localhost:8000/cart.html");
  for (const char* name : {"abandoned_cart", "abandoned_cart_2", "win_back"}) {
    EXPECT_EQ(config.storage.email_templates->Languages(name), (std::vector<std::string>{"en", "ru"}))
        << name;
  }
  EXPECT_TRUE(config.webhooks.empty());  // commented out in the example

  // The example documents the defaults: its values must be the code's defaults.
  EXPECT_EQ(config.server.io_threads, defaults.server.io_threads);
  EXPECT_EQ(config.server.read_timeout, defaults.server.read_timeout);
  EXPECT_EQ(config.server.idle_timeout, defaults.server.idle_timeout);
  EXPECT_EQ(config.server.write_timeout, defaults.server.write_timeout);
  EXPECT_EQ(config.server.shutdown_grace, defaults.server.shutdown_grace);
  EXPECT_EQ(config.server.commit_delay_us, defaults.server.commit_delay_us);
  EXPECT_TRUE(config.server.metrics);
  EXPECT_EQ(config.storage.dedup_window, defaults.storage.dedup_window);
  EXPECT_EQ(config.storage.max_queued_messages, defaults.storage.max_queued_messages);
  EXPECT_EQ(config.storage.block_cache_bytes, defaults.storage.block_cache_bytes);
  EXPECT_EQ(config.storage.state_cache_entries, 200'000u);
  EXPECT_EQ(config.storage.state_cache_bytes, 256u << 20);
  EXPECT_EQ(config.storage.memory_trim_interval, seconds(10));
  EXPECT_EQ(config.storage.state_write_delay, seconds(10));
  EXPECT_EQ(config.storage.state_max_unwritten, 100'000u);
  EXPECT_EQ(config.storage.min_free_bytes, 64u << 20);
  EXPECT_EQ(config.server.max_connections, 10'000u);
  EXPECT_EQ(config.server.admin_max_connections, 64u);
  EXPECT_EQ(config.limits.max_receiving_bytes, 128u << 20);
  EXPECT_EQ(config.storage.wal_recovery, storage::WalRecovery::kAuto);
  EXPECT_TRUE(config.storage.compress_event_log);
  EXPECT_EQ(config.storage.profiles.session_timeout, minutes(30));
  EXPECT_DOUBLE_EQ(config.storage.profiles.expected_lifetime_years, 3);
  EXPECT_EQ(config.storage.thresholds_interval, hours(1));
  EXPECT_EQ(config.storage.write_buffer_bytes, defaults.storage.write_buffer_bytes);
  EXPECT_EQ(config.storage.max_background_jobs, defaults.storage.max_background_jobs);
  EXPECT_EQ(config.limits.max_message_bytes, defaults.limits.max_message_bytes);
  EXPECT_EQ(config.limits.max_request_bytes, defaults.limits.max_request_bytes);
  EXPECT_EQ(config.limits.max_batch_messages, defaults.limits.max_batch_messages);
  EXPECT_EQ(config.limits.max_header_bytes, defaults.limits.max_header_bytes);
  EXPECT_EQ(config.limits.events_page_default, defaults.limits.events_page_default);
  EXPECT_EQ(config.limits.events_page_max, defaults.limits.events_page_max);
  EXPECT_EQ(config.sites[0].rate_limit, 0);
  EXPECT_EQ(config.sites[0].rate_burst, 0);
  EXPECT_EQ(config.rules[0].cooldown, milliseconds(0));
  EXPECT_EQ(config.templates_dir, defaults.templates_dir);
}

TEST_F(ConfigTest, ExampleWebhookLoadsWhenUncommented) {
  std::ifstream in(ExampleConfigPath());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Uncomment the lines of the example's [[webhooks]] block.
  const std::regex key_line(R"(^# ([a-z_]+ = .*)$)");
  std::string out;
  std::istringstream lines(text);
  bool in_webhook = false;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (line == "# [[webhooks]]") {
      in_webhook = true;
      line = "[[webhooks]]";
    } else if (in_webhook && std::regex_match(line, match, key_line)) {
      line = match[1];
    } else if (line.rfind("#", 0) != 0) {
      in_webhook = false;
    }
    out += line + "\n";
  }
  ASSERT_NE(out, text) << "no commented-out [[webhooks]] block in the example";
  const Config config = Load(out);
  ASSERT_EQ(config.webhooks.size(), 1u);
  EXPECT_THAT(config.webhooks[0].url, StartsWith("https://"));
  EXPECT_THAT(config.webhooks[0].secret, StartsWith("whsec_"));
  EXPECT_FALSE(config.webhooks[0].events.empty());
}

TEST_F(ConfigTest, EveryKeyIsRead) {
  const Config config = Load(R"(
[server]
listen = "127.0.0.1:18080"
admin_listen = "[::1]:19464"
io_threads = 3
read_timeout = "5s"
idle_timeout = "2m"
write_timeout = "250ms"
shutdown_grace = "0"
commit_delay_us = 0
max_connections = 300
metrics = false

[storage]
data_dir = "/var/lib/cartwatch"
fsync = true
dedup_window = "2d"
dedup_max_ids = 5000
max_queued_messages = 1000
max_queued_mb = 32
retention = "30d"
block_cache_mb = 128
write_buffer_mb = 16
max_background_jobs = 4
state_cache_entries = 77
state_cache_mb = 12
memory_trim_interval = "0s"
state_write_delay = "0s"
state_max_unwritten = 500
min_free_mb = 512
wal_recovery = "point_in_time"
compress_event_log = false

[profiles]
session_timeout = "45m"
ltv_lifetime_years = 5
thresholds_interval = "10m"

[limits]
max_message_bytes = 1024
max_request_bytes = 4096
max_batch_messages = 10
max_header_bytes = 2048
max_receiving_mb = 0
client_rate_limit = 20
client_rate_burst = 40
trusted_proxies = ["10.0.0.0/8", "::1"]
events_page_default = 5
events_page_max = 50

[[sites]]
name = "a"
write_key = "wa"
secret_key = "sa"
allowed_origins = ["https://a.example", "*"]
rate_limit = 12.5
rate_burst = 40

[[sites]]
name = "b"
write_key = "wb"
secret_key = "sb"

[[rules]]
name = "dormant"
kind = "dormant_customer"
after = "60d"
adaptive = true
factor = 3
actions = ["email"]
template = "win_back"
cooldown = "1w"

[[rules]]
name = "big"
kind = "high_value_cart"
factor = 1.5

[[webhooks]]
url = "https://crm.example.com/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
events = ["task.created"]
allow_private = true

[templates]
dir = "config/templates/../templates"
)");
  EXPECT_EQ(config.server.listen, "127.0.0.1:18080");
  EXPECT_EQ(config.server.admin_listen, "[::1]:19464");
  EXPECT_EQ(config.server.io_threads, 3);
  EXPECT_EQ(config.server.read_timeout, seconds(5));
  EXPECT_EQ(config.server.idle_timeout, minutes(2));
  EXPECT_EQ(config.server.write_timeout, milliseconds(250));
  EXPECT_EQ(config.server.shutdown_grace, milliseconds(0));
  EXPECT_EQ(config.server.commit_delay_us, 0u);
  EXPECT_EQ(config.storage.data_dir, "/var/lib/cartwatch");
  EXPECT_TRUE(config.storage.fsync);
  EXPECT_EQ(config.storage.dedup_window, hours(48));
  EXPECT_EQ(config.storage.dedup_max_ids, 5000u);
  EXPECT_EQ(config.storage.max_queued_messages, 1000u);
  EXPECT_EQ(config.storage.max_queued_bytes, 32u << 20);
  EXPECT_EQ(config.storage.retention, hours(24 * 30));
  EXPECT_EQ(config.storage.block_cache_bytes, 128u << 20);
  EXPECT_EQ(config.storage.write_buffer_bytes, 16u << 20);
  EXPECT_EQ(config.storage.max_background_jobs, 4);
  EXPECT_EQ(config.storage.state_cache_entries, 77u);
  EXPECT_EQ(config.storage.state_cache_bytes, 12u << 20);
  EXPECT_EQ(config.storage.memory_trim_interval, seconds(0));
  EXPECT_EQ(config.storage.state_write_delay, seconds(0));
  EXPECT_EQ(config.storage.state_max_unwritten, 500u);
  EXPECT_EQ(config.storage.min_free_bytes, 512u << 20);
  EXPECT_EQ(config.server.max_connections, 300u);
  EXPECT_FALSE(config.server.metrics);
  EXPECT_EQ(config.limits.max_receiving_bytes, 0u);
  EXPECT_DOUBLE_EQ(config.limits.client_rate_limit, 20);
  EXPECT_DOUBLE_EQ(config.limits.client_rate_burst, 40);
  EXPECT_EQ(config.limits.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(config.storage.wal_recovery, storage::WalRecovery::kPointInTime);
  EXPECT_FALSE(config.storage.compress_event_log);
  EXPECT_EQ(config.storage.profiles.session_timeout, minutes(45));
  EXPECT_DOUBLE_EQ(config.storage.profiles.expected_lifetime_years, 5);
  EXPECT_EQ(config.storage.thresholds_interval, minutes(10));
  EXPECT_EQ(config.limits.max_message_bytes, 1024u);
  EXPECT_EQ(config.limits.max_request_bytes, 4096u);
  EXPECT_EQ(config.limits.max_batch_messages, 10u);
  EXPECT_EQ(config.limits.max_header_bytes, 2048u);
  EXPECT_EQ(config.limits.events_page_default, 5u);
  EXPECT_EQ(config.limits.events_page_max, 50u);

  ASSERT_EQ(config.sites.size(), 2u);
  EXPECT_EQ(config.sites[0].name, "a");
  EXPECT_THAT(config.sites[0].allowed_origins, ::testing::ElementsAre("https://a.example", "*"));
  EXPECT_DOUBLE_EQ(config.sites[0].rate_limit, 12.5);
  EXPECT_DOUBLE_EQ(config.sites[0].rate_burst, 40);
  EXPECT_EQ(config.sites[1].write_key, "wb");
  EXPECT_TRUE(config.sites[1].allowed_origins.empty());

  ASSERT_EQ(config.rules.size(), 2u);
  EXPECT_EQ(config.rules[0].kind, "dormant_customer");
  EXPECT_EQ(config.rules[0].after, hours(24 * 60));
  EXPECT_TRUE(config.rules[0].adaptive);
  EXPECT_DOUBLE_EQ(config.rules[0].factor, 3);
  EXPECT_THAT(config.rules[0].actions, ::testing::ElementsAre("email"));
  EXPECT_EQ(config.rules[0].template_name, "win_back");
  EXPECT_EQ(config.rules[0].cooldown, hours(24 * 7));
  EXPECT_EQ(config.rules[1].kind, "high_value_cart");
  EXPECT_DOUBLE_EQ(config.rules[1].factor, 1.5);
  EXPECT_THAT(config.rules[1].actions, ::testing::ElementsAre("task"));  // default

  ASSERT_EQ(config.webhooks.size(), 1u);
  EXPECT_EQ(config.webhooks[0].url, "https://crm.example.com/hooks");
  EXPECT_EQ(config.webhooks[0].secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_THAT(config.webhooks[0].events, ::testing::ElementsAre("task.created"));
  EXPECT_TRUE(config.webhooks[0].allow_private);
  EXPECT_EQ(config.templates_dir, "config/templates/../templates");
}

TEST_F(ConfigTest, MissingSectionsGetDefaults) {
  const Config config = Load(kSite);
  const Config defaults;
  EXPECT_EQ(config.server.listen, "0.0.0.0:8080");
  EXPECT_EQ(config.server.admin_listen, "127.0.0.1:9464");
  EXPECT_EQ(config.server.io_threads, 0);
  EXPECT_EQ(config.server.read_timeout, seconds(10));
  EXPECT_EQ(config.server.idle_timeout, seconds(60));
  EXPECT_EQ(config.storage.data_dir, "./data");
  EXPECT_FALSE(config.storage.fsync);
  EXPECT_EQ(config.storage.dedup_window, hours(24));
  EXPECT_EQ(config.storage.block_cache_bytes, defaults.storage.block_cache_bytes);
  EXPECT_EQ(config.limits.max_message_bytes, 32u * 1024);
  EXPECT_EQ(config.limits.max_request_bytes, 500u * 1024);
  EXPECT_EQ(config.limits.max_batch_messages, 2500u);
  EXPECT_EQ(config.limits.events_page_max, 10000u);
  EXPECT_EQ(config.templates_dir, "config/templates");
  EXPECT_TRUE(config.rules.empty());
  EXPECT_TRUE(config.webhooks.empty());
  ASSERT_EQ(config.sites.size(), 1u);
  EXPECT_TRUE(config.sites[0].allowed_origins.empty());
}

TEST_F(ConfigTest, RuleDefaults) {
  const Config config = Load(std::string(kSite) + R"(
[[rules]]
name = "cart"
kind = "abandoned_cart"

[[rules]]
name = "dormant"
kind = "dormant_customer"
)");
  ASSERT_EQ(config.rules.size(), 2u);
  EXPECT_EQ(config.rules[0].idle, hours(1));
  EXPECT_THAT(config.rules[0].actions, ::testing::ElementsAre("task"));
  EXPECT_EQ(config.rules[0].cooldown, milliseconds(0));
  EXPECT_EQ(config.rules[1].after, hours(24 * 90));
  EXPECT_FALSE(config.rules[1].adaptive);
  EXPECT_DOUBLE_EQ(config.rules[1].factor, 2.5);
}

TEST_F(ConfigTest, UnreadableFile) {
  const std::string path = (dir_ / "missing.toml").string();
  try {
    LoadConfig(path, {}, {});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read file: No such file or directory");
  }
}

TEST_F(ConfigTest, DirectoryIsUnreadable) {
  try {
    LoadConfig(dir_.string(), {}, {});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir_.string() + ": cannot read file: "));
  }
}

TEST_F(ConfigTest, SyntaxErrorHasLineAndColumn) {
  const std::string what = Error(std::string(kSite) + "\n[server]\nlisten = \"0.0.0.0:8080\n");
  EXPECT_THAT(what, StartsWith(File() + ":8:"));
  EXPECT_THAT(what, HasSubstr("TOML syntax error"));
}

TEST_F(ConfigTest, DuplicateTomlKeyIsASyntaxError) {
  const std::string what = Error(std::string(kSite) + "[storage]\nfsync = true\nfsync = false\n");
  EXPECT_THAT(what, StartsWith(File() + ":8:"));
}

// One bad file and the key path and reason its error must name.
struct ErrorCase {
  const char* name;
  std::string toml;  // appended to kSite unless `replace_site`
  std::string key;
  std::string reason;
  bool replace_site = false;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(ConfigErrorTest, NamesFileKeyAndReason) {
  const ErrorCase& c = GetParam();
  const std::string what = Error(c.replace_site ? c.toml : std::string(kSite) + c.toml);
  ASSERT_FALSE(what.empty()) << "loaded without error";
  EXPECT_THAT(what, StartsWith(File() + ": " + c.key + ": "));
  EXPECT_THAT(what, HasSubstr(c.reason));
}

// A second site with the given keys.
std::string Site(const std::string& name, const std::string& write_key,
                 const std::string& secret_key) {
  return "[[sites]]\nname = \"" + name + "\"\nwrite_key = \"" + write_key + "\"\nsecret_key = \"" +
         secret_key + "\"\n";
}

std::string Rule(const std::string& body) { return "[[rules]]\nname = \"r\"\n" + body + "\n"; }

std::string Webhook(const std::string& body) { return "[[webhooks]]\n" + body + "\n"; }

constexpr const char* kSecret = R"(secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")";
constexpr const char* kUrl = R"(url = "https://crm.example.com/hooks")";

INSTANTIATE_TEST_SUITE_P(
    Errors, ConfigErrorTest,
    ::testing::Values(
        // Unknown keys at every level.
        ErrorCase{"UnknownStorageKey", "[storage]\nfsyncc = true\n", "storage.fsyncc",
                  "unknown key"},
        ErrorCase{"UnknownServerKey", "[server]\nport = 8080\n", "server.port", "unknown key"},
        ErrorCase{"UnknownLimitsKey", "[limits]\nmax_body = 1\n", "limits.max_body", "unknown key"},
        ErrorCase{"UnknownProfilesKey", "[profiles]\nsession = \"1h\"\n", "profiles.session",
                  "unknown key"},
        ErrorCase{"ZeroSessionTimeout", "[profiles]\nsession_timeout = \"0\"\n",
                  "profiles.session_timeout", "must be more than 0"},
        ErrorCase{"LtvLifetimeOutOfRange", "[profiles]\nltv_lifetime_years = 0\n",
                  "profiles.ltv_lifetime_years", "must be at least 1"},
        ErrorCase{"UnknownTemplatesKey", "[templates]\npath = \"x\"\n", "templates.path",
                  "unknown key"},
        ErrorCase{"UnknownSection", "[serverr]\nlisten = \"x\"\n", "serverr", "unknown section"},
        ErrorCase{"UnknownTopLevelKey", std::string("listen = \"x\"\n") + kSite, "listen",
                  "unknown key", true},
        ErrorCase{"UnknownSiteKey", Site("b", "wb", "sb") + "writekey = \"x\"\n",
                  "sites[1].writekey", "unknown key"},
        ErrorCase{"UnknownRuleKey", Rule("kind = \"abandoned_cart\"\ndelay = \"1h\""),
                  "rules[0].delay", "unknown key"},
        ErrorCase{"UnknownWebhookKey",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nretries = 3"),
                  "webhooks[0].retries", "unknown key"},
        // Types.
        ErrorCase{"BoolAsString", "[storage]\nfsync = \"true\"\n", "storage.fsync",
                  "expected a boolean, got string"},
        ErrorCase{"IntegerAsString", "[limits]\nmax_request_bytes = \"1\"\n",
                  "limits.max_request_bytes", "expected an integer, got string"},
        ErrorCase{"IntegerAsFloat", "[server]\nio_threads = 2.0\n", "server.io_threads",
                  "expected an integer, got float"},
        ErrorCase{"StringAsInteger", "[storage]\ndata_dir = 5\n", "storage.data_dir",
                  "expected a string, got integer"},
        ErrorCase{"DurationAsInteger", "[server]\nread_timeout = 10\n", "server.read_timeout",
                  "expected a duration string"},
        ErrorCase{"SectionNotATable", std::string("server = 1\n") + kSite, "server",
                  "expected a table ([server]), got integer", true},
        ErrorCase{"SectionIsArrayOfTables", "[[storage]]\nfsync = true\n", "storage",
                  "expected a table ([storage]), got array"},
        ErrorCase{"KeyAfterSiteBelongsToSite", "server = 1\n", "sites[0].server", "unknown key"},
        ErrorCase{"SitesNotAnArray", "[sites]\nname = \"a\"\n", "sites",
                  "expected an array of tables ([[sites]]), got table", true},
        ErrorCase{"OriginsNotArray", Site("b", "wb", "sb") + "allowed_origins = \"*\"\n",
                  "sites[1].allowed_origins", "expected an array of strings, got string"},
        ErrorCase{"OriginNotString", Site("b", "wb", "sb") + "allowed_origins = [\"*\", 1]\n",
                  "sites[1].allowed_origins[1]", "expected a string, got integer"},
        ErrorCase{"RateLimitString", Site("b", "wb", "sb") + "rate_limit = \"10\"\n",
                  "sites[1].rate_limit", "expected a number, got string"},
        ErrorCase{"AdaptiveString", Rule("kind = \"dormant_customer\"\nadaptive = \"yes\""),
                  "rules[0].adaptive", "expected a boolean, got string"},
        // Durations.
        ErrorCase{"BadDuration", "[server]\nread_timeout = \"10 parsecs\"\n", "server.read_timeout",
                  R"(bad duration "10 parsecs" (use e.g. "15s", "1h", "90d"))"},
        ErrorCase{"DurationWithoutUnit", "[storage]\ndedup_window = \"24\"\n",
                  "storage.dedup_window", R"(bad duration "24")"},
        ErrorCase{"ZeroTimeout", "[server]\nidle_timeout = \"0s\"\n", "server.idle_timeout",
                  "must be more than 0"},
        ErrorCase{"HugeTimeout", "[server]\nidle_timeout = \"20000w\"\n", "server.idle_timeout",
                  "must be at most 1 day"},
        ErrorCase{"HugeCommitDelay", "[server]\ncommit_delay_us = 100001\n", "server.commit_delay_us",
                  "must be at most 100000, got 100001"},
        ErrorCase{"NegativeCommitDelay", "[server]\ncommit_delay_us = -1\n",
                  "server.commit_delay_us", "must be at least 0, got -1"},
        ErrorCase{"BadTrimInterval", "[storage]\nmemory_trim_interval = \"often\"\n",
                  "storage.memory_trim_interval", R"(bad duration "often")"},
        ErrorCase{"NegativeStateCache", "[storage]\nstate_cache_mb = -1\n", "storage.state_cache_mb",
                  "must be at least 0, got -1"},
        ErrorCase{"HugeStateCache", "[storage]\nstate_cache_mb = 99999999\n",
                  "storage.state_cache_mb", "must be at most"},
        ErrorCase{"HugeRetention", "[storage]\nretention = \"100000w\"\n", "storage.retention",
                  "must be at most 100 years"},
        ErrorCase{"TinyRateLimit", Site("b", "wb", "sb") + "rate_limit = 1e-300\n",
                  "sites[1].rate_limit", "at least 0.001"},
        ErrorCase{"OriginPattern", Site("b", "wb", "sb") + "allowed_origins = [\"https://*.shop.example\"]\n",
                  "sites[1].allowed_origins[0]", "patterns are not supported"},
        ErrorCase{"OriginDefaultPort", Site("b", "wb", "sb") + "allowed_origins = [\"https://shop.example:443\"]\n",
                  "sites[1].allowed_origins[0]", "without the port"},
        ErrorCase{"OriginQuery", Site("b", "wb", "sb") + "allowed_origins = [\"https://a?x\"]\n",
                  "sites[1].allowed_origins[0]", "bad origin"},
        ErrorCase{"ZeroDedupWindow", "[storage]\ndedup_window = \"0\"\n", "storage.dedup_window",
                  "must be more than 0"},
        ErrorCase{"ZeroIdle", Rule("kind = \"abandoned_cart\"\nidle = \"0m\""), "rules[0].idle",
                  "must be more than 0"},
        ErrorCase{"BadCooldown", Rule("kind = \"abandoned_cart\"\ncooldown = \"soon\""),
                  "rules[0].cooldown", R"(bad duration "soon")"},
        // Listen addresses.
        ErrorCase{"ListenNoPort", "[server]\nlisten = \"0.0.0.0\"\n", "server.listen",
                  R"(bad listen address "0.0.0.0")"},
        ErrorCase{"ListenNoHost", "[server]\nlisten = \":8080\"\n", "server.listen",
                  "bad listen address"},
        ErrorCase{"ListenPortTooBig", "[server]\nlisten = \"0.0.0.0:65536\"\n", "server.listen",
                  "port must be 0-65535"},
        ErrorCase{"ListenPortNotNumber", "[server]\nadmin_listen = \"localhost:http\"\n",
                  "server.admin_listen", "bad listen address"},
        ErrorCase{"ListenUnbracketedV6", "[server]\nlisten = \"::1:8080\"\n", "server.listen",
                  "[v6]:port"},
        ErrorCase{"ListenBadV6", "[server]\nlisten = \"[nope]:8080\"\n", "server.listen",
                  "bad listen address"},
        ErrorCase{"ListenSameAsAdmin",
                  "[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n",
                  "server.admin_listen", "same address as server.listen"},
        // Integers.
        ErrorCase{"ZeroLimit", "[limits]\nmax_batch_messages = 0\n", "limits.max_batch_messages",
                  "must be at least 1, got 0"},
        ErrorCase{"NegativeLimit", "[limits]\nmax_header_bytes = -1\n", "limits.max_header_bytes",
                  "must be at least 1, got -1"},
        ErrorCase{"NegativeIoThreads", "[server]\nio_threads = -2\n", "server.io_threads",
                  "must be at least 0"},
        ErrorCase{"HugeBlockCache", "[storage]\nblock_cache_mb = 99999999\n",
                  "storage.block_cache_mb", "must be at most"},
        ErrorCase{"TinyDedupIndex", "[storage]\ndedup_max_ids = 10\n", "storage.dedup_max_ids",
                  "must be at least 1000, got 10"},
        ErrorCase{"ZeroBackgroundJobs", "[storage]\nmax_background_jobs = 0\n",
                  "storage.max_background_jobs", "must be at least 1"},
        ErrorCase{"BadTrustedProxy", "[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n",
                  "limits.trusted_proxies[1]", R"("proxy.local" is not an IP address or block)"},
        ErrorCase{"TrustedProxiesNotAnArray", "[limits]\ntrusted_proxies = \"10.0.0.0/8\"\n",
                  "limits.trusted_proxies", "expected an array of strings"},
        ErrorCase{"UnknownWalRecovery", "[storage]\nwal_recovery = \"lenient\"\n",
                  "storage.wal_recovery",
                  R"(must be "auto", "strict" or "point_in_time", got "lenient")"},
        ErrorCase{"ZeroMaxUnwritten", "[storage]\nstate_max_unwritten = 0\n",
                  "storage.state_max_unwritten", "must be at least 1, got 0"},
        ErrorCase{"StateWriteDelayWithoutUnit", "[storage]\nstate_write_delay = \"10\"\n",
                  "storage.state_write_delay", R"(bad duration "10")"},
        ErrorCase{"EmptyDataDir", "[storage]\ndata_dir = \"\"\n", "storage.data_dir",
                  "must not be empty"},
        ErrorCase{"PageDefaultAboveMax",
                  "[limits]\nevents_page_default = 20\nevents_page_max = 10\n",
                  "limits.events_page_default", "20 is more than limits.events_page_max (10)"},
        ErrorCase{"PageMaxBelowDefault", "[limits]\nevents_page_max = 10\n",
                  "limits.events_page_max", "10 is less than limits.events_page_default (1000)"},
        ErrorCase{"MessageAboveRequest",
                  "[limits]\nmax_message_bytes = 2000\nmax_request_bytes = 1000\n",
                  "limits.max_message_bytes", "2000 is more than limits.max_request_bytes (1000)"},
        ErrorCase{"RequestBelowMessage", "[limits]\nmax_request_bytes = 1000\n",
                  "limits.max_request_bytes", "is less than limits.max_message_bytes (32768)"},
        // Sites.
        ErrorCase{"NoSites", "[server]\nlisten = \"0.0.0.0:8080\"\n", "sites",
                  "at least one [[sites]]", true},
        ErrorCase{"EmptyFile", "", "sites", "at least one [[sites]]", true},
        ErrorCase{"SiteWithoutName", "[[sites]]\nwrite_key = \"w\"\nsecret_key = \"s\"\n",
                  "sites[0].name", "required key is missing", true},
        ErrorCase{"SiteWithoutWriteKey", "[[sites]]\nname = \"a\"\nsecret_key = \"s\"\n",
                  "sites[0].write_key", "required key is missing", true},
        ErrorCase{"SiteEmptySecretKey", Site("a", "w", ""), "sites[0].secret_key",
                  "must not be empty", true},
        ErrorCase{"DuplicateSiteName", Site("demo", "w2", "s2"), "sites[1].name",
                  R"(duplicate site name "demo")"},
        ErrorCase{"SiteNameTooLong", Site(std::string(256, 'n'), "w2", "s2"), "sites[1].name",
                  "longer than 255 bytes"},
        ErrorCase{"DuplicateWriteKey", Site("b", "demo-write-key", "s2"), "sites[1].write_key",
                  R"(duplicate write key (also used by site "demo"))"},
        ErrorCase{"DuplicateSecretKey", Site("b", "w2", "demo-secret-key"), "sites[1].secret_key",
                  R"(duplicate secret key (also used by site "demo"))"},
        ErrorCase{"WriteKeyIsAnotherSitesSecret", Site("b", "demo-secret-key", "s2"),
                  "sites[1].write_key", R"(same as the secret key of site "demo")"},
        ErrorCase{"SecretKeyIsAnotherSitesWriteKey", Site("b", "w2", "demo-write-key"),
                  "sites[1].secret_key", R"(same as the write key of site "demo")"},
        ErrorCase{"WriteKeyIsOwnSecret", Site("a", "same", "same"), "sites[0].write_key",
                  "same as this site's secret key", true},
        ErrorCase{"OriginWithPath",
                  Site("b", "wb", "sb") + "allowed_origins = [\"https://shop.example/\"]\n",
                  "sites[1].allowed_origins[0]", R"(bad origin "https://shop.example/")"},
        ErrorCase{"OriginWithoutScheme",
                  Site("b", "wb", "sb") + "allowed_origins = [\"shop.example\"]\n",
                  "sites[1].allowed_origins[0]", "bad origin"},
        ErrorCase{"NegativeRateLimit", Site("b", "wb", "sb") + "rate_limit = -1\n",
                  "sites[1].rate_limit", "must be at least 0"},
        ErrorCase{"InfiniteRateBurst", Site("b", "wb", "sb") + "rate_burst = inf\n",
                  "sites[1].rate_burst", "must be a finite number"},
        // Rules.
        ErrorCase{"RuleWithoutKind", Rule(""), "rules[0].kind", "required key is missing"},
        ErrorCase{
            "UnknownRuleKind", Rule("kind = \"lost_cart\""), "rules[0].kind",
            R"(unknown kind "lost_cart" (use cart_filled, abandoned_cart, dormant_customer or high_value_cart))"},
        ErrorCase{"StagesWithIdle",
                  Rule("kind = \"abandoned_cart\"\nidle = \"1h\"\nstages = [{after = \"1h\"}]"),
                  "rules[0].idle", "not used with stages"},
        ErrorCase{"StagesOutOfOrder",
                  Rule("kind = \"abandoned_cart\"\nstages = [{after = \"2h\"}, {after = \"1h\"}]"),
                  "rules[0].stages[1].after", "must be later than the stage before it"},
        ErrorCase{"StageWithoutAfter", Rule("kind = \"abandoned_cart\"\nstages = [{actions = [\"task\"]}]"),
                  "rules[0].stages[0].after", "required key is missing"},
        ErrorCase{"StageEmailWithoutTemplate",
                  Rule("kind = \"abandoned_cart\"\nstages = [{after = \"1h\", actions = [\"email\"]}]"),
                  "rules[0].stages[0].template", "required by the email action"},
        ErrorCase{"StagesOnHighValue", Rule("kind = \"high_value_cart\"\nstages = []"),
                  "rules[0].stages", R"(not used by kind "high_value_cart")"},
        ErrorCase{"UnknownSegment", Rule("kind = \"cart_filled\"\nsegments = [\"vip\"]"),
                  "rules[0].segments[0]", R"(unknown RFM segment "vip")"},
        ErrorCase{"UnknownAbcClass", Rule("kind = \"cart_filled\"\nabc = [\"D\"]"),
                  "rules[0].abc[0]", R"(unknown ABC class "D" (use A, B or C))"},
        ErrorCase{"MinCartValueOnDormant", Rule("kind = \"dormant_customer\"\nmin_cart_value = 10"),
                  "rules[0].min_cart_value", R"(not used by kind "dormant_customer")"},
        ErrorCase{"NoSuchTemplate",
                  Rule("kind = \"abandoned_cart\"\nactions = [\"email\"]\ntemplate = \"gone\""),
                  "rules[0].template", R"(no template "gone" in "config/templates")"},
        ErrorCase{"NoSuchStageTemplate",
                  Rule("kind = \"abandoned_cart\"\nstages = [{after = \"1h\", actions = [\"email\"], template = \"gone\"}]"),
                  "rules[0].stages[0].template", R"(no template "gone")"},
        ErrorCase{"UnknownSiteTimeZone", Site("b", "wb", "sb") + "timezone = \"Mars/Base\"\n",
                  "sites[1].timezone", R"(unknown time zone "Mars/Base")"},
        ErrorCase{"SiteLocaleNotATag", Site("b", "wb", "sb") + "locale = \"<en>\"\n",
                  "sites[1].locale", "must be a language tag"},
        ErrorCase{"SiteCartUrlNotHttp", Site("b", "wb", "sb") + "cart_url = \"javascript:x\"\n",
                  "sites[1].cart_url", "must be an http:// or https:// URL"},
        ErrorCase{"BadQuietHours", "[rule_engine]\nquiet_hours = \"22-08\"\n",
                  "rule_engine.quiet_hours", "must be \"HH:MM-HH:MM\""},
        ErrorCase{"ZeroTimerTick", "[rule_engine]\ntimer_tick = \"0s\"\n",
                  "rule_engine.timer_tick", "must be more than 0"},
        ErrorCase{"UnknownAction", Rule("kind = \"abandoned_cart\"\nactions = [\"task\", \"sms\"]"),
                  "rules[0].actions[1]", R"(unknown action "sms" (use task or email))"},
        ErrorCase{"NoActions", Rule("kind = \"abandoned_cart\"\nactions = []"), "rules[0].actions",
                  "at least one action"},
        ErrorCase{"DuplicateAction",
                  Rule("kind = \"abandoned_cart\"\nactions = [\"task\", \"task\"]"),
                  "rules[0].actions[1]", R"(duplicate action "task")"},
        ErrorCase{"EmailWithoutTemplate",
                  Rule("kind = \"abandoned_cart\"\nactions = [\"task\", \"email\"]"),
                  "rules[0].template", "required by the email action"},
        ErrorCase{"KeyOfAnotherKind", Rule("kind = \"abandoned_cart\"\nafter = \"90d\""),
                  "rules[0].after", R"(not used by kind "abandoned_cart")"},
        ErrorCase{"IdleOnDormant", Rule("kind = \"dormant_customer\"\nidle = \"1h\""),
                  "rules[0].idle", R"(not used by kind "dormant_customer")"},
        ErrorCase{"ZeroFactor", Rule("kind = \"high_value_cart\"\nfactor = 0"), "rules[0].factor",
                  "must be more than 0"},
        ErrorCase{"DuplicateRuleName",
                  Rule("kind = \"abandoned_cart\"") + Rule("kind = \"high_value_cart\""),
                  "rules[1].name", R"(duplicate rule name "r")"},
        // Webhooks.
        ErrorCase{"WebhookFtpUrl",
                  Webhook(std::string("url = \"ftp://crm.example.com/\"\n") + kSecret),
                  "webhooks[0].url", "must be an http:// or https:// URL"},
        ErrorCase{"WebhookUrlWithoutHost", Webhook(std::string("url = \"https:///x\"\n") + kSecret),
                  "webhooks[0].url", "must be an http:// or https:// URL"},
        ErrorCase{"WebhookWithoutUrl", Webhook(kSecret), "webhooks[0].url",
                  "required key is missing"},
        ErrorCase{"WebhookSecretPrefix",
                  Webhook(std::string(kUrl) + "\nsecret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""),
                  "webhooks[0].secret", R"(must be "whsec_" followed by base64)"},
        ErrorCase{"WebhookSecretNotBase64",
                  Webhook(std::string(kUrl) + "\nsecret = \"whsec_not base64!\""),
                  "webhooks[0].secret", R"(must be "whsec_" followed by base64)"},
        ErrorCase{"WebhookSecretEmpty", Webhook(std::string(kUrl) + "\nsecret = \"whsec_\""),
                  "webhooks[0].secret", R"(must be "whsec_" followed by base64)"},
        ErrorCase{"WebhookEventsNotArray",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nevents = \"task.created\""),
                  "webhooks[0].events", "expected an array of strings"},
        ErrorCase{"WebhookUnknownEvent",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nevents = [\"task.done\"]"),
                  "webhooks[0].events[0]", R"(unknown event type "task.done")"},
        ErrorCase{"WebhookPreviousSecretNotWhsec",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nprevious_secret = \"old\""),
                  "webhooks[0].previous_secret", R"(must be "whsec_" followed by base64)"},
        ErrorCase{"WebhookSameHostTwice",
                  Webhook(std::string(kUrl) + "\n" + kSecret) +
                      Webhook(std::string("url = \"https://crm.example.com/other\"\n") + kSecret),
                  "webhooks[1].url", R"(a second endpoint named "crm.example.com" (the URL's host; give each a name))"},
        ErrorCase{"WebhookNameWithSlash",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nname = \"a/b\""),
                  "webhooks[0].name", "must be non-empty"},
        ErrorCase{"WebhookZeroInFlight",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nmax_in_flight = 0"),
                  "webhooks[0].max_in_flight", "must be at least 1"},
        ErrorCase{"WebhookCaFileMissing",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nca_file = \"/nonexistent/ca.pem\""),
                  "webhooks[0].ca_file", R"(cannot read "/nonexistent/ca.pem")"},
        ErrorCase{"WebhookAllowPrivateString",
                  Webhook(std::string(kUrl) + "\n" + kSecret + "\nallow_private = \"yes\""),
                  "webhooks[0].allow_private", "expected a boolean, got string"},
        ErrorCase{"WebhookUrlWithUserInfo",
                  Webhook(std::string("url = \"https://me:pw@crm.example.com/\"\n") + kSecret),
                  "webhooks[0].url", "no user info"},
        ErrorCase{"WebhookUrlBadPort",
                  Webhook(std::string("url = \"https://crm.example.com:99999/\"\n") + kSecret),
                  "webhooks[0].url", "a port from 1 to 65535"},
        ErrorCase{"DeliveryUnknownKey", "[delivery]\nretries = 3\n", "delivery.retries", "unknown key"},
        ErrorCase{"DeliveryScheduleNotDuration", "[delivery]\nretry_schedule = [\"5s\", \"soon\"]\n",
                  "delivery.retry_schedule[1]", "must be a duration more than 0"},
        ErrorCase{"DeliveryJitterTooLarge", "[delivery]\nretry_jitter = 1.5\n", "delivery.retry_jitter",
                  "must be from 0 to less than 1"},
        ErrorCase{"DeliveryTickZero", "[delivery]\ntick = \"0s\"\n", "delivery.tick", "must be more than 0"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

TEST_F(ConfigTest, DeliverySettingsReachTheStore) {
  const Config defaults;
  Config config = Load(std::string(kSite) + Webhook(std::string(kUrl) + "\n" + kSecret +
                                                    "\nevents = [\"email.triggered\"]"));
  EXPECT_EQ(config.delivery.tick, defaults.delivery.tick);
  EXPECT_EQ(config.storage.delivery_schedule.delays,
            (std::vector<std::int64_t>{5'000, 300'000, 1'800'000, 7'200'000, 18'000'000, 36'000'000, 36'000'000}));
  ASSERT_EQ(config.storage.webhooks.size(), 1u);
  EXPECT_EQ(config.storage.webhooks[0].name, "crm.example.com");
  EXPECT_EQ(config.storage.webhooks[0].events, std::vector<std::string>{"email.triggered"});
  config = Load(std::string(kSite) + "[delivery]\ntick = \"250ms\"\nretry_schedule = [\"1s\", \"1m\"]\n"
                "retry_jitter = 0\n");
  EXPECT_EQ(config.delivery.tick, milliseconds(250));
  EXPECT_EQ(config.storage.delivery_schedule.delays, (std::vector<std::int64_t>{1'000, 60'000}));
  EXPECT_EQ(config.storage.delivery_schedule.jitter, 0);
}

TEST_F(ConfigTest, WebhookSecretIsNotEchoed) {
  const std::string what =
      Error(std::string(kSite) + Webhook(std::string(kUrl) + "\nsecret = \"whsec_s3cr3t!!\""));
  EXPECT_THAT(what, HasSubstr("webhooks[0].secret"));
  EXPECT_THAT(what, ::testing::Not(HasSubstr("s3cr3t")));
}

TEST_F(ConfigTest, ListenAddressesThatAreAccepted) {
  for (const char* address : {"0.0.0.0:0", "127.0.0.1:65535", "localhost:8080", "[::]:8080",
                              "[::1]:0", "[::ffff:127.0.0.1]:80", "my-host.internal:1"}) {
    const Config config = Load(std::string(kSite) + "[server]\nlisten = \"" + address + "\"\n");
    EXPECT_EQ(config.server.listen, address);
  }
  // Two listeners on port 0 get different ephemeral ports: allowed.
  const Config config = Load(
      std::string(kSite) + "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n");
  EXPECT_EQ(config.server.admin_listen, "127.0.0.1:0");
}

TEST_F(ConfigTest, WebhookEventsDefaultToEmpty) {
  const Config config = Load(std::string(kSite) +
                             Webhook(std::string("url = \"http://10.0.0.1:9000/h\"\n") + kSecret));
  ASSERT_EQ(config.webhooks.size(), 1u);
  EXPECT_TRUE(config.webhooks[0].events.empty());
  EXPECT_FALSE(config.webhooks[0].allow_private);
}

// --- Overrides ---------------------------------------------------------------------------

constexpr const char* kWithStorage = R"(
[[sites]]
name = "demo"
write_key = "demo-write-key"
secret_key = "demo-secret-key"

[server]
listen = "0.0.0.0:7000"

[storage]
data_dir = "/from/file"
fsync = false
)";

TEST_F(ConfigTest, PrecedenceFlagOverEnvOverFileOverDefault) {
  // Default only.
  EXPECT_EQ(Load(kSite).storage.data_dir, "./data");
  // File over default.
  EXPECT_EQ(Load(kWithStorage).storage.data_dir, "/from/file");
  // Environment over file.
  const Map env = {{"CARTWATCH_STORAGE_DATA_DIR", "/from/env"}};
  EXPECT_EQ(Load(kWithStorage, env).storage.data_dir, "/from/env");
  // Flag over environment.
  const Map flags = {{"storage.data_dir", "/from/flag"}};
  EXPECT_EQ(Load(kWithStorage, env, flags).storage.data_dir, "/from/flag");
  // Flag over default, and the file still applies to keys neither overrides.
  const Config config = Load(kWithStorage, {}, {{"server.admin_listen", "127.0.0.1:1"}});
  EXPECT_EQ(config.server.admin_listen, "127.0.0.1:1");
  EXPECT_EQ(config.server.listen, "0.0.0.0:7000");
}

TEST_F(ConfigTest, EnvironmentOverridesEveryKind) {
  const Config config = Load(kWithStorage, {
                                               {"CARTWATCH_SERVER_LISTEN", "127.0.0.1:1234"},
                                               {"CARTWATCH_SERVER_IO_THREADS", "8"},
                                               {"CARTWATCH_SERVER_READ_TIMEOUT", "3s"},
                                               {"CARTWATCH_STORAGE_FSYNC", "true"},
                                               {"CARTWATCH_STORAGE_BLOCK_CACHE_MB", "8"},
                                               {"CARTWATCH_LIMITS_MAX_REQUEST_BYTES", "65536"},
                                               {"CARTWATCH_TEMPLATES_DIR", "/t"},
                                               {"CARTWATCH_CONFIG", "ignored.toml"},
                                               {"HOME", "/root"},
                                           });
  EXPECT_EQ(config.server.listen, "127.0.0.1:1234");
  EXPECT_EQ(config.server.io_threads, 8);
  EXPECT_EQ(config.server.read_timeout, seconds(3));
  EXPECT_TRUE(config.storage.fsync);
  EXPECT_EQ(config.storage.block_cache_bytes, 8u << 20);
  EXPECT_EQ(config.limits.max_request_bytes, 65536u);
  EXPECT_EQ(config.templates_dir, "/t");
}

TEST_F(ConfigTest, EnvironmentBooleans) {
  for (const auto& [text, expected] : std::map<std::string, bool>{
           {"true", true}, {"1", true}, {"TRUE", true}, {"false", false}, {"0", false}}) {
    const Config config =
        Load(std::string(kSite) + "[storage]\nfsync = " + (expected ? "false" : "true") + "\n",
             {{"CARTWATCH_STORAGE_FSYNC", text}});
    EXPECT_EQ(config.storage.fsync, expected) << text;
  }
}

TEST_F(ConfigTest, FlagsOverrideEveryKind) {
  const Config config = Load(kWithStorage, {{"CARTWATCH_STORAGE_FSYNC", "1"}},
                             {{"storage.fsync", "false"},
                              {"server.listen", "[::]:8081"},
                              {"server.shutdown_grace", "30s"},
                              {"limits.events_page_max", "20000"}});
  EXPECT_FALSE(config.storage.fsync);
  EXPECT_EQ(config.server.listen, "[::]:8081");
  EXPECT_EQ(config.server.shutdown_grace, seconds(30));
  EXPECT_EQ(config.limits.events_page_max, 20000u);
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_STORAGE_FSYNC", "maybe"}}),
            "environment CARTWATCH_STORAGE_FSYNC: expected true or false, got \"maybe\"");
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_LIMITS_MAX_REQUEST_BYTES", "1MB"}}),
            "environment CARTWATCH_LIMITS_MAX_REQUEST_BYTES: expected an integer, got \"1MB\"");
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_SERVER_READ_TIMEOUT", "10 parsecs"}}),
            "environment CARTWATCH_SERVER_READ_TIMEOUT: bad duration \"10 parsecs\" (use e.g. "
            "\"15s\", \"1h\", \"90d\")");
  EXPECT_THAT(Error(kSite, {{"CARTWATCH_SERVER_LISTEN", "8080"}}),
              StartsWith("environment CARTWATCH_SERVER_LISTEN: bad listen address \"8080\""));
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_LIMITS_MAX_BATCH_MESSAGES", "0"}}),
            "environment CARTWATCH_LIMITS_MAX_BATCH_MESSAGES: must be at least 1, got 0");
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_STORAGE_DATA_DIR", ""}}),
            "environment CARTWATCH_STORAGE_DATA_DIR: must not be empty");
}

TEST_F(ConfigTest, UnknownEnvironmentVariableIsAnError) {
  EXPECT_THAT(Error(kSite, {{"CARTWATCH_STORAGE_FSYNCC", "true"}}),
              StartsWith("environment CARTWATCH_STORAGE_FSYNCC: unknown variable"));
  // Only scalar keys of [server], [storage], [limits] and [templates] can be overridden.
  EXPECT_THAT(Error(kSite, {{"CARTWATCH_SITES_NAME", "x"}}),
              StartsWith("environment CARTWATCH_SITES_NAME: unknown variable"));
}

TEST_F(ConfigTest, BadFlagNamesTheFlag) {
  EXPECT_EQ(Error(kSite, {}, {{"storage.data_dir", ""}}), "flag --data-dir: must not be empty");
  EXPECT_THAT(Error(kSite, {}, {{"server.listen", "nowhere"}}),
              StartsWith("flag --listen: bad listen address \"nowhere\""));
  EXPECT_THAT(Error(kSite, {}, {{"server.admin_listen", "x"}}),
              StartsWith("flag --admin-listen: bad listen address"));
  EXPECT_THAT(Error(kSite, {}, {{"server.bogus", "1"}}), StartsWith("flag server.bogus: "));
}

TEST_F(ConfigTest, FlagOverridesABadEnvironmentValueOnlyAfterItIsChecked) {
  // The environment is applied (and checked) before the flags.
  EXPECT_THAT(Error(kSite, {{"CARTWATCH_STORAGE_FSYNC", "maybe"}}, {{"storage.fsync", "true"}}),
              StartsWith("environment CARTWATCH_STORAGE_FSYNC: "));
}

TEST_F(ConfigTest, CombinationErrorsNameTheOverride) {
  EXPECT_EQ(Error(kSite, {{"CARTWATCH_LIMITS_EVENTS_PAGE_MAX", "10"}}),
            "environment CARTWATCH_LIMITS_EVENTS_PAGE_MAX: 10 is less than "
            "limits.events_page_default (1000)");
  EXPECT_EQ(Error(kSite, {}, {{"limits.max_message_bytes", "600000"}}),
            "flag --max-message-bytes: 600000 is more than limits.max_request_bytes (512000)");
  // The key set by the source of higher precedence is the one blamed.
  EXPECT_EQ(Error(std::string(kSite) + "[limits]\nevents_page_default = 20\n",
                  {{"CARTWATCH_LIMITS_EVENTS_PAGE_MAX", "10"}}),
            "environment CARTWATCH_LIMITS_EVENTS_PAGE_MAX: 10 is less than "
            "limits.events_page_default (20)");
  EXPECT_EQ(Error(std::string(kSite) + "[limits]\nevents_page_max = 10\n",
                  {{"CARTWATCH_LIMITS_EVENTS_PAGE_DEFAULT", "20"}}),
            "environment CARTWATCH_LIMITS_EVENTS_PAGE_DEFAULT: 20 is more than "
            "limits.events_page_max (10)");
  EXPECT_EQ(Error(kSite, {}, {{"server.listen", "127.0.0.1:9464"}}),
            "flag --listen: same address as server.admin_listen (\"127.0.0.1:9464\")");
  // An override can fix a combination the file alone would get wrong.
  const Config config = Load(std::string(kSite) + "[limits]\nevents_page_default = 20000\n",
                             {{"CARTWATCH_LIMITS_EVENTS_PAGE_MAX", "30000"}});
  EXPECT_EQ(config.limits.events_page_default, 20000u);
}

TEST_F(ConfigTest, CartwatchEnvironmentReadsTheProcessEnvironment) {
  ASSERT_EQ(setenv("CARTWATCH_STORAGE_DATA_DIR", "/env/dir", 1), 0);
  ASSERT_EQ(setenv("CARTWATCHX", "no", 1), 0);
  const Map env = CartwatchEnvironment();
  unsetenv("CARTWATCH_STORAGE_DATA_DIR");
  unsetenv("CARTWATCHX");
  ASSERT_EQ(env.count("CARTWATCH_STORAGE_DATA_DIR"), 1u);
  EXPECT_EQ(env.at("CARTWATCH_STORAGE_DATA_DIR"), "/env/dir");
  EXPECT_EQ(env.count("CARTWATCHX"), 0u);
  EXPECT_EQ(env.count("PATH"), 0u);
}

TEST_F(ConfigTest, WebhookEndpointsWithTheirDefaults) {
  const Config config = Load(std::string(kSite) + R"(
[[webhooks]]
url = "https://crm.example.com:8443/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[webhooks]]
name = "mailer"
url = "http://[::1]:9000/in"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
previous_secret = "whsec_dGhlIHByZXZpb3VzIHNlY3JldA=="
events = ["email.triggered"]
allow_private = true
timeout = "2s"
max_in_flight = 2
)");
  ASSERT_EQ(config.webhooks.size(), 2u);
  EXPECT_EQ(config.webhooks[0].name, "crm.example.com");
  EXPECT_EQ(config.webhooks[0].timeout, std::chrono::seconds(15));
  EXPECT_EQ(config.webhooks[0].max_in_flight, 8u);
  EXPECT_TRUE(config.webhooks[0].events.empty());
  EXPECT_TRUE(config.webhooks[0].previous_secret.empty());
  EXPECT_EQ(config.webhooks[1].name, "mailer");
  EXPECT_EQ(config.webhooks[1].previous_secret, "whsec_dGhlIHByZXZpb3VzIHNlY3JldA==");
  EXPECT_EQ(config.webhooks[1].timeout, std::chrono::seconds(2));
  EXPECT_EQ(config.webhooks[1].max_in_flight, 2u);
  EXPECT_TRUE(config.webhooks[1].allow_private);
}

TEST_F(ConfigTest, SitesGiveTheirTimeZoneLocaleAndCartLink) {
  const Config config = Load(std::string(kSite) + R"(
[[sites]]
name = "ru"
write_key = "wr"
secret_key = "sr"
timezone = "Europe/Moscow"
locale = "ru-RU"
cart_url = "https://shop.example.ru/cart"
)");
  const rules::SiteSettings& ru = config.storage.rules.Site("ru");
  EXPECT_EQ(ru.timezone, "Europe/Moscow");
  EXPECT_EQ(ru.locale, "ru-RU");
  EXPECT_EQ(ru.cart_url, "https://shop.example.ru/cart");
  const rules::SiteSettings& other = config.storage.rules.Site(config.sites[0].name);
  EXPECT_EQ(other.timezone, "UTC");
  EXPECT_EQ(other.locale, "en");
  EXPECT_TRUE(other.cart_url.empty());
  // The e-mail templates are loaded with the config.
  ASSERT_NE(config.storage.email_templates, nullptr);
  EXPECT_EQ(config.storage.email_templates->Languages("abandoned_cart"),
            (std::vector<std::string>{"en", "ru"}));
}

TEST_F(ConfigTest, RulesBecomeTheRuleEnginesRuleSet) {
  const Config config = Load(std::string(kSite) + R"(
[rule_engine]
timer_tick = "250ms"
email_cooldown = "12h"
quiet_hours = "22:00-08:00"

[[rules]]
name = "filled"
kind = "cart_filled"
min_cart_value = 49.99
segments = ["champions", "loyal"]
abc = ["A"]

[[rules]]
name = "abandoned"
kind = "abandoned_cart"
template = "abandoned_cart"
stages = [
  { after = "1h", actions = ["task", "email"] },
  { after = "1d", actions = ["email"], template = "abandoned_cart_2" },
]

[[rules]]
name = "high"
kind = "high_value_cart"

[[rules]]
name = "dormant"
kind = "dormant_customer"
adaptive = true
min_after = "20d"
actions = ["email"]
template = "win_back"
)");
  const rules::RuleSet& set = config.storage.rules;
  EXPECT_EQ(config.storage.timer_tick, milliseconds(250));
  EXPECT_EQ(set.settings.email_cooldown, 12 * 3600 * 1000);
  ASSERT_TRUE(set.settings.quiet_hours);
  EXPECT_EQ(set.settings.quiet_hours->start_minute, 22 * 60);
  EXPECT_EQ(set.settings.quiet_hours->end_minute, 8 * 60);
  ASSERT_EQ(set.rules.size(), 4u);
  EXPECT_EQ(set.rules[0].kind, rules::Kind::kCartFilled);
  EXPECT_EQ(set.rules[0].conditions.min_cart_value, 499900);
  EXPECT_THAT(set.rules[0].conditions.segments, ::testing::ElementsAre("champions", "loyal"));
  EXPECT_THAT(set.rules[0].conditions.abc, ::testing::ElementsAre("A"));
  ASSERT_EQ(set.rules[0].stages.size(), 1u);
  EXPECT_TRUE(set.rules[0].stages[0].task);
  EXPECT_EQ(set.rules[0].stages[0].after, 0);

  ASSERT_EQ(set.rules[1].stages.size(), 2u);
  EXPECT_EQ(set.rules[1].stages[0].after, 3600 * 1000);
  EXPECT_TRUE(set.rules[1].stages[0].task && set.rules[1].stages[0].email);
  EXPECT_EQ(set.rules[1].stages[0].email_template, "abandoned_cart");
  EXPECT_FALSE(set.rules[1].stages[1].task);
  EXPECT_EQ(set.rules[1].stages[1].after, 24 * 3600 * 1000);
  EXPECT_EQ(set.rules[1].stages[1].email_template, "abandoned_cart_2");

  EXPECT_DOUBLE_EQ(set.rules[2].factor, 2);  // high_value_cart's default
  EXPECT_TRUE(set.rules[3].adaptive);
  EXPECT_DOUBLE_EQ(set.rules[3].factor, 2.5);
  EXPECT_EQ(set.rules[3].min_after, 20LL * 24 * 3600 * 1000);
  EXPECT_TRUE(set.rules[3].stages[0].email);
  EXPECT_FALSE(set.rules[3].stages[0].task);
}

TEST_F(ConfigTest, LogLevelFromFileEnvironmentAndFlag) {
  EXPECT_EQ(Load(kSite).log_level, log::Level::kInfo);
  const std::string toml = std::string(kSite) + "[log]\nlevel = \"warn\"\n";
  EXPECT_EQ(Load(toml).log_level, log::Level::kWarn);
  EXPECT_EQ(Load(toml, {{"CARTWATCH_LOG_LEVEL", "debug"}}).log_level, log::Level::kDebug);
  EXPECT_EQ(Load(toml, {{"CARTWATCH_LOG_LEVEL", "debug"}}, {{"log.level", "error"}}).log_level,
            log::Level::kError);
  EXPECT_EQ(Error(std::string(kSite) + "[log]\nlevel = \"verbose\"\n"),
            File() + R"(: log.level: must be "debug", "info", "warn" or "error", got "verbose")");
  EXPECT_EQ(Error(std::string(kSite) + "[log]\nformat = \"json\"\n"), File() + ": log.format: unknown key");
}

TEST_F(ConfigTest, EffectiveSettingsShowEveryKeyAsWrittenAndNoSecret) {
  const Config config = Load(std::string(kSite) + R"(
[server]
listen = "127.0.0.1:18080"
idle_timeout = "2m"
[storage]
max_queued_mb = 32
fsync = true
retention = "0"
[limits]
client_rate_limit = 50
[log]
level = "warn"
[[rules]]
name = "abandoned_1h"
kind = "abandoned_cart"
)" + Webhook(std::string(kUrl) + "\n" + kSecret));
  std::map<std::string, std::string> shown;
  std::string all;
  for (const auto& [key, value] : EffectiveSettings(config)) {
    EXPECT_TRUE(shown.emplace(key, value).second) << key << " twice";
    all += key + "=" + value + "\n";
  }
  EXPECT_EQ(shown["server.listen"], "127.0.0.1:18080");
  EXPECT_EQ(shown["server.idle_timeout"], "2m");
  EXPECT_EQ(shown["server.read_timeout"], "10s") << "a default";
  EXPECT_EQ(shown["storage.max_queued_mb"], "32");
  EXPECT_EQ(shown["storage.fsync"], "true");
  EXPECT_EQ(shown["storage.retention"], "0s");
  EXPECT_EQ(shown["storage.wal_recovery"], "auto");
  EXPECT_EQ(shown["limits.client_rate_limit"], "50");
  EXPECT_EQ(shown["log.level"], "warn");
  EXPECT_EQ(shown["sites"], "demo");
  EXPECT_EQ(shown["rules"], "abandoned_1h");
  EXPECT_EQ(shown["webhooks"], "crm.example.com=https://crm.example.com");
  // Every key the environment can set is shown.
  EXPECT_GE(shown.size(), 40u) << all;
  EXPECT_THAT(all, ::testing::Not(HasSubstr("demo-write-key")));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("demo-secret-key")));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("whsec_")));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("/hooks"))) << "a URL's path may hold a token";
}

}  // namespace
}  // namespace cartwatch
