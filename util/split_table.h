// SplitTable: a hash table kept as kParts boost flat tables (unordered_flat_set or
// unordered_flat_map), each key in the part its hash picks.
//
// A flat table grows by moving every element into a table twice the size, all at once. On
// the committing thread that stalls every request behind it: measured at half load, 23 ms
// for the dedup index at 215,000 ids and 30 ms for the records' map at 54,000 keys, each
// showing in the p99 (bench/round2.md, "Half load"). Split in parts, a growth moves the
// elements of one part only, and the parts, filled alike, grow one after another.
//
// A key's part is the top bits of its hash after MurmurHash3's 64-bit finalizer: a mix of
// its own, independent of the bits the table uses (Boost 1.81's flat tables take the
// position from the high bits of the hash, mixed with a multiply by 0x9E3779B97F4A7C15 for
// a hasher not marked avalanching, and the metadata from its low byte; a part picked
// with that same multiply would put all its keys in the same few groups). Lookups hash
// the key twice (for the part, then in it), and take any key type the table's hasher and
// equality take.
//
// Not thread-safe, like the tables.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace cartwatch::util {

template <class Table, std::size_t kParts = 256>
class SplitTable {
  static_assert(kParts > 1 && (kParts & (kParts - 1)) == 0, "kParts: a power of two");

 public:
  using value_type = typename Table::value_type;
  // What Find points to: the element, const for a set (its key must not change).
  using element = std::remove_reference_t<decltype(*std::declval<Table&>().begin())>;

  // As the table's insert: the element of that key, and whether it was inserted.
  std::pair<element*, bool> insert(const value_type& value) {
    auto [it, inserted] = Part(KeyOf(value)).insert(value);
    size_ += inserted ? 1 : 0;
    return {&*it, inserted};
  }

  // As a map's try_emplace.
  template <class Key, class... Args>
  std::pair<element*, bool> try_emplace(const Key& key, Args&&... args) {
    auto [it, inserted] = Part(key).try_emplace(key, std::forward<Args>(args)...);
    size_ += inserted ? 1 : 0;
    return {&*it, inserted};
  }

  // The element of `key`, or nullptr.
  template <class Key>
  element* Find(const Key& key) {
    Table& part = Part(key);
    auto it = part.find(key);
    return it == part.end() ? nullptr : &*it;
  }

  // Erases the element of `key`: 1, or 0 when there is none. `key` is not read after the
  // element is destroyed (it may view the element's own memory).
  template <class Key>
  std::size_t erase(const Key& key) {
    return erase_if(key, [](const element&) { return true; });
  }

  // Erases the element of `key` when `pred(element)` holds: 1, else 0.
  template <class Key, class Pred>
  std::size_t erase_if(const Key& key, Pred&& pred) {
    Table& part = Part(key);
    auto it = part.find(key);
    if (it == part.end() || !pred(*it)) return 0;
    part.erase(it);
    --size_;
    return 1;
  }

  std::size_t size() const { return size_; }

  void clear() {
    for (Table& t : parts_) t.clear();
    size_ = 0;
  }

  static constexpr std::size_t parts() { return kParts; }
  const Table& part(std::size_t i) const { return parts_[i]; }
  // The index of the part that holds `key` (or would).
  template <class Key>
  std::size_t part_of(const Key& key) const {
    return PartIndex(parts_[0].hash_function()(key));
  }

 private:
  static constexpr int kBits = __builtin_ctzll(kParts);
  static std::size_t PartIndex(std::size_t hash) {
    std::uint64_t h = hash;  // MurmurHash3's fmix64
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return static_cast<std::size_t>(h >> (64 - kBits));
  }

  template <class Key>
  Table& Part(const Key& key) {
    return parts_[part_of(key)];
  }
  static const auto& KeyOf(const value_type& value) {
    if constexpr (requires { value.first; }) {
      return value.first;
    } else {
      return value;
    }
  }

  std::array<Table, kParts> parts_;
  std::size_t size_ = 0;
};

}  // namespace cartwatch::util
