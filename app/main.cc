// cartwatch: the collector service. Loads the config, opens the store, serves HTTP until
// SIGTERM or SIGINT, then shuts down gracefully. Exit codes: 0 after a clean stop, 2 for a
// bad config or command line, 1 when storage or a listener cannot be opened.
#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <system_error>

#include "app/config.h"
#include "collector/server.h"
#include "metrics/metrics.h"
#include "storage/store.h"
#include "util/log.h"
#include "webhooks/dispatcher.h"
#include "webhooks/signature.h"

namespace {

constexpr char kUsage[] =
    "usage: cartwatch [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT]\n"
    "                 [--data-dir DIR] [--wal-recovery auto|strict|point_in_time]\n"
    "                 [--log-level debug|info|warn|error]\n"
    "  --config FILE   TOML config (default: $CARTWATCH_CONFIG, else config/cartwatch.toml)\n"
    "  Flags override CARTWATCH_* environment variables, which override the file.\n"
    "  See docs/config.md.\n";

// "0.0.0.0:0" with bound port 41234 -> "0.0.0.0:41234".
std::string WithPort(const std::string& address, unsigned short port) {
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/cartwatch.toml";
  if (const char* env = std::getenv("CARTWATCH_CONFIG"); env && *env) config_path = env;
  std::map<std::string, std::string> flags;
  static const std::map<std::string, std::string> kFlagKeys = {
      {"--listen", "server.listen"},
      {"--admin-listen", "server.admin_listen"},
      {"--data-dir", "storage.data_dir"},
      {"--wal-recovery", "storage.wal_recovery"},
      {"--log-level", "log.level"},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    bool known = arg == "--config" || kFlagKeys.count(arg);
    if (!known) {
      std::cerr << "cartwatch: unknown argument " << arg << "\n" << kUsage;
      return 2;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::cerr << "cartwatch: " << arg << " needs a value\n" << kUsage;
        return 2;
      }
      value = argv[++i];
    }
    if (arg == "--config") {
      config_path = value;
    } else {
      flags[kFlagKeys.at(arg)] = value;
    }
  }

  cartwatch::Config config;
  try {
    config = cartwatch::LoadConfig(config_path, cartwatch::CartwatchEnvironment(), flags);
  } catch (const cartwatch::ConfigError& e) {
    std::cerr << "cartwatch: bad config: " << e.what() << "\n";
    return 2;
  }
  // From here on every line is logfmt (util/log.h, docs/operations.md "Logs").
  namespace log = cartwatch::log;
  log::SetLevel(config.log_level);
  {
    log::Line line(log::Level::kInfo, "starting");
    line.Add("version", CARTWATCH_VERSION).Add("pid", static_cast<std::int64_t>(getpid())).Add("config", config_path);
  }
  {
    log::Line line(log::Level::kInfo, "effective config");
    for (const auto& [key, value] : cartwatch::EffectiveSettings(config)) line.Add(key, value);
  }

  // Every thread started from here on inherits the blocked set; main waits for the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // As many file descriptors as the system lets this process have: each connection takes
  // one (the server caps them below the limit: server.max_connections).
  if (struct rlimit limit {}; getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }

  std::string error;
  auto store = cartwatch::storage::Store::Open(config.storage, &error);
  if (!store) {
    log::Error("cannot open storage").Add("data_dir", config.storage.data_dir).Add("error", error);
    return 1;
  }
  cartwatch::metrics::Metrics metrics;
  std::unique_ptr<cartwatch::collector::Server> server;
  try {
    server = cartwatch::collector::Server::Start(config.server, config.limits, config.sites,
                                                 **store, config.server.metrics ? &metrics : nullptr);
  } catch (const std::system_error& e) {
    log::Error("cannot listen").Add("error", e.what());
    return 1;
  }
  // Webhook deliveries (docs/webhooks.md), on their own event loop.
  std::unique_ptr<cartwatch::webhooks::Dispatcher> dispatcher;
  if (!config.webhooks.empty()) {
    std::vector<cartwatch::webhooks::EndpointConfig> endpoints;
    for (const cartwatch::WebhookConfig& w : config.webhooks) {
      cartwatch::webhooks::EndpointConfig e{.name = w.name,
                                            .client = {.url = w.url,
                                                       .allow_private = w.allow_private,
                                                       .timeout = w.timeout,
                                                       .max_in_flight = w.max_in_flight,
                                                       .ca_file = w.ca_file},
                                            .keys = {*cartwatch::webhooks::SecretKey(w.secret)}};
      if (!w.previous_secret.empty()) {
        e.keys.push_back(*cartwatch::webhooks::SecretKey(w.previous_secret));
      }
      endpoints.push_back(std::move(e));
    }
    dispatcher = cartwatch::webhooks::Dispatcher::Start(
        **store, std::move(endpoints), {.tick = config.delivery.tick}, &error);
    if (!dispatcher) {
      log::Error("cannot start webhook deliveries").Add("error", error);
      server->Stop();
      return 1;
    }
  }
  std::shared_ptr<prometheus::Collectable> delivery_metrics;
  if (dispatcher && config.server.metrics) {
    delivery_metrics = dispatcher->MakeCollectable();
    metrics.Register(delivery_metrics);
  }
  const std::string public_address = WithPort(config.server.listen, server->public_port());
  const std::string admin_address = WithPort(config.server.admin_listen, server->admin_port());
  log::Info("listening")
      .Add("public", public_address)
      .Add("admin", admin_address)
      .Add("webhook_endpoints", config.webhooks.size());
  // The line scripts wait for (stdout has nothing else).
  std::cout << "cartwatch: listening on " << public_address << " (public), " << admin_address
            << " (admin)" << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  const auto stopping = std::chrono::steady_clock::now();
  log::Info("shutting down").Add("signal", strsignal(received));
  server->Stop();
  // Attempts in flight are recorded if they finish within the grace; the rest are
  // attempted again after the next start.
  if (dispatcher) dispatcher->Stop(std::chrono::seconds(5));
  delivery_metrics.reset();
  (*store)->Close();
  log::Info("stopped").Add("duration_ms", static_cast<std::int64_t>(
                                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - stopping)
                                                  .count()));
  return 0;
}
