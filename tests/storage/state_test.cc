// Visitor and customer state through the real Store and RocksDB: the records the group
// commit writes are exactly what the pure transitions give (tests/profiles/helpers.h's World,
// the model), whatever the cache size and across reopening; duplicates change nothing; an
// erase leaves no trace of the customer in any column family.
#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <future>
#include <random>
#include <set>
#include <thread>
#include <atomic>

#include "profiles/codec.h"
#include "storage/fault_injection.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::storage {
namespace {

namespace fs = std::filesystem;
namespace h = profiles::helpers;
using profiles::helpers::kHour;
using profiles::helpers::kMinute;
using profiles::helpers::kT0;

// The messageId and receivedAt of a stored JSON message, as the collector gives them.
Message ToMessage(const std::string& json) {
  auto v = boost::json::parse(json).as_object();
  return Message{std::string(v["messageId"].as_string()),
                 *util::ParseIso8601(v["receivedAt"].as_string()), json};
}

// A flush requester that posts Store::Flush to an event loop, as the collector's does.
class PostFlush final : public FlushRequester {
 public:
  PostFlush(boost::asio::io_context& loop, Store& store) : loop_(loop), store_(store) {}
  void RequestFlush() override {
    boost::asio::post(loop_, [this] { store_.Flush(); });
  }

 private:
  boost::asio::io_context& loop_;
  Store& store_;
};

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-state-test-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
    options_.thresholds_interval = std::chrono::hours(24 * 365);  // only when a test asks
    // The storefront's receive times span days; every resend in it must count as one.
    options_.dedup_window = std::chrono::hours(24 * 365);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    std::string error;
    auto opened = Store::Open(options_, &error);
    ASSERT_TRUE(opened.has_value()) << error;
    store_ = std::move(*opened);
  }
  AppendResult Send(const std::string& site, const std::vector<std::string>& jsons) {
    std::vector<Message> messages;
    for (const auto& j : jsons) messages.push_back(ToMessage(j));
    std::promise<AppendResult> done;
    store_->Append(site, std::move(messages), [&](const AppendResult& r) { done.set_value(r); });
    store_->Flush();
    return done.get_future().get();
  }
  EraseResult Erase(const std::string& site, const std::string& user_id) {
    std::promise<EraseResult> done;
    store_->EraseCustomer(site, user_id, [&](const EraseResult& r) { done.set_value(r); });
    store_->Flush();
    return done.get_future().get();
  }
  profiles::Customer CustomerOf(const std::string& site, const std::string& id) {
    auto c = store_->ReadCustomer(site, id);
    EXPECT_TRUE(c.has_value());
    EXPECT_TRUE(c && c->has_value()) << "no customer " << id;
    return c && *c ? **c : profiles::Customer();
  }
  profiles::Visitor VisitorOf(const std::string& site, const std::string& id) {
    auto v = store_->ReadVisitor(site, id);
    EXPECT_TRUE(v.has_value());
    EXPECT_TRUE(v && v->has_value()) << "no visitor " << id;
    return v && *v ? **v : profiles::Visitor();
  }

  // Opens the database with RocksDB itself (the store closed) and calls f(db, column
  // families by name).
  void WithDatabase(
      const std::function<void(rocksdb::DB&, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>& f) {
    store_.reset();
    std::vector<std::string> names;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(o, dir_.string(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir_.string(), cfs, &handles, &db).ok());
    std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
    for (auto* handle : handles) by_name[handle->GetName()] = handle;
    f(*db, by_name);
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
    delete db;
  }

  // Commit rounds that stored something so far: one dedup_log record each. Closes the store.
  std::size_t CommitRounds() {
    std::size_t rounds = 0;
    WithDatabase([&](rocksdb::DB& db, auto& families) {
      std::unique_ptr<rocksdb::Iterator> it(
          db.NewIterator(rocksdb::ReadOptions(), families.at("dedup_log")));
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++rounds;
    });
    return rounds;
  }

  // Queues (without a Flush) one request of a page view for each of `visitors`, at `at`
  // on; `done` gets its result.
  void AppendPages(const std::vector<std::string>& visitors, std::int64_t at,
                   std::function<void(const AppendResult&)> done) {
    std::vector<Message> messages;
    for (const auto& id : visitors) messages.push_back(ToMessage(h::Page("a:" + id, at++, "/")));
    store_->Append("shop", std::move(messages), std::move(done));
  }

  // Stores a page view of visitor "reader", then queues a second one (no Flush); sets
  // `answered` when that one is committed.
  void StoreOneThenQueueAPageOfReader(bool& answered) {
    ASSERT_FALSE(Send("shop", {h::Page("a:reader", kT0, "/")}).error);
    AppendPages({"reader"}, kT0 + kMinute, [&answered](const AppendResult& r) {
      EXPECT_FALSE(r.error);
      answered = true;
    });
  }

  // Every key ("family:key") and value of every column family.
  std::vector<std::pair<std::string, std::string>> ScanEverything() {
    std::vector<std::pair<std::string, std::string>> all;
    WithDatabase([&](rocksdb::DB& db, auto& families) {
      for (auto& [name, handle] : families) {
        std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), handle));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          all.emplace_back(name + ":" + it->key().ToString(), it->value().ToString());
        }
        EXPECT_TRUE(it->status().ok());
      }
    });
    return all;
  }

  fs::path dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

// A seeded storefront: visitors browse, fill and edit carts, identify (some on two
// devices, one device shared by two people), order; some messages are sent twice.
std::vector<std::string> Storefront(std::uint32_t seed, int count) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  std::vector<std::string> out;
  profiles::EpochMs at = kT0;
  for (int i = 0; i < count; ++i) {
    at += pick(20) * kMinute;  // sometimes more than 30 minutes: new sessions
    const std::string anon = "v" + std::to_string(pick(12));
    const int person = pick(6);
    const std::string who = person < 4 ? "a:" + anon
                            : person == 4 ? "a:" + anon + ",u:u" + std::to_string(pick(5))
                                          : "u:u" + std::to_string(pick(5));
    const std::string product = "p" + std::to_string(pick(6));
    // Now and then an event arrives late.
    const profiles::EpochMs when = pick(10) == 0 ? at - pick(90) * kMinute : at;
    switch (pick(9)) {
      case 0:
      case 1:
        out.push_back(h::Page(who, when, "https://shop.example/" + product));
        break;
      case 2:
      case 3:
        out.push_back(h::Track(who, "Product Added", when,
                               h::ProductProps(product, 5 + pick(50), 1 + pick(3),
                                               pick(8) == 0 ? "USD" : "EUR")));
        break;
      case 4:
        out.push_back(h::Track(who, "Product Removed", when, h::ProductProps(product, 5, 1)));
        break;
      case 5:
        out.push_back(h::Track(who, "Product Viewed", when, h::ProductProps(product, 9.5, 1)));
        break;
      case 6: {
        boost::json::object props =
            h::Products({h::ProductProps(product, 12.5, 2), h::ProductProps("p9", 3, 1)});
        props["order_id"] = "o" + std::to_string(pick(40));
        out.push_back(h::Track(who, "Order Completed", when, std::move(props)));
        break;
      }
      case 7:
        out.push_back(h::Identify("a:" + anon + ",u:u" + std::to_string(pick(5)), when,
                                  {{"email", "x" + std::to_string(pick(9)) + "@example.com"}}));
        break;
      case 8:
        out.push_back(h::Track(who, "Cart Viewed", when, h::Products({h::ProductProps(product, 7, 2)})));
        break;
    }
    if (!out.empty() && pick(15) == 0) out.push_back(out[pick(static_cast<int>(out.size()))]);
  }
  return out;
}

