#include "metrics/process.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace cartwatch::metrics {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses,
// so the line is split after its last ')'): index 0 is field 3, "state".
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// Boot time in seconds since the epoch ("btime" of /proc/stat); 0 when unknown.
double BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const std::vector<std::string> stat = StatFields();
    // utime, stime: fields 14, 15; starttime: 22; vsize: 23; rss (pages): 24.
    if (stat.size() > 21 && ticks > 0) {
      const double cpu = (std::stod(stat[11]) + std::stod(stat[12])) / ticks;
      out.push_back(CounterFamily("process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.", cpu));
      out.push_back(GaugeFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                std::stod(stat[20])));
      out.push_back(GaugeFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                std::stod(stat[21]) * static_cast<double>(sysconf(_SC_PAGESIZE))));
      if (const double boot = BootTime(); boot > 0) {
        out.push_back(GaugeFamily("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  boot + std::stod(stat[19]) / ticks));
      }
    }
    std::error_code ec;
    std::size_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
         it.increment(ec)) {
      ++fds;
    }
    if (!ec) {
      // The iterator's own descriptor is counted too; it is gone once the loop ends.
      out.push_back(GaugeFamily("process_open_fds", "Number of open file descriptors.",
                                static_cast<double>(fds > 0 ? fds - 1 : 0)));
    }
    if (struct rlimit limit {}; getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      out.push_back(GaugeFamily("process_max_fds", "Maximum number of open file descriptors.",
                                static_cast<double>(limit.rlim_cur)));
    }
    return out;
  }
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeProcessCollector() {
  return std::make_shared<ProcessCollector>();
}

}  // namespace cartwatch::metrics
