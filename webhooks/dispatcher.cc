#include "webhooks/dispatcher.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include "util/log.h"
#include "util/time.h"
#include "webhooks/signature.h"

namespace cartwatch::webhooks {
namespace {

namespace net = boost::asio;

// The dispatcher thread's nice value (the event loops run at 0).
constexpr int kNice = 19;
// Queues are counted up to this, once a tick (for cartwatch_webhook_queued).
constexpr std::size_t kMaxCounted = 1'000'000;

class DispatcherImpl final : public Dispatcher {
 public:
  DispatcherImpl(storage::Store& store, const DispatcherOptions& options)
      : store_(store), options_(options), timer_(ioc_), guard_(ioc_.get_executor()) {}

  ~DispatcherImpl() override { Stop(std::chrono::milliseconds(0)); }

  bool Init(std::vector<EndpointConfig> endpoints, std::string* error) {
    for (EndpointConfig& config : endpoints) {
      auto ep = std::make_unique<Endpoint>();
      ep->client = CreateClient(ioc_, config.client, error);
      if (!ep->client) {
        *error = "webhook endpoint \"" + config.name + "\": " + *error;
        return false;
      }
      ep->name = config.name;
      ep->keys = std::move(config.keys);
      ep->figures.name = config.name;
      endpoints_.push_back(std::move(ep));
    }
    return true;
  }