struct ModelCase {
  std::size_t cache_entries;
  int write_delay_minutes;  // of receive time; the storefront's clock moves 0-20 min a message
  std::size_t max_unwritten;
  bool crash;  // each stop loses what is unwritten, as kill -9 would; else a clean close
  std::size_t cache_bytes = std::size_t{256} << 20;
};

class StateModelTest : public StateTest, public ::testing::WithParamInterface<ModelCase> {
 protected:

  // The visitor and customer records of the site as RocksDB holds them (the store closed).
  void StoredRecords(std::map<std::string, profiles::Visitor>& visitors,
                     std::map<std::string, profiles::Customer>& customers) {
    const std::string prefix = SitePrefix("shop");
    WithDatabase([&](rocksdb::DB& db, auto& families) {
      auto scan = [&](const std::string& family, auto decode, auto& out) {
        std::unique_ptr<rocksdb::Iterator> it(
            db.NewIterator(rocksdb::ReadOptions(), families.at(family)));
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
          auto record = decode(SplitStateValue(it->value().ToStringView()).record);
          ASSERT_TRUE(record.has_value()) << it->key().ToString();
          out[it->key().ToString().substr(prefix.size())] = *record;
        }
      };
      scan("visitors", profiles::DecodeVisitor, visitors);
      scan("customers", profiles::DecodeCustomer, customers);
    });
  }
};

TEST_P(StateModelTest, RecordsAreWhatThePureTransitionsGiveAcrossCrashes) {
  options_.state_cache_entries = GetParam().cache_entries;
  options_.state_cache_bytes = GetParam().cache_bytes;
  options_.state_write_delay = std::chrono::minutes(GetParam().write_delay_minutes);
  options_.state_max_unwritten = GetParam().max_unwritten;
  // A crash as kill -9 leaves the store as far as state goes: unwritten records are lost,
  // the acknowledged messages are in the write-ahead log.
  options_.write_state_on_close = !GetParam().crash;
  Reopen();
  const std::vector<std::string> messages = Storefront(7, 700);
  h::World model;
  std::set<std::string> seen_ids;
  std::mt19937 rng(11);
  std::size_t i = 0, duplicates = 0;
  int stops = 0;
  while (i < messages.size()) {
    // Batches of 1 to 40.
    const std::size_t n = std::min<std::size_t>(1 + rng() % 40, messages.size() - i);
    std::vector<std::string> batch(messages.begin() + i, messages.begin() + i + n);
    std::size_t expected_duplicates = 0;
    for (const auto& m : batch) {
      if (seen_ids.insert(ToMessage(m).message_id).second) {
        model.Send(m);
      } else {
        ++expected_duplicates;
      }
    }
    const AppendResult r = Send("shop", batch);
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.duplicates, expected_duplicates);
    duplicates += r.duplicates;
    i += n;
    // After about every third batch the store stops and starts again (a cold cache).
    if (rng() % 3 == 0) {
      Reopen();
      ++stops;
    }
  }
  EXPECT_GE(stops, 5);
  EXPECT_GT(duplicates, 10u);  // the storefront did resend

  auto check = [&](const std::string& when) {
    for (int v = 0; v < 12; ++v) {
      const std::string id = "v" + std::to_string(v);
      auto stored = store_->ReadVisitor("shop", id);
      ASSERT_TRUE(stored.has_value());
      ASSERT_TRUE(stored->has_value()) << id << when;
      EXPECT_EQ(profiles::RenderVisitor(**stored, nullptr),
                profiles::RenderVisitor(model.visitor(id), nullptr)) << id << when;
      EXPECT_EQ(**stored, model.visitor(id)) << id << when;
    }
    int customers = 0;
    for (int u = 0; u < 5; ++u) {
      const std::string id = "u" + std::to_string(u);
      auto stored = store_->ReadCustomer("shop", id);
      ASSERT_TRUE(stored.has_value());
      ASSERT_EQ(stored->has_value(), model.has_customer(id)) << id << when;
      if (!*stored) continue;
      ++customers;
      EXPECT_EQ(profiles::RenderCustomer(**stored, nullptr, kT0),
                profiles::RenderCustomer(model.customer(id), nullptr, kT0)) << id << when;
      EXPECT_EQ(**stored, model.customer(id)) << id << when;
    }
    EXPECT_GE(customers, 4);
  };
  check(" (live)");
  Reopen();
  check(" (after a stop)");
  // Another site sees none of it.
  auto other = store_->ReadVisitor("other", "v1");
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->has_value());

  // What RocksDB itself holds once the store is closed is the model, record for record.
  std::map<std::string, profiles::Visitor> visitors;
  std::map<std::string, profiles::Customer> customers;
  StoredRecords(visitors, customers);
  ASSERT_EQ(visitors.size(), 12u);
  for (const auto& [id, visitor] : visitors) EXPECT_EQ(visitor, model.visitor(id)) << id;
  for (const auto& [id, customer] : customers) {
    EXPECT_TRUE(model.has_customer(id)) << id;
    EXPECT_EQ(customer, model.customer(id)) << id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    CacheAndWriteBehind, StateModelTest,
    ::testing::Values(ModelCase{0, 0, 100000, true},  // every change written with its message
                      ModelCase{1, 45, 100000, true},    // written about every few messages
                      ModelCase{3, 45, 3, true},         // and early: a few records unwritten
                      ModelCase{100000, 0, 100000, true},
                      ModelCase{100000, 60 * 24 * 365, 100000, true},  // none before a stop
                      ModelCase{100000, 90, 2, true},
                      ModelCase{100000, 45, 100000, true, 4096},  // a few KB of records
                      ModelCase{3, 45, 3, false},        // clean stops
                      ModelCase{100000, 60 * 24 * 365, 100000, false}));

// Rounds that fail, by a full disk or by a failing sync with fsync on: each is answered with
// the error and acknowledges nothing; its messages, sent again once the store recovered by
// itself, are stored once (the dedup index forgot what the failed round entered; a round
// whose unsynced write the reopen recovered whole counts as stored) and the records are
// exactly what the pure transitions give, also after a restart that rebuilds them from the
// event log.
enum class Fault { kDiskFull, kSyncFails };
class StateFaultTest : public StateTest, public ::testing::WithParamInterface<Fault> {};
INSTANTIATE_TEST_SUITE_P(Faults, StateFaultTest,
                         ::testing::Values(Fault::kDiskFull, Fault::kSyncFails),
                         [](const auto& info) {
                           return info.param == Fault::kDiskFull ? "disk_full" : "sync_fails";
                         });

