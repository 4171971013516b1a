// cartwatch-timer-bench: how long firing the rule engine's due timers takes, and whether it
// depends on how many timers are pending (docs/rules.md: "a tick costs in proportion to
// what is due"). It
//   1. opens a store with the example rules' abandoned-cart rule and sends --due customers
//      a cart each (so each has a timer due an hour later, and a record to fire against),
//   2. closes it and writes --pending more timers straight into the timers column family,
//      due a month later (with their per-person index entries, as the store writes them),
//   3. reopens the store, compacts nothing, and times FireDueTimers at the hour until
//      every due timer has fired.
// Prints one line: pending, due, seconds, actions. Run from a release build:
//   build/release/cartwatch-timer-bench --pending 10000000 --due 10000
//   build/release/cartwatch-timer-bench --pending 100000 --due 10000
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "rules/rules.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "util/time.h"

namespace {

using namespace cartwatch;
constexpr std::int64_t kT0 = 1795454642000;  // 2026-11-24
constexpr std::int64_t kHour = 3600 * 1000;

rules::RuleSet Rules() {
  rules::RuleSet set;
  set.rules.push_back(rules::Rule{
      .name = "abandoned_cart",
      .kind = rules::Kind::kAbandonedCart,
      .stages = {rules::Stage{.after = kHour, .task = true, .email = false, .email_template = {}}},
      .conditions = {}});
  return set;
}

std::string Message(int i, const std::string& type, const std::string& body) {
  const std::string t = util::FormatIso8601(kT0 + i);
  return R"({"type":")" + type + R"(","messageId":"m-)" + type + std::to_string(i) +
         R"(","userId":"c-)" + std::to_string(i) + R"(","anonymousId":"d-)" + std::to_string(i) +
         R"(","timestamp":")" + t + R"(","receivedAt":")" + t + R"(")" + body + "}";
}

std::unique_ptr<storage::Store> Open(const std::string& dir) {
  storage::StoreOptions options;
  options.data_dir = dir;
  options.rules = Rules();
  options.timer_tick = std::chrono::milliseconds(0);
  options.thresholds_interval = std::chrono::hours(24 * 365);
  std::string error;
  auto store = storage::Store::Open(options, &error);
  if (!store) {
    std::fprintf(stderr, "cannot open the store: %s\n", error.c_str());
    std::exit(1);
  }
  return std::move(*store);
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

// Writes `pending` timers due a month after kT0 straight into RocksDB, keyed as
// storage/timers.h keys them.
void WritePending(const std::string& dir, std::int64_t pending) {
  std::vector<std::string> names;
  rocksdb::Options options;
  rocksdb::DB::ListColumnFamilies(options, dir, &names);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, dir, cfs, &handles, &raw).ok()) {
    std::fprintf(stderr, "cannot open RocksDB\n");
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* timers = nullptr;
  for (auto* h : handles) {
    if (h->GetName() == "timers") timers = h;
  }
  const std::uint32_t rule = rules::RuleId("abandoned_cart");
  const std::string site = storage::SitePrefix("shop");
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // bulk load; flushed below
  std::mt19937_64 random(42);
  for (std::int64_t i = 0; i < pending; ++i) {
    const std::string id = "p-" + std::to_string(random());
    std::string suffix;
    storage::PutBigEndian64(suffix, static_cast<std::uint64_t>(kT0 + 30 * 24 * kHour + i));
    for (int shift = 24; shift >= 0; shift -= 8) suffix.push_back(static_cast<char>(rule >> shift));
    suffix.push_back('\0');
    std::string value;
    storage::PutBigEndian64(value, 1);
    batch.Put(timers, "T" + suffix + site + "c" + id, value);
    std::string person = "P" + site + "c";
    person.push_back(static_cast<char>(id.size() >> 8));
    person.push_back(static_cast<char>(id.size() & 0xff));
    batch.Put(timers, person + id + suffix, value);
    if (batch.Count() >= 20000) {
      db->Write(wo, &batch);
      batch.Clear();
    }
  }
  db->Write(wo, &batch);
  db->Flush(rocksdb::FlushOptions(), handles);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t pending = 10'000'000, due = 10'000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--pending") pending = std::atoll(argv[i + 1]);
    else if (arg == "--due") due = std::atoll(argv[i + 1]);
    else if (arg == "--dir") dir = argv[i + 1];
  }
  const bool temporary = dir.empty();
  if (temporary) {
    dir = (std::filesystem::temp_directory_path() /
           ("cartwatch-timer-bench-" + std::to_string(std::random_device{}())))
              .string();
  }
  {
    auto store = Open(dir);
    for (std::int64_t start = 0; start < due; start += 1000) {
      std::vector<storage::Message> batch;
      for (std::int64_t i = start; i < std::min(due, start + 1000); ++i) {
        const int n = static_cast<int>(i);
        batch.push_back({"m-identify" + std::to_string(n), kT0 + n,
                         Message(n, "identify", R"(,"traits":{"email":"c@example.com"})")});
        batch.push_back({"m-track" + std::to_string(n), kT0 + n,
                         Message(n, "track", R"(,"event":"Product Added","properties":{"product_id":"p","price":10,"quantity":1})")});
      }
      Send(*store, std::move(batch));
    }
  }
  WritePending(dir, pending);
  auto store = Open(dir);
  const auto started = std::chrono::steady_clock::now();
  std::size_t fired = 0, actions = 0;
  for (;;) {
    const storage::FireResult r = store->FireDueTimers(kT0 + 2 * kHour, 1000);
    if (r.error) {
      std::fprintf(stderr, "firing failed: %s\n", r.error.message().c_str());
      return 1;
    }
    fired += r.fired;
    actions += r.actions;
    if (!r.more) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("pending %lld due %lld fired %zu actions %zu seconds %.3f\n",
              static_cast<long long>(pending), static_cast<long long>(due), fired, actions, seconds);
  store.reset();
  if (temporary) std::filesystem::remove_all(dir);
  return fired == static_cast<std::size_t>(due) ? 0 : 1;
}
