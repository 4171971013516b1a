// Micro-benchmarks of ingest parsing: collector::ParseIngest on the bodies the collector
// sees most (one track message; a batch of 50), and Gunzip + ParseIngest for a gzip'd batch.
//
// Bodies come from bench/workload.h (seeded, so every run parses the same bytes). Each
// benchmark cycles through a small pool of distinct bodies so the branch predictor cannot
// learn one input by heart.
//
// Padding: ParseIngest needs body.capacity() >= size + simdjson's padding and reserves it
// itself otherwise (a copy). The pooled bodies are reserved with that padding once, before
// timing; ParseIngest only reads the body (simdjson On Demand unescapes into the parser's
// own buffer), so the same strings are reused every iteration with no copy and nothing to
// restore. This is checked after the timed loop. The gzip benchmark inflates into a fresh
// string per iteration, as the router does, and Gunzip reserves the padding itself.
//
// Reported: bytes/s of JSON parsed (decompressed bytes for the gzip benchmark, whose
// compressed size is in the label) and items/s = messages accepted.
#include <benchmark/benchmark.h>
#include <zlib.h>  // only to gzip the bodies in setup; zlib comes with cartwatch_ingest

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/workload.h"
#include "collector/gzip.h"
#include "collector/ingest.h"
#include "collector/options.h"
#include "util/time.h"

