// The binary record format of profiles (docs/profiles.md, "Stored form").
#include "profiles/codec.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace cartwatch::profiles {

namespace {

// Byte 0 of each record.
constexpr char kVisitorRecord = 'V';
constexpr char kCustomerRecord = 'C';
constexpr char kThresholdsRecord = 'T';
// Byte 1. A new field is appended at the end of its record and read only when the
// record's version is at least the one that added it; older records get its default.
// Version 2 added the customer's merge fields (merged_user_ids, merged_into, merged_at).
// Version 3 added the time zone and locale of visitors and customers.
constexpr std::uint8_t kFormatVersion = 3;

class ProfilesErrorCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "cartwatch.profiles"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kTruncated:
        return "profile record is truncated";
      case Errc::kWrongRecord:
        return "bytes hold another kind of profile record";
      case Errc::kUnknownVersion:
        return "profile record written by a newer version";
      case Errc::kCorrupt:
        return "profile record is corrupt";
    }
    return "unknown profile record error";
  }
};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Unsigned(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Signed(std::int64_t v) {
    Unsigned((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void Size(std::size_t n) { Unsigned(n); }
  void String(std::string_view s) {
    Size(s.size());
    out_.append(s);
  }
  void OptionalAmount(const std::optional<Amount>& a) {
    Byte(a ? 1 : 0);
    if (a) Signed(*a);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Errc error() const { return error_; }
  bool ok() const { return error_ == Errc{}; }
  bool AtEnd() const { return pos_ == in_.size(); }
  void Fail(Errc e) {
    if (ok()) error_ = e;
    pos_ = in_.size();
  }

  std::uint8_t Byte() {
    if (pos_ >= in_.size()) {
      Fail(Errc::kTruncated);
      return 0;
    }
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint64_t Unsigned() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) {
        Fail(Errc::kTruncated);
        return 0;
      }
      const auto b = static_cast<std::uint8_t>(in_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    Fail(Errc::kCorrupt);  // more than 10 bytes
    return 0;
  }
  std::int64_t Signed() {
    const std::uint64_t v = Unsigned();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  // A count of elements that take at least one byte each: never more than what is left.
  std::size_t Count() {
    const std::uint64_t n = Unsigned();
    if (n > in_.size() - pos_) {
      Fail(Errc::kCorrupt);
      return 0;
    }
    return static_cast<std::size_t>(n);
  }
  void String(std::string& out) {
    const std::size_t n = Count();
    out.assign(in_.substr(pos_, n));
    pos_ += n;
  }
  std::optional<Amount> OptionalAmount() {
    const std::uint8_t flag = Byte();
    if (flag > 1) Fail(Errc::kCorrupt);
    if (flag == 1) return Signed();
    return std::nullopt;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  Errc error_{};
};

// ---- Writers ----

void Put(Writer& w, const Campaign& c) {
  w.String(c.source);
  w.String(c.medium);
  w.String(c.name);
  w.String(c.term);
  w.String(c.content);
}

void Put(Writer& w, const Trait& t) {
  w.String(t.value);
  w.Signed(t.at);
}

void Put(Writer& w, const Traits& t) {
  Put(w, t.email);
  Put(w, t.phone);
  Put(w, t.first_name);
  Put(w, t.last_name);
  Put(w, t.name);
}

void Put(Writer& w, const CartLine& l) {
  w.String(l.key);
  w.String(l.product_id);
  w.String(l.sku);
  w.String(l.name);
  w.String(l.category);
  w.String(l.brand);
  w.String(l.image_url);
  w.String(l.url);
  w.String(l.currency);
  w.Signed(l.quantity);
  w.Signed(l.price);
  w.Signed(l.updated_at);
}

void Put(Writer& w, const Cart& c) {
  w.Size(c.lines.size());
  for (const CartLine& l : c.lines) Put(w, l);
  w.Unsigned(c.version);
  w.Signed(c.updated_at);
  w.Signed(c.replaced_at);
  w.Byte(static_cast<std::uint8_t>(c.stage));
  w.Signed(c.checkout_started_at);
  w.Size(c.removals.size());
  for (const CartRemoval& r : c.removals) {
    w.String(r.key);
    w.Signed(r.at);
  }
}

void Put(Writer& w, const Session& s) {
  w.Signed(s.start);
  w.Signed(s.end);
  w.Signed(s.pages);
  w.String(s.landing_url);
  w.String(s.landing_title);
  w.String(s.exit_url);
  w.String(s.exit_title);
  w.String(s.referrer);
  Put(w, s.utm);
}

void Put(Writer& w, const ViewedProduct& p) {
  w.String(p.key);
  w.String(p.name);
  w.String(p.category);
  w.String(p.brand);
  w.String(p.url);
  w.String(p.image_url);
  w.String(p.currency);
  w.OptionalAmount(p.price);
  w.Signed(p.views);
  w.Signed(p.viewed_at);
}

void Put(Writer& w, const Order& o) {
  w.String(o.order_id);
  w.Signed(o.at);
  w.Signed(o.revenue);
  w.String(o.currency);
  w.Size(o.items.size());
  for (const OrderItem& i : o.items) {
    w.String(i.category);
    w.String(i.brand);
    w.Signed(i.amount);
  }
}

void Put(Writer& w, const std::vector<ViewedProduct>& viewed) {
  w.Size(viewed.size());
  for (const ViewedProduct& p : viewed) Put(w, p);
}

void Put(Writer& w, const std::vector<Order>& orders) {
  w.Size(orders.size());
  for (const Order& o : orders) Put(w, o);
}

void Put(Writer& w, const std::vector<Spend>& spends) {
  w.Size(spends.size());
  for (const Spend& s : spends) {
    w.String(s.currency);
    w.String(s.name);
    w.Signed(s.amount);
  }
}

void Put(Writer& w, const OrderArchive& a) {
  w.Signed(a.count);
  w.Signed(a.first_at);
  w.Signed(a.last_at);
  w.Size(a.revenue.size());
  for (const CurrencyTotal& t : a.revenue) {
    w.String(t.currency);
    w.Signed(t.orders);
    w.Signed(t.revenue);
  }
  Put(w, a.categories);
  Put(w, a.brands);
}

// ---- Readers ----

void Get(Reader& r, Campaign& c) {
  r.String(c.source);
  r.String(c.medium);
  r.String(c.name);
  r.String(c.term);
  r.String(c.content);
}

void Get(Reader& r, Trait& t) {
  r.String(t.value);
  t.at = r.Signed();
}

void Get(Reader& r, Traits& t) {
  Get(r, t.email);
  Get(r, t.phone);
  Get(r, t.first_name);
  Get(r, t.last_name);
  Get(r, t.name);
}

// Reads `count` elements with `read`, stopping at the first error.
template <typename T, typename Read>
void GetAll(Reader& r, std::vector<T>& out, Read read) {
  const std::size_t n = r.Count();
  out.clear();
  out.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) read(out.emplace_back());
}

void Get(Reader& r, CartLine& l) {
  r.String(l.key);
  r.String(l.product_id);
  r.String(l.sku);
  r.String(l.name);
  r.String(l.category);
  r.String(l.brand);
  r.String(l.image_url);
  r.String(l.url);
  r.String(l.currency);
  l.quantity = r.Signed();
  l.price = r.Signed();
  l.updated_at = r.Signed();
}

void Get(Reader& r, Cart& c) {
  GetAll(r, c.lines, [&r](CartLine& l) { Get(r, l); });
  c.version = r.Unsigned();
  c.updated_at = r.Signed();
  c.replaced_at = r.Signed();
  const std::uint8_t stage = r.Byte();
  if (stage > static_cast<std::uint8_t>(CartStage::kCheckout)) r.Fail(Errc::kCorrupt);
  c.stage = static_cast<CartStage>(stage);
  c.checkout_started_at = r.Signed();
  GetAll(r, c.removals, [&r](CartRemoval& x) {
    r.String(x.key);
    x.at = r.Signed();
  });
}

void Get(Reader& r, Session& s) {
  s.start = r.Signed();
  s.end = r.Signed();
  s.pages = r.Signed();
  r.String(s.landing_url);
  r.String(s.landing_title);
  r.String(s.exit_url);
  r.String(s.exit_title);
  r.String(s.referrer);
  Get(r, s.utm);
}

void Get(Reader& r, ViewedProduct& p) {
  r.String(p.key);
  r.String(p.name);
  r.String(p.category);
  r.String(p.brand);
  r.String(p.url);
  r.String(p.image_url);
  r.String(p.currency);
  p.price = r.OptionalAmount();
  p.views = r.Signed();
  p.viewed_at = r.Signed();
}

void Get(Reader& r, Order& o) {
  r.String(o.order_id);
  o.at = r.Signed();
  o.revenue = r.Signed();
  r.String(o.currency);
  GetAll(r, o.items, [&r](OrderItem& i) {
    r.String(i.category);
    r.String(i.brand);
    i.amount = r.Signed();
  });
}

void Get(Reader& r, std::vector<Spend>& spends) {
  GetAll(r, spends, [&r](Spend& s) {
    r.String(s.currency);
    r.String(s.name);
    s.amount = r.Signed();
  });
}

void Get(Reader& r, OrderArchive& a) {
  a.count = r.Signed();
  a.first_at = r.Signed();
  a.last_at = r.Signed();
  GetAll(r, a.revenue, [&r](CurrencyTotal& t) {
    r.String(t.currency);
    t.orders = r.Signed();
    t.revenue = r.Signed();
  });
  Get(r, a.categories);
  Get(r, a.brands);
}

// Checks the two header bytes; returns the record's version (0 after a failure).
std::uint8_t Header(Reader& r, char record) {
  const std::uint8_t kind = r.Byte();
  const std::uint8_t version = r.Byte();
  if (!r.ok()) return 0;
  if (kind != static_cast<std::uint8_t>(record)) {
    r.Fail(Errc::kWrongRecord);
    return 0;
  }
  if (version == 0 || version > kFormatVersion) {
    r.Fail(version == 0 ? Errc::kCorrupt : Errc::kUnknownVersion);
    return 0;
  }
  return version;
}

template <typename T>
boost::system::result<T> Finish(Reader& r, T&& value) {
  if (r.ok() && !r.AtEnd()) r.Fail(Errc::kCorrupt);
  if (!r.ok()) return make_error_code(r.error());
  return std::forward<T>(value);
}

}  // namespace

const boost::system::error_category& ProfilesCategory() {
  static const ProfilesErrorCategory category;
  return category;
}

boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), ProfilesCategory()};
}

std::string Encode(const Visitor& v) {
  std::string out;
  EncodeTo(out, v);
  return out;
}

void EncodeTo(std::string& out, const Visitor& v) {
  out.reserve(out.size() + 128 + 192 * v.sessions.size() + 128 * v.cart.lines.size());  // a guess
  Writer w(out);
  w.Byte(kVisitorRecord);
  w.Byte(kFormatVersion);
  w.String(v.anonymous_id);
  w.String(v.user_id);
  w.Signed(v.first_seen);
  w.Signed(v.last_seen);
  w.Signed(v.linked_at);
  w.Signed(v.page_views);
  w.Size(v.sessions.size());
  for (const Session& s : v.sessions) Put(w, s);
  Put(w, v.traits);
  Put(w, v.cart);
  Put(w, v.viewed);
  Put(w, v.orders);
  w.String(v.timezone);
  w.String(v.locale);
}

std::string Encode(const Customer& c) {
  std::string out;
  EncodeTo(out, c);
  return out;
}

void EncodeTo(std::string& out, const Customer& c) {
  out.reserve(out.size() + 256 + 128 * c.cart.lines.size() + 64 * c.orders.size() +
              4 * c.visits.size());
  Writer w(out);
  w.Byte(kCustomerRecord);
  w.Byte(kFormatVersion);
  w.String(c.user_id);
  Put(w, c.traits);
  w.Size(c.anonymous_ids.size());
  for (const std::string& id : c.anonymous_ids) w.String(id);
  w.Signed(c.first_seen);
  w.Signed(c.last_seen);
  Put(w, c.cart);
  Put(w, c.viewed);
  Put(w, c.orders);
  Put(w, c.archived);
  // Ascending: each start as the difference to the one before.
  w.Size(c.visits.size());
  EpochMs previous = 0;
  for (const EpochMs start : c.visits) {
    w.Signed(start - previous);
    previous = start;
  }
  w.Size(c.merged_user_ids.size());
  for (const std::string& id : c.merged_user_ids) w.String(id);
  w.String(c.merged_into);
  w.Signed(c.merged_at);
  w.String(c.timezone);
  w.String(c.locale);
}

std::string Encode(const SiteThresholds& t) {
  std::string out;
  Writer w(out);
  w.Byte(kThresholdsRecord);
  w.Byte(kFormatVersion);
  w.Signed(t.customers);
  w.Signed(t.computed_at);
  for (const std::int64_t v : t.recency_days) w.Signed(v);
  for (const std::int64_t v : t.frequency) w.Signed(v);
  for (const Amount v : t.monetary) w.Signed(v);
  w.Signed(t.abc_a_min);
  w.Signed(t.abc_b_min);
  return out;
}

boost::system::result<Visitor> DecodeVisitor(std::string_view bytes) {
  Reader r(bytes);
  Visitor v;
  if (const std::uint8_t version = Header(r, kVisitorRecord); version != 0) {
    r.String(v.anonymous_id);
    r.String(v.user_id);
    v.first_seen = r.Signed();
    v.last_seen = r.Signed();
    v.linked_at = r.Signed();
    v.page_views = r.Signed();
    GetAll(r, v.sessions, [&r](Session& s) { Get(r, s); });
    Get(r, v.traits);
    Get(r, v.cart);
    GetAll(r, v.viewed, [&r](ViewedProduct& p) { Get(r, p); });
    GetAll(r, v.orders, [&r](Order& o) { Get(r, o); });
    if (version >= 3) {
      r.String(v.timezone);
      r.String(v.locale);
    }
  }
  return Finish(r, std::move(v));
}

boost::system::result<Customer> DecodeCustomer(std::string_view bytes) {
  Reader r(bytes);
  Customer c;
  if (const std::uint8_t version = Header(r, kCustomerRecord); version != 0) {
    r.String(c.user_id);
    Get(r, c.traits);
    GetAll(r, c.anonymous_ids, [&r](std::string& id) { r.String(id); });
    c.first_seen = r.Signed();
    c.last_seen = r.Signed();
    Get(r, c.cart);
    GetAll(r, c.viewed, [&r](ViewedProduct& p) { Get(r, p); });
    GetAll(r, c.orders, [&r](Order& o) { Get(r, o); });
    Get(r, c.archived);
    EpochMs previous = 0;
    GetAll(r, c.visits, [&r, &previous](EpochMs& start) {
      // Unsigned: corrupt deltas wrap instead of overflowing.
      start = static_cast<EpochMs>(static_cast<std::uint64_t>(previous) +
                                   static_cast<std::uint64_t>(r.Signed()));
      previous = start;
    });
    if (version >= 2) {
      GetAll(r, c.merged_user_ids, [&r](std::string& id) { r.String(id); });
      r.String(c.merged_into);
      c.merged_at = r.Signed();
    }
    if (version >= 3) {
      r.String(c.timezone);
      r.String(c.locale);
    }
  }
  return Finish(r, std::move(c));
}

boost::system::result<SiteThresholds> DecodeThresholds(std::string_view bytes) {
  Reader r(bytes);
  SiteThresholds t;
  if (Header(r, kThresholdsRecord) != 0) {
    t.customers = r.Signed();
    t.computed_at = r.Signed();
    for (std::int64_t& v : t.recency_days) v = r.Signed();
    for (std::int64_t& v : t.frequency) v = r.Signed();
    for (Amount& v : t.monetary) v = r.Signed();
    t.abc_a_min = r.Signed();
    t.abc_b_min = r.Signed();
  }
  return Finish(r, std::move(t));
}

}  // namespace cartwatch::profiles