  void Run() {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "cartwatch-hooks");
      // Below the event loops, as RocksDB's flushes and compactions are: on a busy core
      // ingest goes first, and deliveries wait in RocksDB (durably) for the idle time.
      setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice);
      ioc_.run();
    });
    net::post(ioc_, [this] { Tick(); });
  }

  void Wake() override {
    net::post(ioc_, [this] {
      if (stopping_) return;
      for (auto& ep : endpoints_) ep->cursor = storage::DueCursor{};
      ReadQueues();
    });
  }

  std::vector<EndpointFigures> GetFigures() const override {
    std::lock_guard lock(figures_mu_);
    std::vector<EndpointFigures> out;
    for (const auto& ep : endpoints_) out.push_back(ep->figures);
    return out;
  }

  void Stop(std::chrono::milliseconds grace) override {
    if (stopped_.exchange(true) || !thread_.joinable()) return;
    net::post(ioc_, [this] {
      stopping_ = true;
      timer_.cancel();
    });
    const auto until = std::chrono::steady_clock::now() + grace;
    while (busy_.load() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::promise<void> closed;
    net::post(ioc_, [this, &closed] {
      closing_ = true;  // what finishes from now on is not recorded: it stays due
      for (auto& ep : endpoints_) ep->client->Close();
      closed.set_value();
    });
    closed.get_future().wait();
    while (committing_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    guard_.reset();
    thread_.join();
  }

 private:
  struct Endpoint {
    std::string name;
    std::shared_ptr<Client> client;
    std::vector<std::string> keys;
    std::set<std::uint64_t> in_flight;  // seqs sent or being recorded
    bool disabled = false;
    bool more = false;  // the last read filled every free slot: more may be due
    // Where the last read of the queue stopped: reads between ticks resume there, each
    // tick starts again from the front (to find what was queued behind it meanwhile).
    storage::DueCursor cursor{};
    EndpointFigures figures;  // under figures_mu_
  };

  void Tick() {
    if (stopping_) return;
    auto disabled = store_.ReadDisabledEndpoints();
    if (disabled) {
      for (auto& ep : endpoints_) {
        ep->disabled = std::find(disabled->begin(), disabled->end(), ep->name) != disabled->end();
      }
    }
    std::vector<storage::DeliveryCounts> counts;
    for (auto& ep : endpoints_) {
      auto n = store_.CountDeliveries(ep->name, kMaxCounted);
      counts.push_back(n ? *n : storage::DeliveryCounts{});
    }
    {
      std::lock_guard lock(figures_mu_);
      UpdateFigures();
      for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        endpoints_[i]->figures.queued = counts[i].queued;
        endpoints_[i]->figures.dead_now = counts[i].dead;
      }
    }
    for (auto& ep : endpoints_) ep->cursor = storage::DueCursor{};
    ReadQueues();
    timer_.expires_after(options_.tick);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Tick();
    });
  }

  void ReadQueues() {
    for (auto& ep : endpoints_) Fill(*ep);
  }

  // Sends the endpoint's due deliveries into its free slots.
  void Fill(Endpoint& ep) {
    if (stopping_ || ep.disabled) return;
    const std::size_t max = ep.client->max_in_flight();
    if (ep.in_flight.size() >= max) return;
    const std::size_t free = max - ep.in_flight.size();
    const std::int64_t now = util::NowMs();
    auto due = store_.ReadDueDeliveries(ep.name, now, free, ep.in_flight, &ep.cursor);
    if (!due) {
      log::Error("cannot read the deliveries due").Add("endpoint", ep.name).Add("error", due.error().message());
      return;
    }
    ep.more = due->size() == free;
    for (storage::DueDelivery& d : *due) Send(ep, std::move(d));
  }

  void Send(Endpoint& ep, storage::DueDelivery d) {
    ep.in_flight.insert(d.seq);
    ++busy_;
    const std::int64_t timestamp = util::NowMs() / 1000;
    Post post{.id = d.id,
              .timestamp = timestamp,
              .signature = SignatureHeader(ep.keys, d.id, timestamp, d.body),
              .body = std::move(d.body)};
    const auto started = std::chrono::steady_clock::now();
    ep.client->Send(std::move(post), [this, &ep, seq = d.seq, id = d.id, attempt = d.attempts + 1,
                                      started](Attempt result) {
      const auto took = std::chrono::steady_clock::now() - started;
      if (closing_) {
        ep.in_flight.erase(seq);
        --busy_;
        return;
      }
      if (result.status < 200 || result.status > 299) {
        log::Warn("delivery attempt failed")
            .Add("endpoint", ep.name)
            .Add("id", id)
            .Add("attempt", attempt)
            .Add("error", result.status ? "HTTP " + std::to_string(result.status) : result.error);
      }
      {
        std::lock_guard lock(figures_mu_);
        ep.figures.seconds += std::chrono::duration<double>(took).count();
      }
      results_.push_back(storage::DeliveryAttemptDone{
          .seq = seq,
          .endpoint = ep.name,
          .result = std::move(result),
          .at = util::NowMs(),
          .duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          .random = std::uniform_real_distribution<double>(0.0, 1.0)(random_)});
      // One change at a time is with the store: the results that finish meanwhile are
      // recorded together after it (as a group commit does), so a busy endpoint costs a
      // commit a round trip, not one an attempt.
      if (!record_posted_ && !recording_) {
        record_posted_ = true;
        net::post(ioc_, [this] { Record(); });
      }
    });
  }

  // Hands the finished attempts to the store, as one change.
  void Record() {
    record_posted_ = false;
    if (results_.empty() || recording_) return;
    recording_ = true;
    storage::DeliveryChange change{.kind = storage::DeliveryChange::Kind::kAttempts,
                                   .attempts = std::move(results_)};
    results_.clear();
    std::vector<std::pair<std::string, std::uint64_t>> done;
    for (const auto& a : change.attempts) done.emplace_back(a.endpoint, a.seq);
    ++committing_;
    store_.ChangeDeliveries(
        std::move(change),
        [this, done = std::move(done)](const storage::DeliveryResult& result) mutable {
          net::post(ioc_, [this, done = std::move(done), result] {
            recording_ = false;
            Recorded(done, result);
            --committing_;
            Record();
          });
        },
        /*own_thread=*/true);
  }

  void Recorded(const std::vector<std::pair<std::string, std::uint64_t>>& done,
                const storage::DeliveryResult& result) {
    if (result.error) {
      // Not recorded: the deliveries stay due where they were and are attempted again.
      log::Error("cannot record delivery attempts; they will be made again")
          .Add("attempts", done.size())
          .Add("error", result.error.message());
    }
    std::set<Endpoint*> touched;
    for (const auto& [name, seq] : done) {
      for (auto& ep : endpoints_) {
        if (ep->name != name) continue;
        ep->in_flight.erase(seq);
        --busy_;
        touched.insert(ep.get());
      }
    }
    for (const std::string& name : result.disabled) {
      for (auto& ep : endpoints_) {
        if (ep->name == name && !ep->disabled) {
          ep->disabled = true;
          log::Warn("endpoint disabled: it answered 410 Gone; its deliveries wait for "
                    "POST /v1/endpoints/{name}/enable")
              .Add("endpoint", name);
        }
      }
    }
    {
      std::lock_guard lock(figures_mu_);
      if (!result.error) Count(result);
      UpdateFigures();
    }
    for (Endpoint* ep : touched) {
      if (ep->more || ep->in_flight.empty()) Fill(*ep);
    }
  }

  // Adds `result`'s outcomes to their endpoints' figures. REQUIRES: figures_mu_.
  void Count(const storage::DeliveryResult& result) {
    for (const auto& [endpoint, outcome] : result.outcomes) {
      for (auto& ep : endpoints_) {
        if (ep->name != endpoint) continue;
        if (outcome == storage::DeliveryOutcome::kDead) {
          log::Warn("delivery dead: its retry schedule is spent").Add("endpoint", endpoint);
        }
        switch (outcome) {
          case storage::DeliveryOutcome::kDelivered: ++ep->figures.delivered; break;
          case storage::DeliveryOutcome::kRetrying: ++ep->figures.retrying; break;
          case storage::DeliveryOutcome::kDead: ++ep->figures.dead; break;
          case storage::DeliveryOutcome::kGone: ++ep->figures.gone; break;
        }
      }
    }
  }

  // REQUIRES: figures_mu_.
  void UpdateFigures() {
    for (auto& ep : endpoints_) {
      ep->figures.in_flight = ep->in_flight.size();
      ep->figures.connections = ep->client->connections_opened();
      ep->figures.disabled = ep->disabled;
    }
  }

  storage::Store& store_;
  const DispatcherOptions options_;
  net::io_context ioc_{1};
  net::steady_timer timer_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<storage::DeliveryAttemptDone> results_;  // finished, not yet handed over
  bool record_posted_ = false;
  bool recording_ = false;  // a change is with the store
  bool stopping_ = false;  // the loop's: no more reads of the queues
  bool closing_ = false;   // the loop's: results are no longer recorded
  std::mt19937_64 random_{std::random_device{}()};
  std::atomic<bool> stopped_{false};
  std::atomic<int> busy_{0};        // attempts sent and not yet recorded (or dropped)
  std::atomic<int> committing_{0};  // changes handed to the store, not yet answered
  mutable std::mutex figures_mu_;
};

