// util/memory_trim.h: the trimmer hands back memory freed in the middle of malloc's heap,
// which free() alone keeps resident.
#include "util/memory_trim.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/sanitized_heap.h"

namespace cartwatch::util {
namespace {

using cartwatch::tests::kSanitizedHeap;

// The resident size of this process (/proc/self/statm), 0 when it cannot be read.
std::uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST(MemoryTrimTest, TheTrimmerHandsBackMemoryFreedInTheMiddleOfTheHeap) {
  if (kSanitizedHeap) GTEST_SKIP() << "a sanitizer's allocator is not glibc's malloc";
  // 256 MiB in 4,000-byte blocks (above malloc's per-thread caches), then all freed but
  // one block in 64: what lies between those stays in the heap, resident, after free().
  std::vector<char*> blocks(64 * 1024);
  for (char*& block : blocks) {
    block = static_cast<char*>(std::malloc(4000));
    ASSERT_NE(block, nullptr);
    std::memset(block, 1, 4000);
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 64 != 63) {
      std::free(blocks[i]);
      blocks[i] = nullptr;
    }
  }
  const std::uint64_t before = ResidentBytes();
  ASSERT_GT(before, std::uint64_t{200} << 20);
  {
    MemoryTrimmer trimmer(std::chrono::milliseconds(20));
    for (int i = 0; i < 500 && trimmer.trims() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(trimmer.trims(), 1u);
  }
  const std::uint64_t after = ResidentBytes();
  EXPECT_LT(after + (std::uint64_t{150} << 20), before) << "before " << before << " after " << after;
  for (char* block : blocks) std::free(block);
}

TEST(MemoryTrimTest, NoIntervalNoThread) {
  MemoryTrimmer trimmer(std::chrono::milliseconds(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(trimmer.trims(), 0u);
}

}  // namespace
}  // namespace cartwatch::util
