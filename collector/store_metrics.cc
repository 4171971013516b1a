#include "collector/store_metrics.h"

#include <string>
#include <utility>
#include <vector>

#include "metrics/metrics.h"

namespace cartwatch::collector {
namespace {

class StoreFigures final : public prometheus::Collectable {
 public:
  explicit StoreFigures(storage::Store& store) : store_(store) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const storage::Store::Health health = store_.GetHealth();
    const storage::Store::RuleFigures rules = store_.GetRuleFigures();
    std::vector<prometheus::MetricFamily> families{
        metrics::GaugeFamily("cartwatch_storage_writable",
                             "1 while RocksDB takes writes (what /readyz reports); 0 while it is "
                             "stalled, read-only after an I/O error, out of space or closed.",
                             health.writable ? 0 : 1),
        metrics::CounterFamily("cartwatch_storage_wal_damage_recoveries_total",
                               "Opens that recovered from a damaged write-ahead log by dropping "
                               "what came after the damage (docs/operations.md).",
                               static_cast<double>(health.wal_damage_recoveries)),
        metrics::CounterFamily("cartwatch_rule_timers_armed_total",
                               "Timers the rule engine armed with the messages that called for "
                               "them (docs/rules.md).",
                               static_cast<double>(rules.timers_armed)),
        metrics::GaugeFamily("cartwatch_rule_timers_pending",
                             "Timers armed and not yet due, fired or dropped (counted every 15 s "
                             "while rules are configured, up to a million).",
                             static_cast<double>(rules.timers_pending)),
        metrics::LabelledCounterFamily(
            "cartwatch_rule_timers_due_total",
            "Timers that fell due, by what became of them: fired (actions taken), stale (the "
            "records no longer called for them), not_matched (conditions or cooldown), held "
            "(an e-mail moved past quiet hours).",
            "outcome",
            {{"fired", static_cast<double>(rules.timers_fired)},
             {"stale", static_cast<double>(rules.timers_stale)},
             {"not_matched", static_cast<double>(rules.timers_not_matched)},
             {"held", static_cast<double>(rules.timers_held)}}),
    };
    // By status, then each sample gets its type.
    prometheus::MetricFamily actions = metrics::LabelledCounterFamily(
        "cartwatch_rule_actions_total",
        "Actions written to the outbox, by type (task.created, email.triggered) and status: "
        "pending (to be delivered) or skipped (e-mail cap, no address, no template).",
        "status",
        {{"pending", static_cast<double>(rules.tasks.pending)},
         {"skipped", static_cast<double>(rules.tasks.skipped)},
         {"pending", static_cast<double>(rules.emails.pending)},
         {"skipped", static_cast<double>(rules.emails.skipped)}});
    for (std::size_t i = 0; i < actions.metric.size(); ++i) {
      actions.metric[i].label.push_back({"type", i < 2 ? "task.created" : "email.triggered"});
    }
    families.push_back(std::move(actions));
    std::vector<std::pair<std::string, double>> by_rule;
    for (const auto& [rule, n] : rules.fired_by_rule) by_rule.emplace_back(rule, static_cast<double>(n));
    families.push_back(metrics::LabelledCounterFamily(
        "cartwatch_rule_fired_total",
        "Timers that took actions, by rule (every configured rule; docs/rules.md).", "rule", by_rule));
    AddStorage(families, store_.GetStorageFigures());
    return families;
  }

