// Workload: the request stream of the benchmarks. A deterministic (seeded) mix of
// realistic storefront events, as a Segment-compatible tracker sends them:
//   page 60%, Product Viewed 15%, Product Added 10%, Product Removed 3%, Cart Viewed 5%,
//   identify 4%, Order Completed 3%
// over a fixed number of distinct visitors, each message 300-700 bytes of JSON (about 570
// on average) with a unique messageId (so that dedup keeps every one).
//
// The messages, as analytics.js would send them (library "analytics.js"):
//  - page: name, properties.path, context.page {path, referrer, title, url}; 20% land from a
//    campaign (utm_* in the url and context.campaign {source, medium, name});
//  - track, Segment E-commerce Spec v2: Product Viewed/Added/Removed (product_id, sku,
//    category, name, brand, variant, price, quantity, currency, url, image_url), Cart Viewed
//    (cart_id, products[1-3]), Order Completed (order_id, currency, products[1-2], revenue,
//    shipping, tax, total), over a fixed catalog of 1,000 products;
//  - identify: userId and traits email, firstName, lastName, phone, createdAt,
//    marketing_opt_in.
// Visitor i has a fixed UUID-shaped anonymousId; every 10th visitor (i % 10 == 0) is
// identified and also sends its userId ("cus_00000120"); identify picks only those.
// messageId is "bm-<16 hex digits from the seed>-<message counter>"; timestamps are a fixed
// base (2026-11-20T08:00:00.000Z) plus 173 ms per message, never the wall clock; a batch's
// sentAt is 250 ms after its last message.
//
// Same seed, same bytes: the stream depends only on WorkloadOptions (std::mt19937_64 and
// integer arithmetic, no std:: distributions, whose output differs between libraries).
// So a second run with the same seed against the same data directory resends messageIds
// that the collector has already stored: dedup answers them without writing, which is
// cheaper and flatters the numbers. Start from an empty data directory, or change the seed
// by more than the number of connections (the load generator gives connection c seed + c).
//
// Cost: about 0.3-0.4 us per message on the benchmark machine; Next() allocates the body
// (one reservation), nothing else.
//
// Not thread-safe: give each thread or connection its own Workload (seed + index).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace cartwatch::bench {

struct WorkloadOptions {
  std::uint64_t seed = 42;         // same seed, same stream
  std::size_t visitors = 100'000;  // distinct anonymous ids (10% of them identified)
  std::size_t batch = 1;           // 1: one message per request; N: {"batch": [N messages]}
  // 0: each message's visitor is drawn uniformly. N > 0: message k of the stream is visitor
  // (visitor_offset + k * N) mod visitors, so N streams with offsets 0..N-1 touch every
  // visitor once before any of them twice (an identify goes to that visitor's identified
  // neighbour, its index rounded down to a multiple of 10).
  std::size_t visitor_stride = 0;
  std::size_t visitor_offset = 0;
};

struct BenchRequest {
  std::string target;    // "/v1/track", "/v1/page", "/v1/identify" or "/v1/batch"
  std::string body;      // JSON
  std::size_t messages;  // messages in body
};

class Workload {
 public:
  explicit Workload(const WorkloadOptions& options);

  // The next request of the stream.
  BenchRequest Next();

 private:
  std::string NextMessage(std::string_view* route);

  WorkloadOptions options_;
  std::mt19937_64 rng_;
  std::uint64_t counter_ = 0;
};

}  // namespace cartwatch::bench
