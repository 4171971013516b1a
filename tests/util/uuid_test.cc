#include "util/uuid.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cartwatch::util {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

TEST(UuidTest, IsLowerCaseVersion4) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuidV4();
    ASSERT_EQ(id.size(), 36u) << id;
    for (std::size_t j = 0; j < id.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        ASSERT_EQ(id[j], '-') << id;
      } else {
        ASSERT_TRUE(IsLowerHex(id[j])) << id;
      }
    }
    EXPECT_EQ(id[14], '4') << id;                                          // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // RFC 4122 variant
  }
}

TEST(UuidTest, IsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(NewUuidV4()).second);
}

TEST(UuidTest, ThreadsDrawDifferentSequences) {
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kEach; ++i) ids[t].push_back(NewUuidV4());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> seen;
  for (const auto& list : ids) {
    for (const auto& id : list) EXPECT_TRUE(seen.insert(id).second) << id;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(UuidTest, UsesAllHexDigits) {
  // A generator stuck on a few values (or a badly masked one) would miss digits.
  std::set<char> digits;
  for (int i = 0; i < 100; ++i) {
    for (char c : NewUuidV4()) digits.insert(c);
  }
  EXPECT_EQ(digits.size(), 17u);  // 16 hex digits and '-'
}

}  // namespace
}  // namespace cartwatch::util
