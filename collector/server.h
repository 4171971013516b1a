// Server: the collector's HTTP front end. A public listener (Segment HTTP Tracking API
// ingest and the query API) and an admin listener (/healthz, /readyz, /metrics), served by a pool of
// I/O threads, each running its own event loop; connections are spread over them.
//
// Thread safety: Start, ports and Stop may be called from any thread but the server's own
// I/O threads; Stop is idempotent.
#pragma once

#include <memory>
#include <vector>

#include "collector/options.h"
#include "metrics/metrics.h"
#include "storage/store.h"

namespace cartwatch::collector {

class Server {
 public:
  // Binds both listeners and starts serving. `store` and `metrics` (null: no metrics, and
  // the admin listener has no /metrics) must outlive the server.
  // Throws std::system_error naming the address when a listener cannot be bound.
  static std::unique_ptr<Server> Start(const ServerOptions& options, const Limits& limits,
                                       std::vector<Site> sites, storage::Store& store,
                                       metrics::Metrics* metrics = nullptr);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  virtual ~Server() = default;

  // The bound ports (useful when the configured port is 0).
  virtual unsigned short public_port() const = 0;
  virtual unsigned short admin_port() const = 0;

  // Graceful stop: stops accepting, closes idle connections, lets requests in flight
  // finish and be answered (with Connection: close) for up to options.shutdown_grace, then
  // closes what is left and joins the I/O threads. Returns when all of that is done.
  // REQUIRES: not called from one of the server's own I/O threads.
  virtual void Stop() = 0;

 protected:
  Server() = default;
};

}  // namespace cartwatch::collector
