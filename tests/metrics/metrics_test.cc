// The metrics front door: the exposition holds the registry's families, the registered
// collectables while they live, and the standard process_* metrics read from /proc.
#include <gtest/gtest.h>

#include <prometheus/counter.h>

#include <ctime>
#include <memory>
#include <string>

#include "metrics/metrics.h"

namespace cartwatch::metrics {
namespace {

class Fixed final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    return {GaugeFamily("test_fixed", "A fixed figure.", 42)};
  }
};

TEST(MetricsTest, TheExpositionHasTheRegistryTheCollectablesAndTheProcess) {
  Metrics metrics;
  auto& family = prometheus::BuildCounter().Name("test_things_total").Help("Things.").Register(
      metrics.registry());
  family.Add({{"kind", "a"}}).Increment(3);
  auto fixed = std::make_shared<Fixed>();
  metrics.Register(fixed);

  const std::string text = metrics.Exposition();
  EXPECT_NE(text.find("# TYPE test_things_total counter\ntest_things_total{kind=\"a\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE test_fixed gauge\ntest_fixed 42\n"), std::string::npos) << text;
  for (const std::string family_name :
       {"process_cpu_seconds_total", "process_virtual_memory_bytes",
        "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds",
        "process_max_fds"}) {
    EXPECT_NE(text.find("# TYPE " + family_name + " "), std::string::npos) << family_name;
  }
  // A collectable that is gone is no longer asked.
  fixed.reset();
  EXPECT_EQ(metrics.Exposition().find("test_fixed"), std::string::npos);
}

TEST(MetricsTest, ProcessFiguresAreThisProcesss) {
  Metrics metrics;
  const std::string text = metrics.Exposition();
  auto value = [&text](const std::string& name) {
    const std::size_t at = text.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name;
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  EXPECT_GT(value("process_resident_memory_bytes"), 1e6);  // a test binary is over 1 MB
  EXPECT_GE(value("process_open_fds"), 3);                   // stdin, stdout, stderr
  const double started = value("process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600);  // started within the hour
}

}  // namespace
}  // namespace cartwatch::metrics
