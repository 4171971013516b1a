// RocksDB implementation of Store. Key layout: docs/storage.md.
#include "storage/store.h"

#include "storage/keys.h"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

namespace cartwatch::storage {
namespace {

class StoreErrorCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "cartwatch.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOverloaded: return "storage is overloaded";
      case Errc::kClosed: return "storage is closed";
      case Errc::kIoError: return "storage I/O error";
      case Errc::kCorruption: return "storage corruption";
      case Errc::kInvalidArgument: return "invalid argument";
      case Errc::kInternal: return "internal storage error";
    }
    return "unknown storage error";
  }
};

// The one place where rocksdb::Status becomes an error_code (LevelDB's PosixError idea).
boost::system::error_code FromStatus(const rocksdb::Status& s) {
  if (s.ok()) return {};
  if (s.IsIncomplete() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return Errc::kOverloaded;
  }
  if (s.IsIOError()) return Errc::kIoError;
  if (s.IsCorruption()) return Errc::kCorruption;
  if (s.IsInvalidArgument()) return Errc::kInvalidArgument;
  return Errc::kInternal;
}

std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char kEventsCf[] = "events";
constexpr char kDedupCf[] = "dedup";
constexpr char kMetaCf[] = "meta";
constexpr char kLastEventIdKey[] = "last_event_id";

// Drops dedup entries older than the window during compaction; lookups also check the age,
// so an entry that compaction has not reached yet is still treated as expired.
class DedupExpiryFilter : public rocksdb::CompactionFilter {
 public:
  explicit DedupExpiryFilter(std::chrono::milliseconds window) : window_ms_(window.count()) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (value.size() != 8) return false;
    auto seen_at = static_cast<std::int64_t>(GetBigEndian64(value.data()));
    return seen_at < WallNowMs() - window_ms_;
  }
  const char* Name() const override { return "cartwatch.DedupExpiryFilter"; }

 private:
  std::int64_t window_ms_;
};

class RocksStore final : public Store {
 public:
  explicit RocksStore(const StoreOptions& options)
      : options_(options), dedup_filter_(options.dedup_window) {}

  ~RocksStore() override { Close(); }