TEST_P(StateFaultTest, AFailedRoundAcknowledgesNothingAndTheRecordsStayExact) {
  auto faults = std::make_shared<FaultInjection>();
  options_.faults = faults;
  options_.fsync = GetParam() == Fault::kSyncFails;
  options_.recovery_interval = std::chrono::milliseconds(20);
  options_.state_write_delay = std::chrono::minutes(1);  // records unwritten across failures
  options_.write_state_on_close = false;                 // the restart rebuilds them
  Reopen();
  auto set_fault = [&](bool on) {
    if (GetParam() == Fault::kDiskFull) {
      faults->SetDiskFull(on);
    } else {
      faults->SetSyncFailing(on);
    }
  };
  auto wait_writable = [&] {
    for (int i = 0; i < 1000 && store_->CheckWritable(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return !store_->CheckWritable();
  };
  const std::vector<std::string> messages = Storefront(5, 300);
  h::World model;
  std::set<std::string> seen_ids;
  std::size_t i = 0;
  int failed_rounds = 0, recovered_anyway = 0;
  for (int round = 0; i < messages.size(); ++round) {
    const std::size_t n = std::min<std::size_t>(1 + round % 17, messages.size() - i);
    const std::vector<std::string> batch(messages.begin() + i, messages.begin() + i + n);
    const bool fails = round % 4 == 3;
    if (fails) {
      set_fault(true);
      const AppendResult failed = Send("shop", batch);
      set_fault(false);
      ASSERT_TRUE(failed.error) << "round " << round << " was acknowledged under the fault";
      EXPECT_EQ(failed.stored, 0u);
      ++failed_rounds;
      ASSERT_TRUE(wait_writable()) << store_->CheckWritable().message();
    }
    std::size_t expected_duplicates = 0;
    for (const auto& m : batch) {
      if (seen_ids.insert(ToMessage(m).message_id).second) {
        model.Send(m);
      } else {
        ++expected_duplicates;
      }
    }
    const AppendResult r = Send("shop", batch);
    ASSERT_FALSE(r.error) << "round " << round << ": " << r.error.message();
    if (fails && GetParam() == Fault::kSyncFails && r.duplicates == n) {
      // The failed round's batch reached the write-ahead log, only its sync failed: the
      // reopen recovered it whole (never half), so the resend finds every message stored.
      // Either way the messages come first at the same place, so the model is the same.
      ++recovered_anyway;
    } else {
      EXPECT_EQ(r.duplicates, expected_duplicates) << "round " << round;
    }
    i += n;
  }
  EXPECT_GE(failed_rounds, 5);
  if (GetParam() == Fault::kDiskFull) {
    EXPECT_EQ(recovered_anyway, 0);
  }
  EXPECT_GT(faults->refused_writes(), 0u);

  auto check = [&](const std::string& when) {
    for (int v = 0; v < 12; ++v) {
      const std::string id = "v" + std::to_string(v);
      auto stored = store_->ReadVisitor("shop", id);
      ASSERT_TRUE(stored.has_value()) << stored.error().message();
      ASSERT_TRUE(stored->has_value()) << id << when;
      EXPECT_EQ(**stored, model.visitor(id)) << id << when;
    }
    for (int u = 0; u < 5; ++u) {
      const std::string id = "u" + std::to_string(u);
      auto stored = store_->ReadCustomer("shop", id);
      ASSERT_TRUE(stored.has_value());
      ASSERT_EQ(stored->has_value(), model.has_customer(id)) << id << when;
      if (*stored) {
        EXPECT_EQ(**stored, model.customer(id)) << id << when;
      }
    }
    auto events = store_->ReadEvents("shop", "", 100'000, SIZE_MAX);
    ASSERT_TRUE(events.has_value());
    EXPECT_EQ(events->events.size(), seen_ids.size()) << when;  // each message once
  };
  check(" (running)");
  Reopen();
  check(" (after a restart)");
}

TEST_F(StateTest, AResentMessageChangesNoState) {
  Reopen();
  const std::string added = h::Track("a:anna", "Product Added", kT0, h::ProductProps("sock", 4.5, 2));
  ASSERT_EQ(Send("shop", {added}).stored, 1u);
  const AppendResult again = Send("shop", {added, added});
  EXPECT_EQ(again.stored, 0u);
  EXPECT_EQ(again.duplicates, 2u);
  const profiles::Visitor v = VisitorOf("shop", "anna");
  ASSERT_EQ(v.cart.lines.size(), 1u);
  EXPECT_EQ(v.cart.lines[0].quantity, 2);
  EXPECT_EQ(v.cart.version, 1u);
}

TEST_F(StateTest, EraseLeavesNoKeyOrValueOfTheCustomerInAnyColumnFamily) {
  Reopen();
  // Distinctive ids, so that finding them anywhere in the database means a trace is left.
  const std::string ada = "user-ada-7f3k", laptop = "anon-ada-laptop-91",
                    phone = "anon-ada-phone-22", bob = "user-bob-5q";
  boost::json::object order = h::Products({h::ProductProps("boot", 80, 1)});
  order["order_id"] = "order-ada-1";
  ASSERT_FALSE(Send("shop", {h::Page("a:" + laptop, kT0, "https://shop.example/"),
                             h::Track("a:" + laptop, "Product Added", kT0 + kMinute,
                                      h::ProductProps("boot", 80, 1)),
                             h::Identify("a:" + laptop + ",u:" + ada, kT0 + 2 * kMinute,
                                         {{"email", "ada-mail-x1@example.com"}}),
                             h::Track("u:" + ada, "Order Completed", kT0 + 3 * kMinute, order),
                             h::Page("a:" + phone + ",u:" + ada, kT0 + 4 * kMinute,
                                     "https://shop.example/phone"),
                             h::Identify("a:anon-bob-1,u:" + bob, kT0, {{"email", "bob@example.com"}}),
                             h::Track("a:anon-bob-1", "Product Added", kT0,
                                      h::ProductProps("hat", 20, 1))})
                   .error);
  ASSERT_FALSE(store_->RecomputeThresholds(kT0 + 5 * kMinute));
  EXPECT_EQ(CustomerOf("shop", ada).anonymous_ids, (std::vector<std::string>{laptop, phone}));

  const EraseResult erased = Erase("shop", ada);
  ASSERT_FALSE(erased.error);
  EXPECT_TRUE(erased.found);
  EXPECT_EQ(erased.visitors, 2u);
  // The records are gone at once; the events once the purge has run.
  EXPECT_FALSE(store_->ReadCustomer("shop", ada)->has_value());
  EXPECT_FALSE(store_->ReadVisitor("shop", laptop)->has_value());
  EXPECT_FALSE(store_->ReadVisitor("shop", phone)->has_value());
  ASSERT_FALSE(store_->PurgeErasedEvents());
  store_->Close();

  std::size_t bob_events = 0, bob_records = 0;
  for (const auto& [key, value] : ScanEverything()) {
    for (const std::string& trace : {ada, laptop, phone, std::string("ada-mail-x1")}) {
      EXPECT_EQ(key.find(trace), std::string::npos) << "key " << key;
      EXPECT_EQ(value.find(trace), std::string::npos) << "value of " << key;
    }
    if (key.starts_with("events:")) {  // one event, or a record batch of several
      ASSERT_TRUE(ForEachEventOfValue(GetBigEndian64(key.data() + key.size() - 8), value,
                                      [&](std::uint64_t, std::string_view json) {
                                        if (json.find("anon-bob-1") != std::string::npos) ++bob_events;
                                        return true;
                                      }));
    }
    if ((key.starts_with("visitors:") || key.starts_with("customers:")) &&
        (key.find(bob) != std::string::npos || key.find("anon-bob-1") != std::string::npos)) {
      ++bob_records;
    }
  }
  EXPECT_EQ(bob_events, 2u);   // bob's identify and Product Added are kept
  EXPECT_EQ(bob_records, 2u);  // and his customer and visitor records

  // A later message for her starts a new, empty profile.
  Reopen();
  EXPECT_EQ(CustomerOf("shop", bob).cart.lines.size(), 1u);
  ASSERT_FALSE(Send("shop", {h::Page("a:" + laptop + ",u:" + ada, kT0 + kMinute * 60,
                                     "https://shop.example/again")})
                   .error);
  const profiles::Customer fresh = CustomerOf("shop", ada);
  EXPECT_TRUE(fresh.orders.empty());
  EXPECT_TRUE(fresh.cart.empty());
  EXPECT_EQ(fresh.traits.email.value, "");
  EXPECT_EQ(fresh.anonymous_ids, std::vector<std::string>{laptop});
  EXPECT_EQ(VisitorOf("shop", laptop).sessions.size(), 1u);
}

// Into `batch`: every visitor and customer record deleted and the replay point at the
// first event, so that the next open rebuilds the records from the whole event log.
void ForgetRecords(rocksdb::WriteBatch& batch,
                   const std::map<std::string, rocksdb::ColumnFamilyHandle*>& families) {
  for (const char* records : {"visitors", "customers"}) {
    batch.DeleteRange(families.at(records), "", std::string(300, '\xff'));
  }
  std::string zero;
  PutBigEndian64(zero, 0);
  batch.Put(families.at("meta"), kStateReplayFromKey, zero);
}

// A data directory written before record batches holds one event a key, the message alone
// (docs/storage.md, "Record batches"): it is read, replayed and erased as before, next to
// the batches written after it, with no conversion at open.
TEST_F(StateTest, EventsStoredOneAKeyByAnEarlierCartwatchAreReadReplayedAndErased) {
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:d1,u:ada", kT0, "https://shop.example/1"),
                             h::Track("a:d1,u:ada", "Product Added", kT0 + 1'000, h::ProductProps("p1", 1, 1)),
                             h::Page("a:d2,u:bob", kT0 + 2'000, "https://shop.example/2")})
                   .error);
  // The log rewritten as an earlier Cartwatch wrote it, and the records as if never
  // written: rebuilt from the first event at the next open.
  std::size_t batches = 0;
  WithDatabase([&](rocksdb::DB& db, auto& families) {
    rocksdb::WriteBatch rewrite;
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), families.at("events")));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      if (it->value().starts_with(std::string_view(&kEventBatchV1, 1))) ++batches;
      rewrite.Delete(families.at("events"), key);
      const std::string prefix = key.substr(0, key.size() - 8);
      ASSERT_TRUE(ForEachEventOfValue(GetBigEndian64(key.data() + prefix.size()), it->value().ToStringView(),
                                      [&](std::uint64_t id, std::string_view json) {
                                        rewrite.Put(families.at("events"), EventKey(prefix, id), json);
                                        return true;
                                      }));
    }
    ForgetRecords(rewrite, families);
    ASSERT_TRUE(db.Write(rocksdb::WriteOptions(), &rewrite).ok());
  });
  EXPECT_EQ(batches, 1u);  // the three messages were one record batch
  Reopen();
  EXPECT_EQ(CustomerOf("shop", "ada").cart.lines.size(), 1u);  // replayed from the old layout
  EXPECT_EQ(CustomerOf("shop", "bob").anonymous_ids, std::vector<std::string>{"d2"});

  // New messages go into a record batch after the old events; one page reads both.
  ASSERT_FALSE(Send("shop", {h::Page("a:d2,u:bob", kT0 + 3'000, "https://shop.example/3"),
                             h::Track("a:d1,u:ada", "Product Added", kT0 + 4'000, h::ProductProps("p2", 1, 1))})
                   .error);
  EXPECT_EQ(CustomerOf("shop", "ada").cart.lines.size(), 2u);
  auto events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->events.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string& json = events->events[i].json;
    EXPECT_NE(json.find(i == 2 || i == 3 ? "\"bob\"" : "\"ada\""), std::string::npos) << i << json;
    if (i > 0) {
      EXPECT_LT(events->events[i - 1].cursor, events->events[i].cursor);
    }
  }

  // Erasing ada deletes her old single events and takes her event, the batch's last, out of
  // the new batch: bob's stays, under the key of ada's.
  const std::string bobs_first = events->events[2].cursor;
  ASSERT_FALSE(Erase("shop", "ada").error);
  ASSERT_FALSE(store_->PurgeErasedEvents());
  events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->events.size(), 2u);
  for (const auto& e : events->events) EXPECT_NE(e.json.find("\"bob\""), std::string::npos) << e.json;
  events = store_->ReadEvents("shop", bobs_first, 100, SIZE_MAX);  // the rewritten batch
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_NE(events->events[0].json.find("shop.example/3"), std::string::npos);
  // And the records replayed over the rewritten batch: bob's two page views.
  WithDatabase([&](rocksdb::DB& db, auto& families) {
    rocksdb::WriteBatch replay;
    ForgetRecords(replay, families);
    ASSERT_TRUE(db.Write(rocksdb::WriteOptions(), &replay).ok());
  });
  Reopen();
  EXPECT_EQ(VisitorOf("shop", "d2").page_views, 2);
  EXPECT_FALSE(store_->ReadCustomer("shop", "ada")->has_value());
}

TEST_F(StateTest, AnEraseTakesEffectInOrderWithMessagesOfTheSameCommit) {
  Reopen();
  std::promise<void> all;
  int answered = 0;
  auto count = [&] {
    if (++answered == 3) all.set_value();
  };
  auto message = [](const std::string& json) {
    std::vector<Message> v;
    v.push_back(ToMessage(json));
    return v;
  };
  store_->Append("shop", message(h::Track("a:d1,u:dora", "Product Added", kT0, h::ProductProps("old", 1, 1))),
                 [&](const AppendResult& r) { EXPECT_FALSE(r.error); count(); });
  store_->EraseCustomer("shop", "dora", [&](const EraseResult& r) {
    EXPECT_FALSE(r.error);
    EXPECT_TRUE(r.found);
    count();
  });
  store_->Append("shop", message(h::Track("a:d2,u:dora", "Product Added", kT0 + kMinute, h::ProductProps("new", 1, 1))),
                 [&](const AppendResult& r) { EXPECT_FALSE(r.error); count(); });
  store_->Flush();  // one commit for all three
  all.get_future().wait();
  const profiles::Customer dora = CustomerOf("shop", "dora");
  ASSERT_EQ(dora.cart.lines.size(), 1u);
  EXPECT_EQ(dora.cart.lines[0].key, "new");
  EXPECT_EQ(dora.anonymous_ids, std::vector<std::string>{"d2"});
  EXPECT_FALSE(store_->ReadVisitor("shop", "d1")->has_value());

  // The purge deletes the events up to the erase, not the one after it.
  ASSERT_FALSE(store_->PurgeErasedEvents());
  auto events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_NE(events->events[0].json.find("\"d2\""), std::string::npos);
}

TEST_F(StateTest, AnEraseJobLeftByACrashIsFinishedAfterTheRestart) {
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:z1,u:zed", kT0, "/"), h::Page("a:z1", kT0 + kMinute, "/a"),
                             h::Page("a:amy1,u:amy", kT0, "/")})
                   .error);
  // What a crash right after the erase's commit leaves: the job, not yet carried out.
  WithDatabase([](rocksdb::DB& db, auto& families) {
    const EraseJob job{.site_prefix = SitePrefix("shop"),
                       .up_to_event_id = UINT64_MAX - 1,
                       .user_id = "zed",
                       .anonymous_ids = {"z1"}};
    ASSERT_TRUE(db.Put(rocksdb::WriteOptions(), families.at("meta"), EraseJobKey(3),
                       EncodeEraseJob(job))
                    .ok());
  });
  Reopen();  // its background thread takes up the job at once
  for (int i = 0; i < 250; ++i) {
    auto events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
    ASSERT_TRUE(events.has_value());
    if (events->events.size() == 1) {
      EXPECT_NE(events->events[0].json.find("\"amy\""), std::string::npos);
      store_->Close();
      for (const auto& [key, value] : ScanEverything()) {
        EXPECT_EQ(key.find("erase/"), std::string::npos) << "the job was not deleted";
      }
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "zed's events were not deleted within 5 s of the restart";
}

TEST_F(StateTest, AnEraseReachesDevicesBeyondTheCustomersListOfLinkedVisitors) {
  options_.profiles.max_linked_visitors = 2;  // the list keeps the two latest devices
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:old,u:ola", kT0, "/1"), h::Page("a:mid,u:ola", kT0 + kMinute, "/2"),
                             h::Page("a:new,u:ola", kT0 + 2 * kMinute, "/3"),
                             h::Track("a:old", "Product Viewed", kT0 + 3 * kMinute,
                                      h::ProductProps("p", 1, 1))})
                   .error);
  // "old" is re-listed by its own message; "mid" is now the unlisted but still linked one.
  EXPECT_EQ(CustomerOf("shop", "ola").anonymous_ids, (std::vector<std::string>{"new", "old"}));
  EXPECT_EQ(VisitorOf("shop", "mid").user_id, "ola");

  const EraseResult erased = Erase("shop", "ola");
  EXPECT_EQ(erased.visitors, 2u);  // the listed ones, at once
  ASSERT_FALSE(store_->PurgeErasedEvents());  // the rest: found by the purge's scan
  EXPECT_FALSE(store_->ReadVisitor("shop", "mid")->has_value());
  auto events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(events.has_value());
  EXPECT_TRUE(events->events.empty()) << events->events.size() << " events left";
}

