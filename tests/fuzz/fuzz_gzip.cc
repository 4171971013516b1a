// fuzz_gzip: collector::Gunzip, the bounded inflate of gzip request bodies.
//
// The input is the compressed body. Gunzip runs with a small cap (64 KiB, so a few bytes
// that inflate a lot reach it) and is compared with a plain zlib reference (inflate with the
// gzip wrapper, member after member, as `gzip -d` of concatenated members does).
// What it proves, for any bytes: no crash, leak or undefined behaviour; Gunzip is kOk
// exactly when the reference decodes the whole input within the cap, with the same bytes
// and room for the padding it was asked for; kTooLarge exactly when the reference decodes
// (or is still decoding) past the cap; kCorrupt otherwise. And at the cap's edge: a body
// that inflates to n bytes is kOk with a cap of n and kTooLarge with n - 1.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collector/gzip.h"
#include "fuzz_check.h"

namespace {

using cartwatch::collector::Gunzip;
using cartwatch::collector::InflateResult;

constexpr std::size_t kCap = 64 * 1024;
constexpr std::size_t kPadding = 64;

enum class Ref { kOk, kTooLarge, kCorrupt };

// zlib's own reading of `in`, stopping once more than `cap` bytes came out.
Ref Reference(std::string_view in, std::size_t cap, std::string& out) {
  out.clear();
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Ref::kCorrupt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  Ref result = Ref::kCorrupt;
  unsigned char chunk[4096];
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(reinterpret_cast<char*>(chunk), sizeof chunk - zs.avail_out);
    if (out.size() > cap) {
      result = Ref::kTooLarge;
      break;
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        result = Ref::kOk;
        break;
      }
      if (inflateReset(&zs) != Z_OK) break;
    } else if (rc == Z_BUF_ERROR) {
      if (zs.avail_out != 0) break;  // the input ended inside a member
    } else if (rc != Z_OK) {
      break;
    }
  }
  inflateEnd(&zs);
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string expected;
  const Ref ref = Reference(in, kCap, expected);

  std::string out = "left over from before";
  const InflateResult got = Gunzip(in, kCap, kPadding, out);
  switch (ref) {
    case Ref::kOk:
      CARTWATCH_FUZZ_CHECK(got == InflateResult::kOk, "zlib decodes it within the cap");
      CARTWATCH_FUZZ_CHECK(out == expected, "other bytes than zlib's");
      CARTWATCH_FUZZ_CHECK(out.capacity() >= out.size() + kPadding, "no room for the padding");
      break;
    case Ref::kTooLarge:
      CARTWATCH_FUZZ_CHECK(got == InflateResult::kTooLarge, "zlib decodes past the cap");
      break;
    case Ref::kCorrupt:
      CARTWATCH_FUZZ_CHECK(got == InflateResult::kCorrupt, "zlib refuses it");
      break;
  }
  if (ref == Ref::kOk) {
    // The edge of the cap: exactly n bytes fit a cap of n, not a cap of n - 1.
    const std::size_t n = expected.size();
    CARTWATCH_FUZZ_CHECK(Gunzip(in, n, 0, out) == InflateResult::kOk && out == expected,
                         "cap == size");
    if (n > 0) {
      CARTWATCH_FUZZ_CHECK(Gunzip(in, n - 1, kPadding, out) == InflateResult::kTooLarge,
                           "cap == size - 1");
    }
  }
  return 0;
}
