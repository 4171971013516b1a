// The standard process_* metrics of Prometheus client libraries (the names and meanings of
// client_golang's process collector), read from /proc/self at each scrape. Private to
// metrics/.
#pragma once

#include <memory>

#include <prometheus/collectable.h>

namespace cartwatch::metrics {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. A figure /proc does not
// give (another OS, a restricted /proc) is left out rather than reported as 0.
std::shared_ptr<prometheus::Collectable> MakeProcessCollector();

}  // namespace cartwatch::metrics