TEST_F(StateTest, AVisitorLinkedToACustomerWithoutARecordIsAnonymousAgain) {
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:dev,u:gone", kT0, "/1")}).error);
  // The customer record is missing (as for a device an erase did not reach).
  WithDatabase([](rocksdb::DB& db, auto& families) {
    ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), families.at("customers"),
                          PersonKey(SitePrefix("shop"), "gone"))
                    .ok());
  });
  Reopen();
  // Its next anonymous message does not make a new customer "gone".
  ASSERT_FALSE(Send("shop", {h::Track("a:dev", "Product Added", kT0 + kMinute, h::ProductProps("p", 1, 1))}).error);
  EXPECT_FALSE(store_->ReadCustomer("shop", "gone")->has_value());
  const profiles::Visitor dev = VisitorOf("shop", "dev");
  EXPECT_EQ(dev.user_id, "");
  EXPECT_EQ(dev.cart.lines.size(), 1u);  // the cart is the visitor's own again
}

TEST_F(StateTest, AVisitorUnlinkedFromAMissingCustomerSurvivesACrashWhateverIsWrittenFirst) {
  options_.state_write_delay = std::chrono::minutes(1);
  options_.write_state_on_close = false;  // every stop below loses what is unwritten
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:dev,u:gone", kT0, "/1")}).error);
  Reopen();  // replays and writes it
  WithDatabase([](rocksdb::DB& db, auto& families) {
    ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), families.at("customers"),
                          PersonKey(SitePrefix("shop"), "gone"))
                    .ok());
  });
  Reopen();
  const profiles::EpochMs t = kT0 + 10 * kMinute;
  // v2 changes first; then dev is anonymous again (its customer has no record); then v2
  // logs in as "gone", which makes a new customer of that id. That commit writes what has
  // been unwritten for a minute: v2's group, which must take dev along, since dev's change
  // was decided by "gone" having no record.
  ASSERT_FALSE(Send("shop", {h::Page("a:v2", t, "/2")}).error);
  ASSERT_FALSE(Send("shop", {h::Track("a:dev", "Product Added", t + 50'000, h::ProductProps("p", 1, 1))}).error);
  ASSERT_FALSE(Send("shop", {h::Identify("a:v2,u:gone", t + 65'000, {{"email", "new@example.com"}})}).error);
  Reopen();  // a crash: the replay starts at the oldest unwritten change
  const profiles::Visitor dev = VisitorOf("shop", "dev");
  EXPECT_EQ(dev.user_id, "");
  EXPECT_EQ(dev.cart.lines.size(), 1u);
  EXPECT_EQ(CustomerOf("shop", "gone").anonymous_ids, (std::vector<std::string>{"v2"}));
}

// alias(previousId -> userId) with an anonymous previousId: that visitor's cart and history
// become the customer's, as an identify would make them.
TEST_F(StateTest, AnAliasOfAnAnonymousIdLinksItToTheCustomer) {
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:anon-1", kT0, "/shoes"),
                             h::Track("a:anon-1", "Product Added", kT0 + kMinute,
                                      h::ProductProps("boot", 80, 1)),
                             h::Message("alias", "u:cust-1", kT0 + 2 * kMinute,
                                        {{"previousId", "anon-1"}})})
                   .error);
  const profiles::Customer c = CustomerOf("shop", "cust-1");
  ASSERT_EQ(c.cart.lines.size(), 1u);
  EXPECT_EQ(c.cart.lines[0].key, "boot");
  EXPECT_EQ(c.anonymous_ids, std::vector<std::string>{"anon-1"});
  EXPECT_EQ(c.visits.size(), 1u);
  const profiles::Visitor v = VisitorOf("shop", "anon-1");
  EXPECT_EQ(v.user_id, "cust-1");
  EXPECT_TRUE(v.cart.empty());
  // Its later anonymous messages are the customer's.
  ASSERT_FALSE(Send("shop", {h::Track("a:anon-1", "Product Added", kT0 + 3 * kMinute,
                                      h::ProductProps("sock", 5, 2))})
                   .error);
  EXPECT_EQ(CustomerOf("shop", "cust-1").cart.lines.size(), 2u);
}

// The steps of a merge of two customers; `old_id` ends merged into `new_id`.
class AliasMergeTest : public StateTest {
 protected:
  void SendTwoCustomersAndTheAlias() {
    boost::json::object first = h::Products({h::ProductProps("boot", 80, 1)});
    first["order_id"] = "order-1";
    first["total"] = 80;
    boost::json::object second = h::Products({h::ProductProps("hat", 20, 1)});
    second["order_id"] = "order-2";
    second["total"] = 20;
    ASSERT_FALSE(Send("shop", {h::Identify("a:dev-old,u:old-id", kT0, {{"email", "p@example.com"}}),
                               h::Track("u:old-id", "Order Completed", kT0 + kMinute, first),
                               h::Page("a:dev-new,u:new-id", kT0 + 2 * kMinute, "/"),
                               h::Track("u:new-id", "Order Completed", kT0 + 3 * kMinute, second),
                               h::Track("a:dev-new", "Product Added", kT0 + 4 * kMinute,
                                        h::ProductProps("sock", 5, 1))})
                     .error);
    ASSERT_FALSE(Send("shop", {h::Message("alias", "u:new-id", kT0 + 5 * kMinute,
                                          {{"previousId", "old-id"}})})
                     .error);
  }
  void ExpectMerged(std::size_t orders) {
    const profiles::Customer c = CustomerOf("shop", "new-id");
    EXPECT_EQ(c.user_id, "new-id");
    EXPECT_EQ(c.orders.size(), orders);
    EXPECT_EQ(c.traits.email.value, "p@example.com");
    EXPECT_EQ(c.cart.lines.size(), 1u);
    EXPECT_EQ(c.merged_user_ids, std::vector<std::string>{"old-id"});
    std::vector<std::string> devices = c.anonymous_ids;
    std::sort(devices.begin(), devices.end());
    EXPECT_EQ(devices, (std::vector<std::string>{"dev-new", "dev-old"}));
    // The merged id reads as the customer it became; its devices are that customer's.
    EXPECT_EQ(CustomerOf("shop", "old-id").user_id, "new-id");
    EXPECT_EQ(VisitorOf("shop", "dev-old").user_id, "new-id");
    const profiles::CustomerStats stats = profiles::ComputeStats(c, kT0 + kHour);
    EXPECT_EQ(stats.orders, static_cast<std::int64_t>(orders));
  }
};

TEST_F(AliasMergeTest, TwoCustomersBecomeOneAndTheOldIdReachesIt) {
  Reopen();
  SendTwoCustomersAndTheAlias();
  ExpectMerged(2);
  // Later messages for the old id, by userId or from its device, reach the merged customer.
  boost::json::object third = h::Products({h::ProductProps("cap", 10, 1)});
  third["order_id"] = "order-3";
  ASSERT_FALSE(Send("shop", {h::Track("u:old-id", "Order Completed", kT0 + 6 * kMinute, third),
                             h::Track("a:dev-old", "Product Viewed", kT0 + 7 * kMinute,
                                      h::ProductProps("cap", 10, 1))})
                   .error);
  const profiles::Customer c = CustomerOf("shop", "new-id");
  EXPECT_EQ(c.orders.size(), 3u);
  EXPECT_EQ(c.viewed.size(), 1u);
  // A repeated alias, either way round, changes nothing.
  ASSERT_FALSE(Send("shop", {h::Message("alias", "u:new-id", kT0 + 8 * kMinute, {{"previousId", "old-id"}}),
                             h::Message("alias", "u:old-id", kT0 + 9 * kMinute, {{"previousId", "new-id"}})})
                   .error);
  EXPECT_EQ(CustomerOf("shop", "new-id").orders.size(), 3u);
  EXPECT_EQ(CustomerOf("shop", "new-id").merged_user_ids, std::vector<std::string>{"old-id"});
}

TEST_F(AliasMergeTest, AChainOfMergesEndsAtTheNewestCustomer) {
  Reopen();
  SendTwoCustomersAndTheAlias();
  ASSERT_FALSE(Send("shop", {h::Message("alias", "u:newest-id", kT0 + 6 * kMinute,
                                        {{"previousId", "new-id"}})})
                   .error);
  const profiles::Customer c = CustomerOf("shop", "newest-id");
  EXPECT_EQ(c.orders.size(), 2u);
  EXPECT_EQ(c.merged_user_ids, (std::vector<std::string>{"new-id", "old-id"}));
  EXPECT_EQ(CustomerOf("shop", "old-id").user_id, "newest-id");
  EXPECT_EQ(CustomerOf("shop", "new-id").user_id, "newest-id");
  EXPECT_EQ(VisitorOf("shop", "dev-old").user_id, "newest-id");
}

// Replayed from the event log after a crash, the merge gives the same records.
TEST_F(AliasMergeTest, TheMergeIsReplayedAfterACrash) {
  options_.state_write_delay = std::chrono::hours(1);
  options_.write_state_on_close = false;  // the stop loses every unwritten record
  Reopen();
  SendTwoCustomersAndTheAlias();
  Reopen();
  ExpectMerged(2);
  Reopen();  // and once more, with the replayed records written or not
  ExpectMerged(2);
}

TEST_F(AliasMergeTest, AnEraseOfEitherIdErasesThePersonTheyBecame) {
  Reopen();
  SendTwoCustomersAndTheAlias();
  const EraseResult erased = Erase("shop", "old-id");
  ASSERT_FALSE(erased.error);
  EXPECT_TRUE(erased.found);
  EXPECT_EQ(erased.visitors, 2u);
  EXPECT_FALSE(store_->ReadCustomer("shop", "new-id")->has_value());
  EXPECT_FALSE(store_->ReadCustomer("shop", "old-id")->has_value());
  ASSERT_FALSE(store_->PurgeErasedEvents());
  store_->Close();
  for (const auto& [key, value] : ScanEverything()) {
    for (const std::string trace : {"old-id", "new-id", "dev-old", "dev-new", "p@example"}) {
      EXPECT_EQ(key.find(trace), std::string::npos) << "key " << key;
      EXPECT_EQ(value.find(trace), std::string::npos) << "value of " << key;
    }
  }
  // A later message for the old id starts a new, empty customer of its own.
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("u:old-id", kT0 + kHour, "/back")}).error);
  const profiles::Customer fresh = CustomerOf("shop", "old-id");
  EXPECT_EQ(fresh.user_id, "old-id");
  EXPECT_TRUE(fresh.orders.empty());
  EXPECT_TRUE(fresh.merged_into.empty());
}

TEST_F(StateTest, AnAliasBeyondMaxMergedCustomersMergesNothing) {
  options_.profiles.max_merged_customers = 1;
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Identify("u:a", kT0), h::Identify("u:b", kT0), h::Identify("u:c", kT0),
                             h::Message("alias", "u:c", kT0 + kMinute, {{"previousId", "a"}}),
                             h::Message("alias", "u:c", kT0 + 2 * kMinute, {{"previousId", "b"}})})
                   .error);
  EXPECT_EQ(CustomerOf("shop", "c").merged_user_ids, std::vector<std::string>{"a"});
  EXPECT_EQ(CustomerOf("shop", "b").user_id, "b");
  // Nor into a customer with no record yet: none is made (its read finds no customer).
  ASSERT_FALSE(Send("shop", {h::Message("alias", "u:d", kT0 + 3 * kMinute, {{"previousId", "c"}})})
                   .error);
  auto d = store_->ReadCustomer("shop", "d");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_FALSE(d->has_value());
  EXPECT_EQ(CustomerOf("shop", "c").merged_user_ids, std::vector<std::string>{"a"});
}