  // RocksDB's figures by column family, the queue, the in-memory indexes, the commits.
  static void AddStorage(std::vector<prometheus::MetricFamily>& out,
                         const storage::Store::StorageFigures& s) {
    auto by_cf = [&](std::string name, std::string help, auto field) {
      std::vector<std::pair<std::string, double>> samples;
      for (const auto& f : s.families) samples.emplace_back(f.name, static_cast<double>(field(f)));
      out.push_back(metrics::LabelledGaugeFamily(std::move(name), std::move(help), "cf", samples));
    };
    using Family = storage::Store::StorageFigures::Family;
    by_cf("cartwatch_rocksdb_memtable_bytes",
          "Bytes of RocksDB's memtables (active and waiting to be flushed), by column family.",
          [](const Family& f) { return f.memtable_bytes; });
    by_cf("cartwatch_rocksdb_sst_bytes", "Bytes of RocksDB's live SST files, by column family.",
          [](const Family& f) { return f.sst_bytes; });
    by_cf("cartwatch_rocksdb_live_data_bytes",
          "RocksDB's estimate of the live data, by column family.",
          [](const Family& f) { return f.live_data_bytes; });
    by_cf("cartwatch_rocksdb_pending_compaction_bytes",
          "Bytes RocksDB estimates its compactions still have to rewrite, by column family "
          "(writes slow down and then stop as this grows).",
          [](const Family& f) { return f.pending_compaction_bytes; });
    by_cf("cartwatch_rocksdb_estimated_keys",
          "RocksDB's estimate of the keys, by column family (timers: two a pending timer).",
          [](const Family& f) { return f.estimated_keys; });
    std::vector<std::pair<std::string, double>> stops, slowdowns;
    for (const auto& f : s.families) {
      stops.emplace_back(f.name, static_cast<double>(f.write_stops));
      slowdowns.emplace_back(f.name, static_cast<double>(f.write_slowdowns));
    }
    out.push_back(metrics::LabelledCounterFamily(
        "cartwatch_rocksdb_write_stops_total",
        "Times RocksDB stopped writes (too many memtables or L0 files, or pending compaction "
        "bytes over the limit) since it was opened, by column family.",
        "cf", stops));
    out.push_back(metrics::LabelledCounterFamily(
        "cartwatch_rocksdb_write_slowdowns_total",
        "Times RocksDB slowed writes down since it was opened, by column family.", "cf", slowdowns));
    out.push_back(metrics::GaugeFamily("cartwatch_rocksdb_block_cache_bytes",
                                       "Bytes in RocksDB's block cache.",
                                       static_cast<double>(s.block_cache_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_rocksdb_wal_bytes",
                                       "Bytes of RocksDB's live write-ahead log files.",
                                       static_cast<double>(s.wal_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_rocksdb_write_stopped",
                                       "1 while RocksDB stops writes, else 0.",
                                       s.write_stopped ? 1 : 0));
    out.push_back(metrics::GaugeFamily(
        "cartwatch_rocksdb_delayed_write_rate_bytes",
        "The rate RocksDB limits writes to while it slows them down (bytes/s); 0 when it does not.",
        static_cast<double>(s.delayed_write_rate)));
    out.push_back(metrics::GaugeFamily("cartwatch_commit_queue_messages",
                                       "Messages waiting for a commit or being written "
                                       "(storage.max_queued_messages refuses beyond it).",
                                       static_cast<double>(s.queued_messages)));
    out.push_back(metrics::GaugeFamily("cartwatch_commit_queue_limit_messages",
                                       "storage.max_queued_messages: beyond it ingest answers 503.",
                                       static_cast<double>(s.queued_messages_limit)));
    out.push_back(metrics::GaugeFamily("cartwatch_storage_free_bytes",
                                       "Free bytes of the data directory's disk (0: unknown).",
                                       static_cast<double>(s.disk_free_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_storage_min_free_bytes",
                                       "storage.min_free_mb: below it writes are refused.",
                                       static_cast<double>(s.min_free_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_commit_queue_bytes",
                                       "JSON bytes of the messages waiting for a commit or being written.",
                                       static_cast<double>(s.queued_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_dedup_ids",
                                       "messageIds in the dedup index (storage.dedup_max_ids).",
                                       static_cast<double>(s.dedup_ids)));
    out.push_back(metrics::GaugeFamily("cartwatch_records_cached",
                                       "Visitor and customer records kept in memory.",
                                       static_cast<double>(s.records_cached)));
    out.push_back(metrics::GaugeFamily("cartwatch_records_cached_bytes",
                                       "Memory the written records kept in memory take, as "
                                       "bounded by storage.state_cache_mb.",
                                       static_cast<double>(s.records_cached_bytes)));
    out.push_back(metrics::GaugeFamily("cartwatch_records_unwritten",
                                       "Records changed in memory and not yet written "
                                       "(storage.state_write_delay, storage.state_max_unwritten).",
                                       static_cast<double>(s.records_unwritten)));
    out.push_back(metrics::HistogramFamily("cartwatch_commit_duration_seconds",
                                           "RocksDB write of each commit round (one WriteBatch, "
                                           "to the write-ahead log and the memtables).",
                                           s.commit_seconds));
    out.push_back(metrics::HistogramFamily("cartwatch_commit_batch_messages",
                                           "Messages stored by each commit round.", s.commit_messages));
  }

 private:
  storage::Store& store_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeStoreFigures(storage::Store& store) {
  return std::make_shared<StoreFigures>(store);
}

}  // namespace cartwatch::collector
