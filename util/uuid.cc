#include "util/uuid.h"

#include <cstdint>
#include <random>

namespace cartwatch::util {

namespace {

std::mt19937_64 SeededGenerator() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(),
                     device(), device(), device(), device()};
  return std::mt19937_64(seed);
}

void AppendHex(std::uint64_t value, int nibbles, char*& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = nibbles - 1; i >= 0; --i) *out++ = kHex[(value >> (4 * i)) & 0xf];
}

}  // namespace

std::string NewUuidV4() {
  thread_local std::mt19937_64 generator = SeededGenerator();
  std::uint64_t hi = generator();
  std::uint64_t lo = generator();
  hi = (hi & ~std::uint64_t{0xf000}) | 0x4000;                         // version 4
  lo = (lo & ~(std::uint64_t{0xc} << 60)) | (std::uint64_t{8} << 60);  // variant 10xx

  std::string out(36, '-');
  char* p = out.data();
  AppendHex(hi >> 32, 8, p);
  ++p;
  AppendHex(hi >> 16, 4, p);
  ++p;
  AppendHex(hi, 4, p);
  ++p;
  AppendHex(lo >> 48, 4, p);
  ++p;
  AppendHex(lo, 12, p);
  return out;
}

}  // namespace cartwatch::util
