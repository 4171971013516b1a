// cartwatch: the collector service. Loads the config, opens the store, serves HTTP until
// SIGTERM or SIGINT, then shuts down gracefully. Exit codes: 0 after a clean stop, 2 for a
// bad config or command line, 1 when storage or a listener cannot be opened.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <system_error>

#include "app/config.h"
#include "collector/server.h"
#include "metrics/metrics.h"
#include "storage/store.h"
#include "webhooks/dispatcher.h"
#include "webhooks/signature.h"

namespace {

constexpr char kUsage[] =
    "usage: cartwatch [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT]\n"
    "                 [--data-dir DIR] [--wal-recovery auto|strict|point_in_time]\n"
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
    std::cerr << "cartwatch: " << error << "\n";
    return 1;
  }
  cartwatch::metrics::Metrics metrics;
  std::unique_ptr<cartwatch::collector::Server> server;
  try {
    server = cartwatch::collector::Server::Start(config.server, config.limits, config.sites,
                                                 **store, config.server.metrics ? &metrics : nullptr);
  } catch (const std::system_error& e) {
    std::cerr << "cartwatch: " << e.what() << "\n";
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
      std::cerr << "cartwatch: " << error << "\n";
      server->Stop();
      return 1;
    }
  }
  std::shared_ptr<prometheus::Collectable> delivery_metrics;
  if (dispatcher && config.server.metrics) {
    delivery_metrics = dispatcher->MakeCollectable();
    metrics.Register(delivery_metrics);
  }
  std::cout << "cartwatch: listening on " << WithPort(config.server.listen, server->public_port())
            << " (public), " << WithPort(config.server.admin_listen, server->admin_port())
            << " (admin)" << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  std::cerr << "cartwatch: " << strsignal(received) << ", shutting down\n";
  server->Stop();
  // Attempts in flight are recorded if they finish within the grace; the rest are
  // attempted again after the next start.
  if (dispatcher) dispatcher->Stop(std::chrono::seconds(5));
  delivery_metrics.reset();
  (*store)->Close();
  std::cerr << "cartwatch: stopped\n";
  return 0;
}