namespace {

using cartwatch::bench::Workload;
using cartwatch::bench::WorkloadOptions;
using cartwatch::collector::Gunzip;
using cartwatch::collector::InflateResult;
using cartwatch::collector::Limits;
using cartwatch::collector::ParseIngest;
using cartwatch::collector::Route;

// simdjson::SIMDJSON_PADDING (64); bench/ does not see simdjson's headers.
constexpr std::size_t kPadding = 64;
constexpr std::size_t kPoolSize = 16;

struct Body {
  std::string json;        // capacity >= size + kPadding
  std::size_t messages = 0;
  std::string gzipped;     // the same JSON as one gzip member (batch benchmarks only)
};

std::string Padded(const std::string& s) {
  std::string out;
  out.reserve(s.size() + kPadding);
  out.assign(s);
  return out;
}

// One gzip member at the default level, as `gzip` or a browser's CompressionStream makes.
std::string Gzip(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

// The kPoolSize single track messages closest to 400 bytes among the first 20,000 requests
// of the stream (the workload's track bodies run about 500-700 bytes, so these are its
// smallest; the label gives their real average).
std::vector<Body> TrackPool() {
  Workload workload(WorkloadOptions{.seed = 42, .batch = 1});
  std::vector<Body> pool;
  for (int i = 0; i < 20'000; ++i) {
    auto req = workload.Next();
    if (req.target != "/v1/track") continue;
    pool.push_back(Body{Padded(req.body), req.messages, {}});
  }
  auto distance = [](const Body& b) {
    return b.json.size() > 400 ? b.json.size() - 400 : 400 - b.json.size();
  };
  std::stable_sort(pool.begin(), pool.end(),
                   [&](const Body& a, const Body& b) { return distance(a) < distance(b); });
  if (pool.size() > kPoolSize) pool.resize(kPoolSize);
  return pool;
}

// kPoolSize batches of 50 messages, with their gzip'd form.
std::vector<Body> BatchPool() {
  Workload workload(WorkloadOptions{.seed = 42, .batch = 50});
  std::vector<Body> pool;
  for (std::size_t i = 0; i < kPoolSize; ++i) {
    auto req = workload.Next();
    pool.push_back(Body{Padded(req.body), req.messages, Gzip(req.body)});
  }
  return pool;
}

const std::vector<Body>& Track() {
  static const std::vector<Body> pool = TrackPool();
  return pool;
}
const std::vector<Body>& Batch() {
  static const std::vector<Body> pool = BatchPool();
  return pool;
}

// Parses every body once, untimed: each must be accepted whole.
bool Check(benchmark::State& state, std::vector<Body>& pool, Route route, const Limits& limits) {
  if (pool.size() < kPoolSize) {
    state.SkipWithError("the workload yielded too few bodies of the wanted kind");
    return false;
  }
  for (Body& b : pool) {
    auto parsed = ParseIngest(b.json, route, cartwatch::util::NowMs(), limits);
    if (parsed.error || !parsed.rejected.empty() || parsed.accepted.size() != b.messages ||
        b.messages == 0) {
      state.SkipWithError("a workload body was not accepted whole by ParseIngest");
      return false;
    }
    if (route == Route::kBatch && b.gzipped.empty()) {
      state.SkipWithError("gzip of a workload body failed");
      return false;
    }
  }
  return true;
}

// The bodies were only read: same bytes and still padded, so nothing was copied.
void CheckUntouched(benchmark::State& state, const std::vector<Body>& pool,
                    const std::vector<Body>& original) {
  for (std::size_t i = 0; i < pool.size(); ++i) {
    if (pool[i].json != original[i].json || pool[i].json.capacity() < pool[i].json.size() + kPadding)
      state.SkipWithError("ParseIngest changed a body: the benchmark must copy it");
  }
}

void ParseBench(benchmark::State& state, const std::vector<Body>& source, Route route) {
  const Limits limits;
  // A copy of a string need not keep its capacity: pad the copies again.
  std::vector<Body> pool = source;
  for (Body& b : pool) b.json = Padded(b.json);
  if (!Check(state, pool, route, limits)) return;
  const auto now = cartwatch::util::NowMs();

  std::size_t i = 0, bytes = 0, messages = 0;
  for (auto _ : state) {
    Body& b = pool[i];
    auto parsed = ParseIngest(b.json, route, now, limits);
    benchmark::DoNotOptimize(parsed);
    bytes += b.json.size();
    messages += parsed.accepted.size();
    if (++i == pool.size()) i = 0;
  }
  CheckUntouched(state, pool, source);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
  std::size_t size = 0;
  for (const Body& b : pool) size += b.json.size();
  state.SetLabel("avg body " + std::to_string(size / pool.size()) + " B");
}

// (a) One ~400-byte track message on /v1/track.
void BM_ParseIngest_Track(benchmark::State& state) { ParseBench(state, Track(), Route::kTrack); }
BENCHMARK(BM_ParseIngest_Track);

// (b) A batch of 50 messages on /v1/batch.
void BM_ParseIngest_Batch50(benchmark::State& state) { ParseBench(state, Batch(), Route::kBatch); }
BENCHMARK(BM_ParseIngest_Batch50);

// (c) The same batches gzip'd: Gunzip (into a fresh string, as the router does) then
// ParseIngest. Both are timed. Bytes/s counts the decompressed JSON.
void BM_GunzipParseIngest_Batch50(benchmark::State& state) {
  const Limits limits;
  std::vector<Body> pool = Batch();
  if (!Check(state, pool, Route::kBatch, limits)) return;
  const auto now = cartwatch::util::NowMs();

  std::size_t i = 0, bytes = 0, messages = 0;
  bool failed = false;
  for (auto _ : state) {
    const Body& b = pool[i];
    std::string inflated;
    if (Gunzip(b.gzipped, limits.max_request_bytes, kPadding, inflated) != InflateResult::kOk) {
      failed = true;
      break;
    }
    auto parsed = ParseIngest(inflated, Route::kBatch, now, limits);
    benchmark::DoNotOptimize(parsed);
    bytes += inflated.size();
    messages += parsed.accepted.size();
    if (++i == pool.size()) i = 0;
  }
  if (failed) {
    state.SkipWithError("Gunzip failed");
    return;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
  std::size_t json = 0, gz = 0;
  for (const Body& b : pool) {
    json += b.json.size();
    gz += b.gzipped.size();
  }
  state.SetLabel("avg body " + std::to_string(json / pool.size()) + " B, gzip'd " +
                 std::to_string(gz / pool.size()) + " B");
}
BENCHMARK(BM_GunzipParseIngest_Batch50);

// Gunzip alone on the same bodies, to split (c) into its two parts.
void BM_Gunzip_Batch50(benchmark::State& state) {
  const Limits limits;
  const std::vector<Body>& pool = Batch();
  if (pool.size() < kPoolSize || pool[0].gzipped.empty()) {
    state.SkipWithError("no gzip'd workload bodies");
    return;
  }
  std::size_t i = 0, bytes = 0, messages = 0;
  for (auto _ : state) {
    const Body& b = pool[i];
    std::string inflated;
    auto rc = Gunzip(b.gzipped, limits.max_request_bytes, kPadding, inflated);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(inflated.data());
    bytes += inflated.size();
    messages += b.messages;
    if (++i == pool.size()) i = 0;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
}
BENCHMARK(BM_Gunzip_Batch50);

}  // namespace
