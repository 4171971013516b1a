// The dispatcher: sends the store's due webhook deliveries (docs/webhooks.md) and records
// what each attempt got. It runs an event loop on a thread of its own ("cartwatch-hooks"),
// with one Client an endpoint: every `tick`, and again as soon as attempts finish while
// more are due, it reads up to max_in_flight - in flight due deliveries of each enabled
// endpoint from RocksDB, signs and posts them, and hands their results to the store
// (Store::ChangeDeliveries), which judges them (retry schedule, Retry-After, 410) in the
// committing thread. An attempt is only in memory until its result is durable, so a
// delivery in flight at a crash is attempted again after the restart, with the same
// webhook-id.
//
// Thread safety: Start, Wake, GetFigures and Stop may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "storage/store.h"
#include "webhooks/client.h"

namespace cartwatch::webhooks {

struct EndpointConfig {
  std::string name{};
  ClientOptions client{};
  std::vector<std::string> keys{};  // signing keys (SecretKey): the secret's, then the previous one's
};

struct DispatcherOptions {
  // How often the queues are read when nothing else wakes the dispatcher. Default 1s.
  std::chrono::milliseconds tick = std::chrono::seconds(1);
};

class Dispatcher {
 public:
  // Starts the thread. nullptr with *error when an endpoint's client cannot be made (an
  // unreadable CA file).
  static std::unique_ptr<Dispatcher> Start(storage::Store& store,
                                           std::vector<EndpointConfig> endpoints,
                                           const DispatcherOptions& options, std::string* error);
  virtual ~Dispatcher() = default;

  // Reads the queues now (an endpoint enabled, a delivery retried by hand).
  virtual void Wake() = 0;

  // Counts since start, by endpoint (for /metrics).
  struct EndpointFigures {
    std::string name;
    // Attempts recorded, by what they came to (each counts in one).
    std::uint64_t delivered = 0;   // a 2xx
    std::uint64_t retrying = 0;    // failed; attempted again later
    std::uint64_t dead = 0;        // failed, and the delivery died
    std::uint64_t gone = 0;        // a 410: the endpoint was disabled
    double seconds = 0;            // time spent in attempts, all of them
    std::uint64_t connections = 0; // connections opened
    std::size_t in_flight = 0;
    std::size_t queued = 0;        // deliveries waiting in its queue (counted each tick)
    std::size_t dead_now = 0;      // deliveries dead and not retried since (read each tick)
    bool disabled = false;
  };
  virtual std::vector<EndpointFigures> GetFigures() const = 0;

  // Those figures as Prometheus metrics (docs/operations.md), for metrics::Metrics::Register:
  // cartwatch_webhook_attempts_total{endpoint, outcome}, cartwatch_webhook_attempt_seconds_total,
  // cartwatch_webhook_connections_opened_total, cartwatch_webhook_in_flight,
  // cartwatch_webhook_queued, cartwatch_webhook_dead and cartwatch_webhook_endpoint_disabled, each by endpoint. It reads this dispatcher: keep it
  // no longer than the dispatcher.
  std::shared_ptr<prometheus::Collectable> MakeCollectable() const;

  // Stops reading the queues, lets the attempts in flight finish and be recorded for up
  // to `grace`, then cancels the rest (they stay due: attempted again after a restart) and
  // joins the thread. Idempotent. Call it before the store closes.
  virtual void Stop(std::chrono::milliseconds grace) = 0;

 protected:
  Dispatcher() = default;
};

}  // namespace cartwatch::webhooks
