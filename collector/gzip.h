// Gzip decoding with a cap on the output, so a small body cannot expand into a huge one
// (a "zip bomb"), and encoding for what the collector serves compressed. Private to
// collector/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cartwatch::collector {

enum class InflateResult { kOk, kTooLarge, kCorrupt };

// Decompresses the gzip stream `in` (RFC 1952; concatenated members are accepted) into `out`
// (replacing its contents). Stops as soon as the output would exceed `max_out` bytes and
// returns kTooLarge. kCorrupt for a bad header, bad data, a bad checksum or a truncated
// stream. On success `out` has capacity for `extra_capacity` more bytes beyond its size
// (the JSON parser's padding) without reallocating.
InflateResult Gunzip(std::string_view in, std::size_t max_out, std::size_t extra_capacity,
                     std::string& out);

// `in` as one gzip member (RFC 1952) at zlib's best compression.
std::string GzipCompress(std::string_view in);

}  // namespace cartwatch::collector
