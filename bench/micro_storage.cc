// Micro-benchmarks of the store: the key encodings (storage/keys.h), the group commit
// through the real RocksDB store (Append K messages, then Flush), and RocksDB by itself
// writing the same messages (the floor under any store that keeps them in RocksDB's WAL).
//
// The store benchmarks open a fresh store in a new temporary directory for every run of
// the benchmark function, and close it and remove the directory at the end of that run.
// Their messages are what the collector would store: Workload request bodies passed
// through collector::ParseIngest (untimed), about 450 bytes of JSON each, with a fresh
// UUID v4 as messageId for every message appended, so that dedup keeps all of them.
#include <benchmark/benchmark.h>
#include <malloc.h>  // mallinfo2
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "bench/workload.h"
#include "collector/ingest.h"
#include "collector/options.h"
#include "profiles/event.h"
#include "storage/dedup_index.h"
#include "storage/keys.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "util/time.h"
#include "util/varint.h"
#include "util/uuid.h"

namespace {

namespace storage = cartwatch::storage;
using cartwatch::bench::Workload;
using cartwatch::bench::WorkloadOptions;

constexpr std::string_view kSite = "shop-example";

std::vector<std::string> Uuids(std::size_t n) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) ids.push_back(cartwatch::util::NewUuidV4());
  return ids;
}

// ---------------------------------------------------------------------------------------
// (a) Key encodings. items/s = keys encoded (or cursors decoded).