TEST_F(StateTest, AnEraseWritesEveryUnwrittenRecordInItsCommit) {
  options_.state_write_delay = std::chrono::hours(24 * 365);
  options_.state_max_unwritten = 1'000'000;
  options_.write_state_on_close = false;  // stops below lose what is unwritten
  Reopen();
  // 10,000 visitors, all unwritten: the erase's commit writes them first, in several batches
  // of at most 4,096 records, then its own.
  constexpr int kVisitors = 10'000;
  for (int from = 0; from < kVisitors; from += 500) {
    std::vector<std::string> batch;
    for (int v = from; v < from + 500; ++v) {
      batch.push_back(h::Page("a:v" + std::to_string(v), kT0 + v, "/" + std::to_string(v)));
    }
    ASSERT_FALSE(Send("shop", batch).error);
  }
  ASSERT_FALSE(Send("shop", {h::Identify("a:ernie-pc,u:ernie", kT0 + kVisitors, {})}).error);
  EXPECT_EQ(Erase("shop", "ernie").visitors, 1u);
  // Without the store: RocksDB holds every visitor but ernie's device, and a replay point
  // past the last event.
  std::size_t visitors = 0;
  WithDatabase([&](rocksdb::DB& db, auto& families) {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), families.at("visitors")));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto visitor = profiles::DecodeVisitor(SplitStateValue(it->value().ToStringView()).record);
      ASSERT_TRUE(visitor.has_value());
      EXPECT_EQ(visitor->page_views, 1) << visitor->anonymous_id;
      EXPECT_NE(visitor->anonymous_id, "ernie-pc");
      ++visitors;
    }
    std::string replay_from, last;
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), families.at("meta"), std::string(kStateReplayFromKey), &replay_from).ok());
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), families.at("meta"), "last_event_id", &last).ok());
    EXPECT_EQ(GetBigEndian64(replay_from.data()), GetBigEndian64(last.data()) + 1);
  });
  EXPECT_EQ(visitors, static_cast<std::size_t>(kVisitors));
  Reopen();
  EXPECT_EQ(VisitorOf("shop", "v9999").page_views, 1);
  EXPECT_FALSE(store_->ReadCustomer("shop", "ernie")->has_value());
}