class DeliveryCollectable final : public prometheus::Collectable {
 public:
  explicit DeliveryCollectable(const Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    auto family = [](const char* name, const char* help, MetricType type) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    auto attempts = family("cartwatch_webhook_attempts_total",
                           "Webhook delivery attempts recorded, by endpoint and outcome: delivered (2xx), "
                           "retrying (failed, attempted again later), dead (failed, the schedule is spent), "
                           "gone (410: the endpoint was disabled).",
                           MetricType::Counter);
    auto seconds = family("cartwatch_webhook_attempt_seconds_total",
                          "Time spent in webhook delivery attempts, by endpoint.", MetricType::Counter);
    auto connections = family("cartwatch_webhook_connections_opened_total",
                              "Connections opened to each webhook endpoint (keep-alive reuses them).",
                              MetricType::Counter);
    auto in_flight = family("cartwatch_webhook_in_flight",
                            "Webhook deliveries being attempted or recorded now, by endpoint.",
                            MetricType::Gauge);
    auto queued = family("cartwatch_webhook_queued",
                         "Webhook deliveries waiting in the endpoint's queue (pending or waiting "
                         "for the endpoint, due or not; counted each tick, up to a million).",
                         MetricType::Gauge);
    auto dead = family("cartwatch_webhook_dead",
                       "Webhook deliveries to the endpoint that are dead (the retry schedule is "
                       "spent) and not retried by hand since.",
                       MetricType::Gauge);
    auto disabled = family("cartwatch_webhook_endpoint_disabled",
                           "1 while the endpoint is disabled (it answered 410 Gone; POST "
                           "/v1/endpoints/{name}/enable), else 0.",
                           MetricType::Gauge);
    auto add = [](prometheus::MetricFamily& f, const std::string& endpoint, double value,
                  const char* outcome = nullptr) {
      prometheus::ClientMetric m;
      m.label.push_back({"endpoint", endpoint});
      if (outcome) m.label.push_back({"outcome", outcome});
      if (f.type == MetricType::Counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      f.metric.push_back(std::move(m));
    };
    for (const auto& e : dispatcher_.GetFigures()) {
      add(attempts, e.name, static_cast<double>(e.delivered), "delivered");
      add(attempts, e.name, static_cast<double>(e.retrying), "retrying");
      add(attempts, e.name, static_cast<double>(e.dead), "dead");
      add(attempts, e.name, static_cast<double>(e.gone), "gone");
      add(seconds, e.name, e.seconds);
      add(connections, e.name, static_cast<double>(e.connections));
      add(in_flight, e.name, static_cast<double>(e.in_flight));
      add(queued, e.name, static_cast<double>(e.queued));
      add(dead, e.name, static_cast<double>(e.dead_now));
      add(disabled, e.name, e.disabled ? 1 : 0);
    }
    return {attempts, seconds, connections, in_flight, queued, dead, disabled};
  }

 private:
  const Dispatcher& dispatcher_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> Dispatcher::MakeCollectable() const {
  return std::make_shared<DeliveryCollectable>(*this);
}

std::unique_ptr<Dispatcher> Dispatcher::Start(storage::Store& store,
                                              std::vector<EndpointConfig> endpoints,
                                              const DispatcherOptions& options,
                                              std::string* error) {
  auto d = std::make_unique<DispatcherImpl>(store, options);
  if (!d->Init(std::move(endpoints), error)) return nullptr;
  d->Run();
  return d;
}

}  // namespace cartwatch::webhooks
