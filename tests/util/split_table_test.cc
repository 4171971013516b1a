#include "util/split_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cartwatch::util {
namespace {

using Set = SplitTable<boost::unordered_flat_set<std::uint64_t>>;
using Map = SplitTable<boost::unordered_flat_map<std::string_view, std::unique_ptr<std::string>>>;

TEST(SplitTableTest, InsertsFindsAndErasesAsOneTable) {
  Set set;
  EXPECT_TRUE(set.insert(7).second);
  EXPECT_FALSE(set.insert(7).second);
  EXPECT_TRUE(set.insert(8).second);
  EXPECT_EQ(set.size(), 2u);
  ASSERT_NE(set.Find(7), nullptr);
  EXPECT_EQ(*set.Find(7), 7u);
  EXPECT_EQ(set.Find(9), nullptr);
  EXPECT_EQ(set.erase(9), 0u);
  EXPECT_EQ(set.erase(7), 1u);
  EXPECT_EQ(set.Find(7), nullptr);
  EXPECT_EQ(set.erase_if(8, [](std::uint64_t) { return false; }), 0u);
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.erase_if(8, [](std::uint64_t v) { return v == 8; }), 1u);
  EXPECT_EQ(set.size(), 0u);
  set.insert(1);
  set.clear();
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(set.Find(1), nullptr);
}

TEST(SplitTableTest, AMapKeyedByAViewOfItsValueErasesSafely) {
  // As the records' map: the key views the string the value owns.
  Map map;
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("site\x1fvisitor-" + std::to_string(i));
  for (const std::string& k : keys) {
    auto owned = std::make_unique<std::string>(k);
    const std::string_view view(*owned);
    auto [element, inserted] = map.try_emplace(view, std::move(owned));
    ASSERT_TRUE(inserted);
    EXPECT_EQ(element->first.data(), element->second->data());
  }
  EXPECT_EQ(map.size(), keys.size());
  for (const std::string& k : keys) {
    auto* found = map.Find(std::string_view(k));
    ASSERT_NE(found, nullptr) << k;
    EXPECT_EQ(*found->second, k);
  }
  for (std::size_t i = 0; i < keys.size(); i += 2) {
    // Erased by the view of its own value (under ASan a read after the free would show).
    const std::string_view own = *map.Find(std::string_view(keys[i]))->second;
    EXPECT_EQ(map.erase(own), 1u);
  }
  EXPECT_EQ(map.size(), keys.size() / 2);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(map.Find(std::string_view(keys[i])) != nullptr, i % 2 == 1) << keys[i];
  }
}

// The point of the split: a growth moves one part's elements, not the whole table's.
TEST(SplitTableTest, AGrowthMovesOnlyOnePartOfTheElements) {
  Set set;
  constexpr std::size_t kIds = 200'000;
  std::vector<std::size_t> capacity(Set::parts(), 0);
  std::size_t most_moved = 0, growths = 0;
  std::uint64_t x = 0x243F6A8885A308D3ull;  // as the dedup index's ids: hashes
  for (std::size_t i = 0; i < kIds; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    set.insert(x);
    const std::size_t p = set.part_of(x);  // only the part inserted into can have grown
    const std::size_t now = set.part(p).bucket_count();
    if (now != capacity[p]) {
      if (capacity[p] != 0) {
        ++growths;
        most_moved = std::max(most_moved, set.part(p).size() - 1);
      }
      capacity[p] = now;
    }
  }
  EXPECT_EQ(set.size(), kIds);
  EXPECT_GT(growths, Set::parts());
  // One table would have moved over half of them at its last growth (100,000 and more).
  EXPECT_LE(most_moved, 2 * kIds / Set::parts()) << "growths " << growths;

  // Sequential keys (as boost::hash gives integers: unmixed) spread as well, and each part
  // keeps them apart: no part's table is much larger than its share needs (it would grow
  // early if its keys fell into a few groups).
  Set sequential;
  for (std::uint64_t i = 0; i < kIds; ++i) sequential.insert(i);
  std::size_t largest = 0, largest_capacity = 0;
  for (std::size_t p = 0; p < Set::parts(); ++p) {
    largest = std::max(largest, sequential.part(p).size());
    largest_capacity = std::max(largest_capacity, sequential.part(p).bucket_count());
  }
  EXPECT_LE(largest, 2 * kIds / Set::parts());
  EXPECT_LE(largest_capacity, 4 * kIds / Set::parts());
}

}  // namespace
}  // namespace cartwatch::util