  bool Open(std::string* error_message) {
    auto cache = rocksdb::NewLRUCache(options_.block_cache_bytes);

    // Flushes and compactions yield to the I/O threads that commit and answer requests: on
    // a busy core a background job otherwise takes whole scheduler slices (milliseconds) and
    // every request waiting meanwhile sees it in its latency. When they fall far behind,
    // RocksDB's write slowdown paces the committers and the background gets the CPU.
    rocksdb::Env* env = rocksdb::Env::Default();
    env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow)
        .PermitUncheckedError();
    env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow)
        .PermitUncheckedError();

    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.max_background_jobs = options_.max_background_jobs;
    db_options.bytes_per_sync = 1 << 20;
    // Commits are serialised (one committing thread at a time).
    db_options.allow_concurrent_memtable_write = false;
    // The event log is the only big writer; keep total WAL bounded so restarts are quick.
    db_options.max_total_wal_size = 4 * options_.write_buffer_bytes;

    auto table_options = [&](bool bloom) {
      rocksdb::BlockBasedTableOptions t;
      t.block_cache = cache;
      if (bloom) {
        t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        t.whole_key_filtering = true;
      }
      // Debian's RocksDB is built portable: its CRC32c is the slow software one, so SST
      // blocks are checksummed with XXH3 instead (the WAL always uses CRC32c).
      t.checksum = rocksdb::kXXH3;
      return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
    };
    auto supported = rocksdb::GetSupportedCompressions();
    auto has = [&](rocksdb::CompressionType c) {
      return std::find(supported.begin(), supported.end(), c) != supported.end();
    };
    rocksdb::CompressionType compression =
        has(rocksdb::kLZ4Compression)      ? rocksdb::kLZ4Compression
        : has(rocksdb::kSnappyCompression) ? rocksdb::kSnappyCompression
                                           : rocksdb::kNoCompression;

    // Flushes and the first compactions write uncompressed: compressing every byte on its
    // way into L0 and L1 cost the flush thread more than anything else it did.
    std::vector<rocksdb::CompressionType> per_level = {rocksdb::kNoCompression,
                                                       rocksdb::kNoCompression};
    per_level.resize(7, compression);

    rocksdb::ColumnFamilyOptions events;
    events.compression_per_level = per_level;
    events.write_buffer_size = options_.write_buffer_bytes;
    // Room for memtables waiting to be flushed, so a slow flush does not stop writes.
    events.max_write_buffer_number = 4;
    events.table_factory = table_options(false);

    // Most lookups here miss (a messageId not seen before): bloom filters in the memtable
    // and in every SST file answer those without reading data blocks.
    rocksdb::ColumnFamilyOptions dedup;
    dedup.write_buffer_size = options_.write_buffer_bytes / 8;
    dedup.max_write_buffer_number = 4;
    dedup.compression_per_level = per_level;
    dedup.table_factory = table_options(true);
    dedup.memtable_prefix_bloom_size_ratio = 0.1;
    dedup.memtable_whole_key_filtering = true;
    dedup.compaction_filter = &dedup_filter_;

    rocksdb::ColumnFamilyOptions meta;
    meta.table_factory = table_options(false);

    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, meta},
        {kEventsCf, events},
        {kDedupCf, dedup},
        {kMetaCf, meta},
    };
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db_options, options_.data_dir, cfs, &handles, &raw);
    if (!s.ok()) {
      *error_message = "cannot open RocksDB in \"" + options_.data_dir + "\": " + s.ToString();
      return false;
    }
    db_.reset(raw);
    for (auto* h : handles) handles_.emplace_back(h);
    events_ = handles[1];
    dedup_ = handles[2];
    meta_ = handles[3];

    std::string value;
    s = db_->Get(rocksdb::ReadOptions(), meta_, kLastEventIdKey, &value);
    if (s.ok() && value.size() == 8) {
      last_event_id_ = GetBigEndian64(value.data());
    } else if (!s.ok() && !s.IsNotFound()) {
      *error_message = "cannot read \"" + options_.data_dir + "\": " + s.ToString();
      return false;
    }
    return true;
  }

  void Append(std::string site, std::vector<Message> messages, AppendCallback done) override {
    if (site.size() > kMaxSiteName) {
      done(AppendResult{.error = Errc::kInvalidArgument});
      return;
    }
    std::size_t bytes = 0;
    for (const Message& m : messages) bytes += m.json.size() + m.message_id.size();
    boost::system::error_code refused;
    {
      std::lock_guard lock(mu_);
      const bool idle = queued_messages_ == 0;  // one request alone is never refused
      if (closing_) {
        refused = Errc::kClosed;
      } else if (!idle && (queued_messages_ + messages.size() > options_.max_queued_messages ||
                           queued_bytes_ + bytes > options_.max_queued_bytes)) {
        refused = Errc::kOverloaded;
      } else {
        queued_messages_ += messages.size();
        queued_bytes_ += bytes;
        queue_.push_back(Pending{std::move(site), std::move(messages), std::move(done), bytes});
      }
    }
    if (refused) done(AppendResult{.error = refused});  // outside the lock: `done` may lock
  }

  void Flush() override {
    std::unique_lock lock(mu_);
    if (committing_) return;  // that thread commits what we queued once its write is done
    CommitQueued(lock);
    lock.unlock();
    MaybeApplyRetention();
  }

  boost::system::error_code DeleteEventsBefore(std::int64_t received_before_ms) override {
    if (received_before_ms <= 0) return {};
    {
      std::lock_guard lock(mu_);
      if (closing_) return Errc::kClosed;
    }
    const std::uint64_t cutoff = static_cast<std::uint64_t>(received_before_ms) * 1000;
    // Site prefixes are found by seeking from one site's range to the next: one seek per
    // site, however many events each holds.
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
    for (it->SeekToFirst(); it->Valid();) {
      rocksdb::Slice key = it->key();
      const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
      if (key.size() != prefix_size + 8) break;  // not an event key of this layout
      std::string prefix(key.data(), prefix_size);
      batch.DeleteRange(events_, EventKey(prefix, 0), EventKey(prefix, cutoff));
      it->Seek(prefix + std::string(9, '\xff'));  // past every key of this site
    }
    if (auto ec = FromStatus(it->status())) return ec;
    it.reset();
    if (batch.Count() == 0) return {};
    return FromStatus(db_->Write(rocksdb::WriteOptions(), &batch));
  }

  boost::system::result<EventPage> ReadEvents(std::string_view site, std::string_view after,
                                              std::size_t limit,
                                              std::size_t max_bytes) override {
    if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
    {
      std::lock_guard lock(mu_);
      if (closing_) return boost::system::error_code(Errc::kClosed);
    }
    std::uint64_t start = 0;
    if (!after.empty()) {
      auto id = DecodeCursor(after);
      if (!id) return boost::system::error_code(Errc::kInvalidArgument);
      if (*id == UINT64_MAX) return EventPage{{}, std::string(after)};
      start = *id + 1;
    }
    std::string prefix = SitePrefix(site);
    std::string upper = prefix + std::string(9, '\xff');
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;  // an export scan would evict the hot state

    EventPage page;
    page.next_cursor = std::string(after);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    std::string seek = EventKey(prefix, start);
    std::size_t bytes = 0;
    for (it->Seek(seek); it->Valid() && page.events.size() < limit; it->Next()) {
      rocksdb::Slice key = it->key();
      if (key.size() != prefix.size() + 8) continue;  // not an event key of this layout
      std::uint64_t id = GetBigEndian64(key.data() + prefix.size());
      page.events.push_back(StoredEvent{EncodeCursor(id), it->value().ToString()});
      page.next_cursor = page.events.back().cursor;
      bytes += it->value().size();
      if (bytes >= max_bytes) break;
    }
    if (auto ec = FromStatus(it->status())) return ec;
    return page;
  }

  boost::system::error_code CheckWritable() override {
    {
      std::lock_guard lock(mu_);
      if (closing_) return Errc::kClosed;
    }
    std::uint64_t stopped = 0, background_errors = 0;
    db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped);
    db_->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &background_errors);
    if (stopped) return Errc::kOverloaded;
    if (background_errors) return Errc::kIoError;
    return {};
  }

  void Close() override {
    {
      std::unique_lock lock(mu_);
      closing_ = true;
      committed_.wait(lock, [&] { return !committing_; });
      CommitQueued(lock);
    }
    if (db_) {
      // With fsync off the WAL may still be in the page cache: a clean stop syncs it.
      db_->FlushWAL(/*sync=*/true).PermitUncheckedError();
      handles_.clear();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
  }

 private:
  struct Pending {
    std::string site;
    std::vector<Message> messages;
    AppendCallback done;
    std::size_t bytes = 0;
  };

  // Applies StoreOptions::retention at most once a minute; cheap otherwise.
  void MaybeApplyRetention() {
    if (options_.retention.count() <= 0) return;
    const std::int64_t now = WallNowMs();
    std::int64_t last = retention_applied_at_.load(std::memory_order_relaxed);
    if (now - last < 60'000) return;
    if (!retention_applied_at_.compare_exchange_strong(last, now)) return;  // another thread
    (void)DeleteEventsBefore(now - options_.retention.count());  // a failure: retried next minute
  }

  // Commits the queue, again and again until it is empty, with this thread as the one
  // committer. Appends queued meanwhile by other threads are committed here too.
  // REQUIRES: `lock` holds mu_ and no other thread is committing.
  void CommitQueued(std::unique_lock<std::mutex>& lock) {
    committing_ = true;
    std::vector<Pending> work;
    while (!queue_.empty()) {
      work.swap(queue_);
      lock.unlock();
      Commit(work);
      // Released only now: the bound covers what is being written, not just what waits.
      std::size_t messages = 0, bytes = 0;
      for (const Pending& p : work) {
        messages += p.messages.size();
        bytes += p.bytes;
      }
      work.clear();
      lock.lock();
      queued_messages_ -= messages;
      queued_bytes_ -= bytes;
    }
    committing_ = false;
    committed_.notify_all();
  }

  // Writes every pending Append as one WriteBatch, then answers them all.
  void Commit(std::vector<Pending>& work) {
    Scratch& sc = scratch_;
    // Dedup keys of every message, looked up in one MultiGet.
    sc.prefixes.resize(work.size());
    std::size_t n = 0;
    for (std::size_t i = 0; i < work.size(); ++i) {
      sc.prefixes[i] = SitePrefix(work[i].site);
      n += work[i].messages.size();
    }
    if (sc.keys.size() < n) sc.keys.resize(n);
    sc.slices.resize(n);
    sc.values.resize(n);
    sc.statuses.resize(n);
    std::size_t k = 0;
    for (std::size_t i = 0; i < work.size(); ++i) {
      for (const Message& m : work[i].messages) {
        DedupKeyInto(sc.keys[k], sc.prefixes[i], m.message_id);
        sc.slices[k] = sc.keys[k];
        ++k;
      }
    }
    if (n > 0) {
      db_->MultiGet(rocksdb::ReadOptions(), dedup_, n, sc.slices.data(), sc.values.data(),
                    sc.statuses.data());
    }
    // A messageId twice in this commit: sorting the keys (stably, so the first stays first)
    // puts repeats next to each other. Keys lead with a hash, so comparisons end early.
    sc.order.resize(n);
    for (std::size_t j = 0; j < n; ++j) sc.order[j] = static_cast<std::uint32_t>(j);
    std::stable_sort(sc.order.begin(), sc.order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return sc.keys[a] < sc.keys[b]; });
    sc.repeated.assign(n, false);
    for (std::size_t j = 1; j < n; ++j) {
      if (sc.keys[sc.order[j]] == sc.keys[sc.order[j - 1]]) sc.repeated[sc.order[j]] = true;
    }

    rocksdb::WriteBatch& batch = sc.batch;
    batch.Clear();
    std::vector<AppendResult> results(work.size());
    std::uint64_t next_id = last_event_id_;
    boost::system::error_code lookup_error;
    k = 0;
    for (std::size_t i = 0; i < work.size(); ++i) {
      for (const Message& m : work[i].messages) {
        const std::size_t j = k++;
        const rocksdb::Status& st = sc.statuses[j];
        if (!st.ok() && !st.IsNotFound()) {
          lookup_error = FromStatus(st);
          continue;
        }
        bool duplicate = sc.repeated[j];
        if (st.ok() && sc.values[j].size() == 8) {
          auto seen_at = static_cast<std::int64_t>(GetBigEndian64(sc.values[j].data()));
          duplicate |= m.received_at_ms - seen_at < options_.dedup_window.count();
        }
        if (duplicate) {
          ++results[i].duplicates;
          continue;
        }
        next_id = std::max(next_id + 1, static_cast<std::uint64_t>(m.received_at_ms) * 1000);
        EventKeyInto(sc.event_key, sc.prefixes[i], next_id);
        batch.Put(events_, sc.event_key, m.json);
        char seen_at[8];
        for (int b = 7, v = 0; b >= 0; --b, ++v) {
          seen_at[b] = static_cast<char>(static_cast<std::uint64_t>(m.received_at_ms) >> (8 * v));
        }
        batch.Put(dedup_, sc.keys[j], rocksdb::Slice(seen_at, 8));
        ++results[i].stored;
      }
    }

    for (std::size_t j = 0; j < n; ++j) sc.values[j].Reset();  // unpin blocks between commits

    boost::system::error_code ec = lookup_error;
    if (!ec && batch.Count() > 0) {
      std::string last;
      PutBigEndian64(last, next_id);
      batch.Put(meta_, kLastEventIdKey, last);
      rocksdb::WriteOptions wo;
      wo.sync = options_.fsync;
      // When flushes and compactions fall behind, RocksDB delays this write (its
      // slowdown) and so paces the committing I/O thread: that is the backpressure.
      // Failing fast instead (no_slowdown) turned ordinary bursts into 503s.
      ec = FromStatus(db_->Write(wo, &batch));
      if (!ec) last_event_id_ = next_id;
    }
    for (std::size_t i = 0; i < work.size(); ++i) {
      if (ec) results[i] = AppendResult{.error = ec};
      work[i].done(results[i]);
    }
  }

  // Commit's working memory, kept between commits so a commit allocates little. Used by
  // the committing thread only.
  struct Scratch {
    std::vector<std::string> prefixes;  // site prefix of each Pending
    std::vector<std::string> keys;      // dedup key of each message (capacity reused)
    std::vector<rocksdb::Slice> slices;
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> statuses;
    std::vector<std::uint32_t> order;  // message indices sorted by dedup key
    std::vector<bool> repeated;        // its messageId came earlier in this commit
    std::string event_key;
    rocksdb::WriteBatch batch;
  };

  const StoreOptions options_;
  DedupExpiryFilter dedup_filter_;  // outlives db_ (declared before it)
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* dedup_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  std::uint64_t last_event_id_ = 0;  // used by the committing thread only
  Scratch scratch_;                  // used by the committing thread only
  std::atomic<std::int64_t> retention_applied_at_{0};

  std::mutex mu_;
  std::condition_variable committed_;  // signalled when committing_ turns false
  std::vector<Pending> queue_;       // guarded by mu_
  std::size_t queued_messages_ = 0;  // guarded by mu_
  std::size_t queued_bytes_ = 0;     // guarded by mu_
  bool closing_ = false;             // guarded by mu_
  bool committing_ = false;          // a thread is in CommitQueued; guarded by mu_
};

}  // namespace

const boost::system::error_category& StoreCategory() {
  static const StoreErrorCategory category;
  return category;
}

boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), StoreCategory()};
}

boost::system::result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                          std::string* error_message) {
  auto store = std::make_unique<RocksStore>(options);
  if (!store->Open(error_message)) return boost::system::error_code(Errc::kIoError);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace cartwatch::storage