TEST_F(StateTest, ReadsDuringTrafficAreAnsweredAndLeaveNoRequestUncommitted) {
  Reopen();
  // With a flush requester (an event loop of its own here), a reading thread commits one
  // round and hands the rest on.
  boost::asio::io_context loop;
  auto work = boost::asio::make_work_guard(loop);
  std::thread loop_thread([&] { loop.run(); });
  PostFlush requester(loop, *store_);
  store_->SetFlushRequester(&requester);
  ASSERT_FALSE(Send("shop", {h::Page("a:reader", kT0, "/")}).error);
  // Two event loops' threads: each queues a batch and flushes, without pause, until the
  // reads are done (or, as a bound, 5 s have passed).
  std::atomic<bool> reads_done{false};
  std::atomic<int> appended{0}, answered{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto send = [&](int lane) {
    for (int i = 0; !reads_done && std::chrono::steady_clock::now() < deadline; ++i) {
      std::vector<Message> batch;
      for (int j = 0; j < 20; ++j) {
        batch.push_back(ToMessage(h::Page("a:busy" + std::to_string((i * 20 + j) % 500),
                                          kT0 + i, "/" + std::to_string(lane))));
      }
      ++appended;
      store_->Append("shop", std::move(batch), [&](const AppendResult&) { ++answered; });
      store_->Flush();
    }
  };
  std::thread traffic(send, 1), more_traffic(send, 2);
  while (answered < 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  // Reads (each committed by this thread, or by a sender's, in order with the queue).
  for (int i = 0; i < 50; ++i) {
    auto visitor = store_->ReadVisitor("shop", "reader");
    ASSERT_TRUE(visitor.has_value());
    ASSERT_TRUE(visitor->has_value());
    EXPECT_EQ((*visitor)->page_views, 1);
  }
  reads_done = true;
  traffic.join();
  more_traffic.join();
  store_->SetFlushRequester(nullptr);
  work.reset();
  loop_thread.join();
  // Each sender's last act was a Flush: every request it queued has been committed and
  // answered, by a sender, by the reading thread, or by the flush it requested.
  EXPECT_EQ(answered.load(), appended.load());
  EXPECT_GT(appended.load(), 20);
}

TEST_F(StateTest, AQueryIsAnsweredWithoutCommittingMessagesStillWaitingForTheirCommit) {
  Reopen();
  // An event loop that has not yet run: what the query hands on waits there.
  boost::asio::io_context loop;
  PostFlush requester(loop, *store_);
  store_->SetFlushRequester(&requester);
  bool answered = false;
  StoreOneThenQueueAPageOfReader(answered);
  // Queued, not acknowledged: the query shows the state without it, and does not commit it.
  auto before = store_->ReadVisitor("shop", "reader");
  ASSERT_TRUE(before.has_value() && before->has_value());
  EXPECT_EQ((*before)->page_views, 1);
  EXPECT_FALSE(answered);
  // The loop commits it.
  loop.run();
  EXPECT_TRUE(answered);
  store_->SetFlushRequester(nullptr);
  EXPECT_EQ(VisitorOf("shop", "reader").page_views, 2);
}

TEST_F(StateTest, WithoutARequesterAQueryIsAnsweredBeforeTheWritesOfItsRoundWhichItCommits) {
  Reopen();
  bool answered = false;
  StoreOneThenQueueAPageOfReader(answered);
  // The query's thread commits the round: the query is answered at its start (the state
  // as acknowledged so far), then the queued write is committed and answered.
  auto before = store_->ReadVisitor("shop", "reader");
  ASSERT_TRUE(before.has_value() && before->has_value());
  EXPECT_EQ((*before)->page_views, 1);
  EXPECT_TRUE(answered);
  EXPECT_EQ(VisitorOf("shop", "reader").page_views, 2);
}

TEST_F(StateTest, ARoundHoldsWholeRequestsUpToMaxRoundMessages) {
  options_.max_round_messages = 2;
  Reopen();
  std::vector<std::string> order;
  auto append = [&](const std::string& id, std::int64_t at) {
    AppendPages({id}, at, [&order, id](const AppendResult& r) {
      EXPECT_FALSE(r.error);
      order.push_back(id);
    });
  };
  append("one", kT0);
  append("two", kT0 + 1);
  append("three", kT0 + 2);
  append("four", kT0 + 3);
  append("five", kT0 + 4);
  store_->Flush();
  EXPECT_EQ(order, (std::vector<std::string>{"one", "two", "three", "four", "five"}));
  EXPECT_EQ(VisitorOf("shop", "five").page_views, 1);
  EXPECT_EQ(CommitRounds(), 3u);  // 2 + 2 + 1 messages
}

TEST_F(StateTest, ARoundNeverSplitsARequestAndAnOversizedOneGoesAlone) {
  options_.max_round_messages = 2;
  Reopen();
  std::vector<std::string> order;
  std::int64_t at = kT0;
  auto append = [&](const std::string& id, std::size_t n) {
    std::vector<std::string> visitors;
    for (std::size_t i = 0; i < n; ++i) visitors.push_back(id + std::to_string(i));
    AppendPages(visitors, at, [&order, id, n](const AppendResult& r) {
      EXPECT_FALSE(r.error);
      EXPECT_EQ(r.stored, n);
      order.push_back(id);
    });
    at += static_cast<std::int64_t>(n);
  };
  // Rounds: {1}, {2}, {1}, {3}: 1 + 2 would pass the cap, and 3 is over it alone.
  append("a", 1);
  append("b", 2);
  append("c", 1);
  append("d", 3);
  store_->Flush();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(VisitorOf("shop", "d2").page_views, 1);
  EXPECT_EQ(CommitRounds(), 4u);
}

TEST_F(StateTest, ARoundHoldsRequestsUpToMaxRoundBytes) {
  options_.max_round_bytes = 1;  // every request is over it: one request per round
  Reopen();
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    AppendPages({"v" + n, "w" + n}, kT0 + 2 * i, [&](const AppendResult& r) {
      EXPECT_FALSE(r.error);
      EXPECT_EQ(r.stored, 2u);
      ++answered;
    });
  }
  store_->Flush();
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(CommitRounds(), 3u);
}

TEST_F(StateTest, ThePurgeKeepsAnotherCustomersMessagesFromASharedDevice) {
  Reopen();
  ASSERT_FALSE(Send("shop", {h::Page("a:family-pc,u:bob", kT0, "/bob"),
                             h::Track("a:family-pc,u:bob", "Product Added", kT0 + kMinute,
                                      h::ProductProps("tie", 30, 1)),
                             h::Page("a:family-pc,u:ada", kT0 + 2 * kMinute, "/ada")})
                   .error);
  EXPECT_EQ(VisitorOf("shop", "family-pc").user_id, "ada");  // re-linked to her
  ASSERT_FALSE(Erase("shop", "ada").error);
  ASSERT_FALSE(store_->PurgeErasedEvents());
  auto events = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->events.size(), 2u);  // bob's two, not hers
  for (const auto& e : events->events) EXPECT_NE(e.json.find("\"bob\""), std::string::npos);
  EXPECT_EQ(CustomerOf("shop", "bob").cart.lines.size(), 1u);
}

