// cartwatch-delivery-bench: signed webhook deliveries a second to a local keep-alive
// receiver (docs/webhooks.md, bench/RESULTS.md). It
//   1. opens a store with a cart_filled rule and one webhook endpoint, sends --actions
//      customers a cart each and fires their timers: --actions task actions, each with a
//      pending delivery in RocksDB;
//   2. pins this process (the dispatcher's event loop, the commits it makes, RocksDB's
//      threads) to core 0 and starts a receiver (bench/sink.h) on core 1 that checks
//      every signature;
//   3. starts the dispatcher (--in-flight requests at once on keep-alive connections) and
//      times it until every delivery is recorded as delivered, durably.
// Prints: actions, seconds, deliveries/s, CPU seconds of Cartwatch's side a delivery,
// connections opened. Run from a release build:
//   build/release/cartwatch-delivery-bench --actions 100000 --in-flight 32
#include <pthread.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "bench/sink.h"
#include "rules/rules.h"
#include "storage/store.h"
#include "util/time.h"
#include "webhooks/dispatcher.h"
#include "webhooks/signature.h"

namespace {

using namespace cartwatch;
constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string Message(std::int64_t now, int i, const std::string& type, const std::string& body) {
  const std::string t = util::FormatIso8601(now);
  return R"({"type":")" + type + R"(","messageId":"m-)" + type + std::to_string(i) +
         R"(","userId":"c-)" + std::to_string(i) + R"(","anonymousId":"d-)" + std::to_string(i) +
         R"(","timestamp":")" + t + R"(","receivedAt":")" + t + R"(")" + body + "}";
}

void Send(storage::Store& store, std::vector<storage::Message> messages) {
  std::promise<storage::AppendResult> done;
  store.Append("shop", std::move(messages), [&](const storage::AppendResult& r) { done.set_value(r); });
  store.Flush();
  if (done.get_future().get().error) {
    std::fprintf(stderr, "append failed\n");
    std::exit(1);
  }
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace

int main(int argc, char** argv) {
  int actions = 100'000, in_flight = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--actions") actions = std::atoi(argv[i + 1]);
    else if (arg == "--in-flight") in_flight = std::atoi(argv[i + 1]);
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  PinTo(0);  // every thread started from here on inherits it
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cartwatch-delivery-bench-" + std::to_string(::getpid()));
  storage::StoreOptions options;
  options.data_dir = dir.string();
  options.rules.rules.push_back(rules::Rule{.name = "cart_filled",
                                            .kind = rules::Kind::kCartFilled,
                                            .stages = {rules::Stage{.task = true}},
                                            .conditions = {}});
  options.timer_tick = std::chrono::milliseconds(0);
  options.thresholds_interval = std::chrono::hours(24 * 365);
  options.webhooks = {storage::WebhookEndpoint{.name = "sink", .events = {}}};
  std::string error;
  auto opened = storage::Store::Open(options, &error);
  if (!opened) {
    std::fprintf(stderr, "cannot open the store: %s\n", error.c_str());
    return 1;
  }
  std::unique_ptr<storage::Store> store = std::move(*opened);

  const std::int64_t now = util::NowMs();
  for (int start = 0; start < actions; start += 1000) {
    std::vector<storage::Message> batch;
    for (int i = start; i < std::min(actions, start + 1000); ++i) {
      const std::string identify = Message(now, i, "identify", R"(,"traits":{"email":"c@example.com"})");
      const std::string add = Message(now, i, "track",
                                      R"(,"event":"Product Added","properties":{"product_id":"p1","price":25,"quantity":1})");
      batch.push_back(storage::Message{"i" + std::to_string(i), now, identify});
      batch.push_back(storage::Message{"a" + std::to_string(i), now, add});
    }
    Send(*store, std::move(batch));
  }
  std::size_t fired = 0;
  for (;;) {
    const storage::FireResult r = store->FireDueTimers(now + 1000, 5000);
    if (r.error) {
      std::fprintf(stderr, "firing failed: %s\n", r.error.message().c_str());
      return 1;
    }
    fired += r.actions;
    if (r.due == 0) break;
  }

  const std::string key = *webhooks::SecretKey(kSecret);
  bench::Sink sink(0, cores > 1 ? 1 : -1, {key});
  const double cpu_before = ProcessCpuSeconds() - sink.cpu_seconds();
  const auto started = std::chrono::steady_clock::now();
  auto dispatcher = webhooks::Dispatcher::Start(
      *store,
      {webhooks::EndpointConfig{
          .name = "sink",
          .client = {.url = "http://127.0.0.1:" + std::to_string(sink.port()) + "/hooks",
                     .allow_private = true,
                     .max_in_flight = static_cast<std::size_t>(in_flight),
                     .ca_file = {}},
          .keys = {key}}},
      webhooks::DispatcherOptions{}, &error);
  if (!dispatcher) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::uint64_t delivered = 0;
  while (delivered < fired) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    delivered = dispatcher->GetFigures()[0].delivered;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double cpu = ProcessCpuSeconds() - sink.cpu_seconds() - cpu_before;
  const auto connections = dispatcher->GetFigures()[0].connections;
  dispatcher->Stop(std::chrono::seconds(1));
  store->Close();
  std::filesystem::remove_all(dir);
  std::printf("actions %zu  seconds %.3f  deliveries/s %.0f  cartwatch cpu us/delivery %.1f  "
              "received %llu  bad signatures %llu  connections %llu\n",
              fired, seconds, static_cast<double>(fired) / seconds, cpu * 1e6 / static_cast<double>(fired),
              static_cast<unsigned long long>(sink.received()),
              static_cast<unsigned long long>(sink.bad_signatures()),
              static_cast<unsigned long long>(connections));
  return sink.bad_signatures() == 0 ? 0 : 1;
}
