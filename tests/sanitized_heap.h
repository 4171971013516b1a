// kSanitizedHeap: whether this test binary's malloc is a sanitizer's (ASan, MSan), whose
// heap glibc's mallinfo2 and malloc_trim do not see. Tests that measure the heap skip then.
#pragma once

namespace cartwatch::tests {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedHeap = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
inline constexpr bool kSanitizedHeap = true;
#else
inline constexpr bool kSanitizedHeap = false;
#endif
#else
inline constexpr bool kSanitizedHeap = false;
#endif

}  // namespace cartwatch::tests