TEST_F(StateTest, AnEraseOfAnUnknownCustomerSucceedsAndFindsNothing) {
  Reopen();
  const EraseResult r = Erase("shop", "nobody");
  EXPECT_FALSE(r.error);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.visitors, 0u);
}

TEST_F(StateTest, ThresholdsAreComputedPerSiteFromTheCustomersWithOrders) {
  Reopen();
  auto order = [](const std::string& who, const std::string& id, double total, profiles::EpochMs at) {
    boost::json::object p;
    p["order_id"] = id;
    p["total"] = total;
    p["currency"] = "EUR";
    return h::Track(who, "Order Completed", at, std::move(p));
  };
  ASSERT_FALSE(Send("a", {order("u:c1", "1", 10, kT0), order("u:c2", "2", 20, kT0),
                          order("u:c3", "3", 970, kT0), h::Page("a:v,u:c4", kT0, "/")})
                   .error);
  ASSERT_FALSE(Send("b", {order("u:c1", "1", 5, kT0)}).error);
  // Not computed yet: the background's first run is a minute after opening.
  EXPECT_FALSE(store_->ReadThresholds("a")->has_value());

  ASSERT_FALSE(store_->RecomputeThresholds(kT0 + 24 * 60 * kMinute));
  auto a = store_->ReadThresholds("a");
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_EQ((*a)->customers, 3);  // c4 has no order
  EXPECT_EQ((*a)->computed_at, kT0 + 24 * 60 * kMinute);
  // c3 alone makes 97% of the revenue: only c3 is A.
  EXPECT_EQ((*a)->abc_a_min, h::Money(970));
  auto b = store_->ReadThresholds("b");
  ASSERT_TRUE(b.has_value() && b->has_value());
  EXPECT_EQ((*b)->customers, 1);
}

TEST_F(StateTest, ThresholdsAreComputedInTheBackgroundOnASchedule) {
  options_.thresholds_interval = std::chrono::milliseconds(50);
  Reopen();
  boost::json::object p;
  p["order_id"] = "1";
  p["total"] = 10;
  ASSERT_FALSE(Send("shop", {h::Track("u:c1", "Order Completed", kT0, p)}).error);
  // No call here: the store's own thread computes them (within a few intervals).
  for (int i = 0; i < 200; ++i) {
    auto t = store_->ReadThresholds("shop");
    ASSERT_TRUE(t.has_value());
    if (*t && (*t)->customers == 1) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "the thresholds were not computed in the background within 4 s";
}

}  // namespace
}  // namespace cartwatch::storage
