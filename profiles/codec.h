// Profile codecs: the records of profiles/profiles.h as compact byte strings for RocksDB
// values, and as the JSON documents of the query API. The byte format and the JSON shapes
// are in docs/profiles.md.
//
// Pure functions, no shared state: safe from any thread.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "profiles/profiles.h"

namespace cartwatch::profiles {

enum class Errc {
  kTruncated = 1,   // the bytes end in the middle of a record
  kWrongRecord,     // the bytes hold another kind of record (a Customer read as a Visitor)
  kUnknownVersion,  // written by a newer Cartwatch than this one
  kCorrupt,         // a length or value that cannot be right, or bytes after the record
};
const boost::system::error_category& ProfilesCategory();
boost::system::error_code make_error_code(Errc e);

// Binary encodings, versioned: byte 0 names the record, byte 1 is the format version. A
// decoder reads every version up to its own; it refuses newer ones (kUnknownVersion).
// Decoding never trusts a length: corrupt input gives an error, not a crash or a huge
// allocation.
std::string Encode(const Visitor& visitor);
std::string Encode(const Customer& customer);
std::string Encode(const SiteThresholds& thresholds);
// The same encodings, appended to `out` (whose capacity a caller can reuse).
void EncodeTo(std::string& out, const Visitor& visitor);
void EncodeTo(std::string& out, const Customer& customer);
boost::system::result<Visitor> DecodeVisitor(std::string_view bytes);
boost::system::result<Customer> DecodeCustomer(std::string_view bytes);
boost::system::result<SiteThresholds> DecodeThresholds(std::string_view bytes);

// The body of GET /v1/customers/{userId}: traits, linked visitors, cart and statistics as
// of `now`. The rfm and abc fields are null when `thresholds` is null or empty, or the
// customer has no order.
std::string RenderCustomer(const Customer& customer, const SiteThresholds* thresholds, EpochMs now,
                           const Options& options = {});

// The body of GET /v1/visitors/{anonymousId}: linked customer, current cart, last sessions
// (newest first). `customer` is the linked customer when the visitor has one (its cart is
// the current cart); nullptr otherwise, or when it cannot be read (the cart is then the
// visitor's own).
std::string RenderVisitor(const Visitor& visitor, const Customer* customer);

}  // namespace cartwatch::profiles

namespace boost::system {
template <>
struct is_error_code_enum<cartwatch::profiles::Errc> : std::true_type {};
}  // namespace boost::system
