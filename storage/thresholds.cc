#include "storage/thresholds.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "profiles/codec.h"
#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {

boost::system::error_code WriteSiteThresholds(rocksdb::DB& db,
                                              rocksdb::ColumnFamilyHandle* customers,
                                              rocksdb::ColumnFamilyHandle* meta, util::EpochMs now,
                                              const profiles::Options& options,
                                              const Background& background) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a full scan would evict the hot records
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, customers));
  std::string site;  // the prefix of the site being read
  std::vector<profiles::RfmValues> values;
  rocksdb::WriteBatch batch;
  auto finish_site = [&] {
    if (site.empty()) return;
    batch.Put(meta, ThresholdsKey(site), profiles::Encode(profiles::ComputeThresholds(values, now)));
    values.clear();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (background.stopping()) return Errc::kClosed;
    rocksdb::Slice key = it->key();
    const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
    if (key.size() < prefix_size) continue;  // not a key of this layout
    if (site.size() != prefix_size || std::memcmp(site.data(), key.data(), prefix_size) != 0) {
      finish_site();
      site.assign(key.data(), prefix_size);
    }
    auto customer = profiles::DecodeCustomer(SplitStateValue(it->value().ToStringView()).record);
    if (!customer) continue;  // rebuilt from the event log; not counted meanwhile
    const profiles::CustomerStats stats = profiles::ComputeStats(*customer, now, options);
    if (auto v = profiles::RfmValuesOf(stats, now)) values.push_back(*v);
  }
  if (auto ec = FromStatus(it->status())) return ec;
  finish_site();
  it.reset();
  if (batch.Count() == 0) return {};
  return FromStatus(db.Write(rocksdb::WriteOptions(), &batch));
}

}  // namespace cartwatch::storage
