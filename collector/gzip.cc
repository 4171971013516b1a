#include "collector/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cassert>
#include <climits>

namespace cartwatch::collector {

namespace {

// Owns a z_stream set up for gzip decoding.
class Inflater {
 public:
  Inflater() { ok_ = inflateInit2(&stream_, 15 + 16) == Z_OK; }  // 16: gzip wrapper only
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ok_) inflateEnd(&stream_);
  }
  bool ok() const { return ok_; }
  z_stream& stream() { return stream_; }

 private:
  z_stream stream_{};
  bool ok_ = false;
};

}  // namespace

InflateResult Gunzip(std::string_view in, std::size_t max_out, std::size_t extra_capacity,
                     std::string& out) {
  out.clear();
  Inflater inflater;
  if (!inflater.ok()) return InflateResult::kCorrupt;
  z_stream& zs = inflater.stream();

  const auto* next_in = reinterpret_cast<const Bytef*>(in.data());
  std::size_t in_left = in.size();
  // One byte past the cap tells "exactly max_out" apart from "more than max_out".
  const std::size_t limit = max_out == SIZE_MAX ? max_out : max_out + 1;
  std::size_t produced = 0;

  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.next_in = const_cast<Bytef*>(next_in);
      zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in_left, UINT_MAX));
      next_in += zs.avail_in;
      in_left -= zs.avail_in;
    }
    if (produced == out.size()) {
      if (produced >= limit) return InflateResult::kTooLarge;
      // Grow geometrically from a guess of 4x the compressed size.
      std::size_t size = std::max<std::size_t>({out.size() * 2, in.size() * 4, 4096});
      size = std::min(size, limit);
      out.reserve(size + extra_capacity);
      out.resize(size);
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, UINT_MAX));
    const uInt avail_before = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += avail_before - zs.avail_out;
    if (produced > max_out) return InflateResult::kTooLarge;

    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 && in_left == 0) break;
      // Another gzip member follows (what `cat a.gz b.gz` makes).
      if (inflateReset(&zs) != Z_OK) return InflateResult::kCorrupt;
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible: either the output is full (grow and go on) or the input
      // ended inside a member (truncated).
      if (zs.avail_out != 0) return InflateResult::kCorrupt;
    } else if (rc != Z_OK) {
      return InflateResult::kCorrupt;  // Z_DATA_ERROR (bad data or CRC), Z_NEED_DICT, ...
    }
  }

  out.resize(produced);
  if (out.capacity() < produced + extra_capacity) out.reserve(produced + extra_capacity);
  return InflateResult::kOk;
}

std::string GzipCompress(std::string_view in) {
  z_stream stream{};
  // 15 + 16: the largest window, with the gzip wrapper.
  [[maybe_unused]] int rc =
      deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  assert(rc == Z_OK);  // fails only on bad arguments or no memory
  std::string out(deflateBound(&stream, in.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  rc = deflate(&stream, Z_FINISH);
  assert(rc == Z_STREAM_END);  // deflateBound is enough for one Z_FINISH
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace cartwatch::collector