// The event key as a commit builds it from scratch: site prefix, then the key.
void BM_Keys_SitePrefixAndEventKey(benchmark::State& state) {
  std::uint64_t id = 1'780'000'000'000'000;  // received_at_ms * 1000, as the store makes ids
  for (auto _ : state) {
    std::string prefix = storage::SitePrefix(kSite);
    std::string key = storage::EventKey(prefix, id++);
    benchmark::DoNotOptimize(key.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Keys_SitePrefixAndEventKey);

void BM_Keys_EventKey(benchmark::State& state) {
  const std::string prefix = storage::SitePrefix(kSite);
  std::uint64_t id = 1'780'000'000'000'000;
  for (auto _ : state) {
    std::string key = storage::EventKey(prefix, id++);
    benchmark::DoNotOptimize(key.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Keys_EventKey);

// Dedup identity of a 36-character UUID messageId (MurmurHash3 x64 128 of prefix and id).
void BM_Keys_MessageIdHash(benchmark::State& state) {
  const std::string prefix = storage::SitePrefix(kSite);
  const std::vector<std::string> ids = Uuids(1024);
  std::size_t i = 0;
  for (auto _ : state) {
    storage::IdHash h = storage::MessageIdHash(prefix, ids[i]);
    benchmark::DoNotOptimize(h);
    i = (i + 1) & 1023;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Keys_MessageIdHash);

// The dedup index holding N ids: a message whose id is already in it (a resend: the
// lookup a new id pays too, before its insert), in random order over the N, so that the
// table's cache misses count as they do in the server. bytes_per_id: the heap the N ids
// took (mallinfo2): the table, and a commit's scratch.
void BM_Dedup_Lookup(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string prefix = storage::SitePrefix(kSite);
  std::vector<storage::IdHash> hashes(n);
  for (std::size_t i = 0; i < n; ++i) {
    hashes[i] = storage::MessageIdHash(prefix, "bm-" + std::to_string(i));
  }
  const struct mallinfo2 before = mallinfo2();
  auto index = std::make_unique<storage::DedupIndex>(std::chrono::hours(24), SIZE_MAX);
  for (std::size_t i = 0; i < n; i += 50) {  // commits of 50, as batches of 50 make them
    index->Begin(1'000);
    for (std::size_t j = i; j < std::min(n, i + 50); ++j) index->Enter(hashes[j], 1'000);
    index->End(/*written=*/true, /*stored=*/true);
  }
  const struct mallinfo2 after = mallinfo2();
  const double bytes = static_cast<double>((after.uordblks + after.hblkhd) -
                                           (before.uordblks + before.hblkhd));
  std::mt19937_64 rng(42);
  std::shuffle(hashes.begin(), hashes.end(), rng);
  std::size_t i = 0, duplicates = 0;
  index->Begin(2'000);
  for (auto _ : state) {
    duplicates += index->Enter(hashes[i], 2'000) ? 0 : 1;
    if (++i == n) i = 0;
  }
  index->End(/*written=*/true, /*stored=*/false);
  if (static_cast<benchmark::IterationCount>(duplicates) != state.iterations()) state.SkipWithError("an id was not found");
  state.counters["bytes_per_id"] = bytes / static_cast<double>(n);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Dedup_Lookup)->ArgNames({"ids"})->Arg(1'000'000)->Arg(5'000'000)->Arg(10'000'000);

void BM_Keys_EncodeCursor(benchmark::State& state) {
  std::uint64_t id = 1'780'000'000'000'000;
  for (auto _ : state) {
    std::string cursor = storage::EncodeCursor(id++);
    benchmark::DoNotOptimize(cursor.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Keys_EncodeCursor);

void BM_Keys_DecodeCursor(benchmark::State& state) {
  std::vector<std::string> cursors;
  for (std::uint64_t i = 0; i < 1024; ++i)
    cursors.push_back(storage::EncodeCursor(1'780'000'000'000'000 + i * 7919));
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    auto id = storage::DecodeCursor(cursors[i]);
    sum += id.value_or(0);
    i = (i + 1) & 1023;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Keys_DecodeCursor);

// ---------------------------------------------------------------------------------------
// (b) Group commit: per iteration one Append of K messages, then Flush (which writes them
// as one WriteBatch with one dedup log record, after checking the in-memory dedup index,
// and runs the callback).
// Real time: with fsync the committing thread sleeps in fdatasync.

// Messages as the collector stores them: the bodies of the first `requests` Workload
// requests (default options: 100,000 visitors) through ParseIngest.
std::vector<storage::Message> StoredMessages(int requests) {
  Workload workload(WorkloadOptions{.seed = 7, .batch = 1});
  const cartwatch::collector::Limits limits;
  std::vector<storage::Message> out;
  for (int i = 0; i < requests; ++i) {
    auto req = workload.Next();
    using cartwatch::collector::Route;
    Route route;
    if (req.target == "/v1/track") route = Route::kTrack;
    else if (req.target == "/v1/page") route = Route::kPage;
    else if (req.target == "/v1/identify") route = Route::kIdentify;
    else if (req.target == "/v1/batch") route = Route::kBatch;
    else continue;
    auto parsed =
        cartwatch::collector::ParseIngest(req.body, route, cartwatch::util::NowMs(), limits);
    if (parsed.error) continue;
    for (auto& m : parsed.accepted) out.push_back(std::move(m));
  }
  return out;
}

// The 256 stored messages closest to 450 bytes among the first 20,000 requests. (The
// workload's bodies are 500-700 bytes and the stored form adds receivedAt etc., so these
// are its smallest; the benchmark's label gives their real average.) Few visitors: their
// records stay in the CPU caches.
std::vector<storage::Message> Templates() {
  std::vector<storage::Message> out = StoredMessages(20'000);
  auto distance = [](const storage::Message& m) {
    return m.json.size() > 450 ? m.json.size() - 450 : 450 - m.json.size();
  };
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    return distance(a) < distance(b);
  });
  if (out.size() > 256) out.resize(256);
  return out;
}

const std::vector<storage::Message>& TemplatePool() {
  static const std::vector<storage::Message> pool = Templates();
  return pool;
}

// The first 200,000 requests' messages as they come, from most of the workload's 100,000
// visitors: their records do not fit the CPU caches, as in a load-generator run.
const std::vector<storage::Message>& WorkloadPool() {
  static const std::vector<storage::Message> pool = StoredMessages(200'000);
  return pool;
}

// The facts a message's state change depends on (profiles::ParseEvent: a second parse of
// the stored JSON). Arg reuse: 0, into a new Event each time (ParseEvent); 1, into one
// Event kept across messages (ParseEventInto), as the committing thread parses them, so
// that its strings keep their memory.
void BM_ParseEvent(benchmark::State& state) {
  const bool reuse = state.range(0) != 0;
  const auto& pool = TemplatePool();
  std::size_t i = 0, bytes = 0, changes = 0;
  cartwatch::profiles::Event kept;
  for (auto _ : state) {
    const storage::Message& m = pool[i++ % pool.size()];
    if (reuse) {
      changes += cartwatch::profiles::ParseEventInto(m.json, kept);
      benchmark::DoNotOptimize(kept);
    } else {
      auto event = cartwatch::profiles::ParseEvent(m.json);
      changes += event.has_value();
      benchmark::DoNotOptimize(event);
    }
    bytes += m.json.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["with_state_change"] =
      benchmark::Counter(static_cast<double>(changes) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_ParseEvent)->ArgNames({"reuse"})->Arg(0)->Arg(1);

// A store in a fresh temporary directory; closes the store and removes the directory when
// it goes away.
class TempStore {
 public:
  TempStore(bool fsync, bool apply_state, std::string* error) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "cartwatch-micro-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      *error = "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    storage::StoreOptions options;
    options.data_dir = dir_;
    options.fsync = fsync;
    options.apply_state = apply_state;
    auto opened = storage::Store::Open(options, error);
    if (opened) store_ = std::move(*opened);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;
  ~TempStore() {
    if (store_) {
      store_->Close();
      store_.reset();
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  storage::Store* get() const { return store_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<storage::Store> store_;
};

struct Tally {
  std::size_t stored = 0;
  std::size_t duplicates = 0;
  std::size_t errors = 0;
  std::string first_error;
};

// Args: K (messages per Append), fsync (0/1), state (0/1: StoreOptions::apply_state; 0
// measures the store without the visitor and customer records), visitors (0: the 256
// templates, 1: the workload's messages in order, WorkloadPool).
void BM_Store_AppendFlush(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  const bool fsync = state.range(1) != 0;
  const bool apply_state = state.range(2) != 0;
  const std::vector<storage::Message>& templates =
      state.range(3) != 0 ? WorkloadPool() : TemplatePool();
  if (templates.size() < 16) {
    state.SkipWithError("the workload yielded too few messages");
    return;
  }
  std::string error;
  TempStore store(fsync, apply_state, &error);
  if (store.get() == nullptr) {
    state.SkipWithError(("cannot open the store: " + error).c_str());
    return;
  }

  // The messages of the next `pool` iterations, built ahead so that copying them is not
  // timed (the collector moves ParseIngest's vector into Append). Refilling pauses the
  // timers once per `pool` iterations.
  const std::size_t pool = std::max<std::size_t>(64, 4096 / k);
  std::vector<std::vector<storage::Message>> batches(pool);
  std::vector<std::size_t> batch_bytes(pool);
  std::size_t next_template = 0;
  auto refill = [&] {
    const auto now = cartwatch::util::NowMs();
    for (std::size_t b = 0; b < pool; ++b) {
      auto& batch = batches[b];
      batch.clear();
      batch.reserve(k);
      batch_bytes[b] = 0;
      for (std::size_t j = 0; j < k; ++j) {
        const storage::Message& tm = templates[next_template];
        next_template = (next_template + 1) % templates.size();
        batch.push_back(storage::Message{cartwatch::util::NewUuidV4(), now, tm.json});
        batch_bytes[b] += tm.json.size();
      }
    }
  };
  refill();

  Tally tally;
  Tally* t = &tally;
  const std::string site(kSite);
  std::size_t used = 0, bytes = 0;
  for (auto _ : state) {
    if (used == pool) {
      state.PauseTiming();
      refill();
      used = 0;
      state.ResumeTiming();
    }
    bytes += batch_bytes[used];
    store.get()->Append(site, std::move(batches[used]), [t](const storage::AppendResult& r) {
      if (r.error) {
        if (t->errors++ == 0) t->first_error = r.error.message();
        return;
      }
      t->stored += r.stored;
      t->duplicates += r.duplicates;
    });
    store.get()->Flush();
    ++used;
  }

  if (tally.errors != 0) {
    state.SkipWithError(("append failed " + std::to_string(tally.errors) +
                         " times, first: " + tally.first_error)
                            .c_str());
    return;
  }
  if (tally.stored != k * state.iterations()) {
    state.SkipWithError(("stored " + std::to_string(tally.stored) + " of " +
                         std::to_string(k * state.iterations()) + " messages (" +
                         std::to_string(tally.duplicates) + " duplicates)")
                            .c_str());
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(tally.stored));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  std::size_t size = 0;
  for (const auto& m : templates) size += m.json.size();
  state.SetLabel("avg message " + std::to_string(size / templates.size()) + " B");
}
BENCHMARK(BM_Store_AppendFlush)
    ->ArgNames({"K", "fsync", "state", "visitors"})
    ->Args({1, 0, 1, 0})
    ->Args({20, 0, 1, 0})
    ->Args({50, 0, 1, 0})
    ->Args({20, 0, 0, 0})
    ->Args({50, 0, 0, 0})
    ->Args({50, 0, 1, 1})
    ->Args({50, 0, 0, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// Each commit waits for fdatasync: a fixed, small number of iterations.
BENCHMARK(BM_Store_AppendFlush)
    ->ArgNames({"K", "fsync", "state", "visitors"})
    ->Args({50, 1, 1, 0})
    ->Iterations(200)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------------------
// (c) RocksDB alone: per iteration one WriteBatch of K Puts of the same messages at
// time-ordered event keys (site prefix + increasing id) of the events column family, written
// with the WAL on and sync off, in a fresh database opened as the server opens it
// (storage::OpenDatabase: its column families, table options and memtables), with the
// event log compressed or not (storage.compress_event_log). No dedup, no state, no dedup
// log, no HTTP: what writing the messages into RocksDB costs at the least. Run it pinned to one core (taskset -c 0) to charge it the flushes too, as the
// server's one core pays them (bench/limits.md).
void BM_RocksDB_WriteBatch(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  const std::vector<storage::Message>& templates = TemplatePool();
  if (templates.empty()) {
    state.SkipWithError("the workload yielded no messages");
    return;
  }
  std::string dir =
      (std::filesystem::temp_directory_path() / "cartwatch-micro-rocksdb-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  // The server's own database: every column family with its options (table checksums,
  // compression, memtables, background jobs) as storage/schema.cc opens them.
  storage::StoreOptions options;
  options.data_dir = dir;
  options.compress_event_log = state.range(1) != 0;
  storage::Database database;
  std::string error;
  rocksdb::Status s = storage::OpenDatabase(options, rocksdb::WALRecoveryMode::kPointInTimeRecovery,
                                            storage::OpenHooks{}, database, &error);
  if (!s.ok()) {
    state.SkipWithError(error.c_str());
    return;
  }
  rocksdb::DB* db = database.db.get();
  const std::string prefix = storage::SitePrefix(kSite);
  std::string key;
  std::uint64_t id = static_cast<std::uint64_t>(cartwatch::util::NowMs()) * 1000;
  std::size_t next = 0, bytes = 0;
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions wo;
  // record_batch: the K messages as one value, the event log's record batch
  // (storage::AppendBatchedEvent, docs/storage.md "Record batches"), under its last id.
  const bool record_batch = state.range(2) != 0;
  std::string value;
  for (auto _ : state) {
    batch.Clear();
    value.clear();
    for (std::size_t j = 0; j < k; ++j) {
      const std::string& json = templates[next].json;
      next = (next + 1) % templates.size();
      bytes += json.size();
      if (record_batch) {
        storage::AppendBatchedEvent(value, id, id + 1, json);
        ++id;
        continue;
      }
      storage::EventKeyInto(key, prefix, ++id);
      batch.Put(database.events, key, json);
    }
    if (record_batch) {
      storage::EventKeyInto(key, prefix, id);
      batch.Put(database.events, key, value);
    }
    s = db->Write(wo, &batch);
    if (!s.ok()) {
      state.SkipWithError(("write failed: " + s.ToString()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(k * state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  database.Close();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
BENCHMARK(BM_RocksDB_WriteBatch)
    ->ArgNames({"K", "compress", "record_batch"})
    ->Args({15, 0, 0})
    ->Args({15, 1, 0})
    ->Args({50, 0, 0})
    ->Args({50, 1, 0})
    ->Args({50, 1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
