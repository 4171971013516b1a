// The benchmark request stream: see workload.h.
//
// Everything is derived from the seed through std::mt19937_64 (whose output the standard
// fixes) and integer arithmetic; std::*_distribution is avoided on purpose because its
// output is implementation-defined, so the same seed gives the same bytes with any
// standard library. Nothing reads a clock: times are a fixed base plus counter offsets.
//
// Messages are appended straight into the request body (no per-message temporaries); all
// the strings written are plain ASCII without quotes or backslashes, so nothing needs JSON
// escaping.
#include "bench/workload.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace cartwatch::bench {
namespace {

using namespace std::string_view_literals;

// 2026-11-20T08:00:00.000Z: every stream starts here; each message is 173 ms later than the
// previous one of the same stream (a million messages span about two days).
constexpr std::int64_t kBaseTimeMs = 1'795'161'600'000;
constexpr std::int64_t kStepMs = 173;
constexpr std::size_t kProducts = 1'000;

constexpr std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, n) from one 64-bit draw (multiply-shift; the bias is far below noise).
inline std::uint64_t Below(std::mt19937_64& rng, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

template <class T, std::size_t N>
const T& Pick(const std::array<T, N>& items, std::uint64_t h) {
  return items[h % N];
}

// --- small appenders (no allocation once `out` has capacity) ---

void AppendUInt(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void AppendPadded(std::string& out, std::uint64_t v, int width) {
  char buf[24];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

void AppendHex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = digits - 1; i >= 0; --i) {
    buf[i] = kHex[v & 0xf];
    v >>= 4;
  }
  out.append(buf, static_cast<std::size_t>(digits));
}

// Cents as a JSON number with two decimals: 1999 -> 19.99.
void AppendMoney(std::string& out, std::uint64_t cents) {
  AppendUInt(out, cents / 100);
  out.push_back('.');
  AppendPadded(out, cents % 100, 2);
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), as a JSON string. Civil-from-days after H. Hinnant;
// written into a local buffer with 32-bit arithmetic (this is the hottest piece).
void AppendTimestamp(std::string& out, std::int64_t ms) {
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  const auto put2 = [](char* p, unsigned v) {
    p[0] = kPairs[2 * v];
    p[1] = kPairs[2 * v + 1];
  };
  const std::int64_t day_number = ms / 86'400'000;  // times here are after 1970
  const auto rem = static_cast<std::uint32_t>(ms - day_number * 86'400'000);
  const auto days = static_cast<std::uint32_t>(day_number + 719'468);
  const std::uint32_t era = days / 146'097;
  const std::uint32_t doe = days - era * 146'097;
  const std::uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::uint32_t mp = (5 * doy + 2) / 153;
  const std::uint32_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::uint32_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::uint32_t year = yoe + era * 400 + (month <= 2);
  const std::uint32_t second_of_day = rem / 1000;
  const std::uint32_t milli = rem - second_of_day * 1000;
  char b[26];  // "2026-11-20T08:00:00.000Z"
  b[0] = '"';
  put2(b + 1, year / 100 % 100);
  put2(b + 3, year % 100);
  b[5] = '-';
  put2(b + 6, month);
  b[8] = '-';
  put2(b + 9, day);
  b[11] = 'T';
  put2(b + 12, second_of_day / 3600);
  b[14] = ':';
  put2(b + 15, second_of_day / 60 % 60);
  b[17] = ':';
  put2(b + 18, second_of_day % 60);
  b[20] = '.';
  b[21] = static_cast<char>('0' + milli / 100);
  put2(b + 22, milli % 100);
  b[24] = 'Z';
  b[25] = '"';
  out.append(b, sizeof b);
}

// --- the storefront: a fixed catalog and fixed visitors, derived from their index ---

constexpr std::string_view kShop = "https://shop.example.com"sv;

struct Word {
  std::string_view text;  // "Trail Shoe"
  std::string_view slug;  // "trail-shoe"
};
struct Category {
  std::string_view name;  // "category"
  std::string_view code;  // sku prefix
  std::array<Word, 4> nouns;
};
constexpr std::array<Category, 6> kCategories{{
    {"Shoes",
     "SH",
     {{{"Runner", "runner"},
       {"Trail Shoe", "trail-shoe"},
       {"Sneaker", "sneaker"},
       {"Loafer", "loafer"}}}},
    {"Apparel",
     "AP",
     {{{"Hoodie", "hoodie"},
       {"T-Shirt", "t-shirt"},
       {"Rain Jacket", "rain-jacket"},
       {"Chinos", "chinos"}}}},
    {"Bags",
     "BG",
     {{{"Backpack", "backpack"},
       {"Tote", "tote"},
       {"Duffel", "duffel"},
       {"Sling Bag", "sling-bag"}}}},
    {"Home",
     "HM",
     {{{"Mug", "mug"},
       {"Throw Blanket", "throw-blanket"},
       {"Desk Lamp", "desk-lamp"},
       {"Planter", "planter"}}}},
    {"Electronics",
     "EL",
     {{{"Headphones", "headphones"},
       {"Speaker", "speaker"},
       {"Charger", "charger"},
       {"Smart Watch", "smart-watch"}}}},
    {"Outdoor",
     "OD",
     {{{"Tent", "tent"},
       {"Water Bottle", "water-bottle"},
       {"Sleeping Bag", "sleeping-bag"},
       {"Headlamp", "headlamp"}}}},
}};
constexpr std::array<Word, 8> kAdjectives{{{"Classic", "classic"},
                                           {"Urban", "urban"},
                                           {"Alpine", "alpine"},
                                           {"Everyday", "everyday"},
                                           {"Premium", "premium"},
                                           {"Light", "light"},
                                           {"Coastal", "coastal"},
                                           {"Nordic", "nordic"}}};
constexpr std::array<std::string_view, 6> kBrands{"Northwind",   "Acme",    "Fjordline",
                                                  "Hearth & Co", "Voltaic", "Summit Gear"};
constexpr std::array<std::string_view, 4> kVariants{"Black", "Navy", "Sand", "Olive"};

struct Product {
  std::uint64_t index;
  std::uint64_t hash;
  const Category* category;
  const Word* adjective;
  const Word* noun;
  std::string_view brand;
  std::uint64_t price_cents;
};

Product GetProduct(std::uint64_t p) {
  Product product;
  product.index = p;
  product.hash = SplitMix64(p ^ 0x70726f64756374ULL);
  product.category = &kCategories[p % kCategories.size()];
  product.noun = &product.category->nouns[(p / kCategories.size()) % 4];
  product.adjective = &Pick(kAdjectives, product.hash >> 8);
  product.brand = Pick(kBrands, product.hash >> 16);
  product.price_cents = (4 + (product.hash >> 24) % 196) * 100 + 99;  // 4.99 .. 199.99
  return product;
}

void AppendProductName(std::string& out, const Product& p) {
  out.append(p.adjective->text);
  out.append(" ");
  out.append(p.noun->text);
}

// "classic-trail-shoe-123": lower case, spaces as hyphens.
void AppendSlug(std::string& out, const Product& p) {
  out.append(p.adjective->slug);
  out.append("-");
  out.append(p.noun->slug);
  out.append("-");
  AppendUInt(out, p.index);
}

void AppendProductUrl(std::string& out, const Product& p) {
  out.append(kShop);
  out.append("/products/");
  AppendSlug(out, p);
}

void AppendProductId(std::string& out, const Product& p) {
  AppendHex(out, p.hash, 16);  // like a database id
  AppendHex(out, p.index, 8);
}

void AppendSku(std::string& out, const Product& p) {
  out.append(p.category->code);
  out.push_back('-');
  AppendPadded(out, p.index, 5);
}

// The short form used in products[] of Cart Viewed and Order Completed.
void AppendCartItem(std::string& out, const Product& p, std::uint64_t quantity) {
  out.append(R"({"product_id":")");
  AppendProductId(out, p);
  out.append(R"(","sku":")");
  AppendSku(out, p);
  out.append(R"(","name":")");
  AppendProductName(out, p);
  out.append(R"(","price":)");
  AppendMoney(out, p.price_cents);
  out.append(R"(,"quantity":)");
  AppendUInt(out, quantity);
  out.push_back('}');
}

constexpr std::array<Word, 12> kFirstNames{{{"Ada", "ada"},
                                            {"Bruno", "bruno"},
                                            {"Chloe", "chloe"},
                                            {"Dmitri", "dmitri"},
                                            {"Elena", "elena"},
                                            {"Farid", "farid"},
                                            {"Grace", "grace"},
                                            {"Hiro", "hiro"},
                                            {"Ines", "ines"},
                                            {"Jonas", "jonas"},
                                            {"Keiko", "keiko"},
                                            {"Liam", "liam"}}};
constexpr std::array<Word, 12> kLastNames{{{"Martin", "martin"},
                                           {"Okafor", "okafor"},
                                           {"Schmidt", "schmidt"},
                                           {"Rossi", "rossi"},
                                           {"Nakamura", "nakamura"},
                                           {"Silva", "silva"},
                                           {"Kowalski", "kowalski"},
                                           {"Dubois", "dubois"},
                                           {"Larsen", "larsen"},
                                           {"Haddad", "haddad"},
                                           {"Novak", "novak"},
                                           {"Walsh", "walsh"}}};
constexpr std::array<std::string_view, 4> kUserAgents{
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"};
constexpr std::array<std::string_view, 3> kLocales{"en-US", "de-DE", "fr-FR"};
constexpr std::array<std::string_view, 3> kCurrencies{"USD", "EUR", "GBP"};
constexpr std::array<std::string_view, 4> kReferrers{
    "https://www.google.com/", "https://www.instagram.com/", "https://duckduckgo.com/", ""};

struct Campaign {
  std::string_view source, medium, name;
};
constexpr std::array<Campaign, 4> kCampaigns{{
    {"newsletter", "email", "black_friday_2026"},
    {"google", "cpc", "winter_sale"},
    {"instagram", "social", "new_arrivals"},
    {"partner_blog", "referral", "gift_guide"},
}};

struct StaticPage {
  std::string_view path, name;
};
constexpr std::array<StaticPage, 5> kPages{{
    {"/", "Home"},
    {"/search", "Search Results"},
    {"/sale", "Sale"},
    {"/account/orders", "Your Orders"},
    {"/blog/gift-guide", "Winter Gift Guide"},
}};

// A visitor's stable attributes, from its index only (the same across connections).
struct Visitor {
  std::uint64_t index;
  std::uint64_t hash;
  bool identified;  // every 10th visitor has a userId
};

Visitor GetVisitor(std::uint64_t v) {
  return {v, SplitMix64(v ^ 0x76697369746f72ULL), v % 10 == 0};
}

// analytics.js-style UUID v4 anonymousId.
void AppendAnonymousId(std::string& out, const Visitor& v) {
  static constexpr char kHex[] = "0123456789abcdef";
  // 32 random hex digits from two draws; then the version and variant nibbles are set.
  const std::uint64_t halves[2] = {v.hash, SplitMix64(v.hash)};
  char b[36];
  int digit = 0;
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      b[i] = '-';
      continue;
    }
    b[i] = kHex[(halves[digit / 16] >> (4 * (digit % 16))) & 0xf];
    ++digit;
  }
  b[14] = '4';
  b[19] = kHex[0x8 | (v.hash >> 62)];
  out.append(b, sizeof b);
}

void AppendUserId(std::string& out, const Visitor& v) {
  out.append("cus_");
  AppendPadded(out, v.index, 8);
}

std::string_view Currency(const Visitor& v) {
  const std::uint64_t r = (v.hash >> 40) % 20;
  return kCurrencies[r < 16 ? 0 : (r < 19 ? 1 : 2)];
}

// --- message assembly ---

enum class Kind {
  kPage,
  kProductViewed,
  kProductAdded,
  kProductRemoved,
  kCartViewed,
  kIdentify,
  kOrderCompleted
};

// page 60%, Product Viewed 15%, Added 10%, Removed 3%, Cart Viewed 5%, identify 4%,
// Order Completed 3% (out of 100).
Kind PickKind(std::uint64_t r100) {
  if (r100 < 60) return Kind::kPage;
  if (r100 < 75) return Kind::kProductViewed;
  if (r100 < 85) return Kind::kProductAdded;
  if (r100 < 88) return Kind::kProductRemoved;
  if (r100 < 93) return Kind::kCartViewed;
  if (r100 < 97) return Kind::kIdentify;
  return Kind::kOrderCompleted;
}

struct Stream {
  const WorkloadOptions& options;
  std::mt19937_64& rng;
  std::uint64_t& counter;
};

// messageId: "bm-" + 16 hex digits of the (mixed) seed + "-" + the stream's counter, so
// streams with different seeds never collide.
void AppendMessageId(std::string& out, std::uint64_t seed, std::uint64_t n) {
  out.append("bm-");
  AppendHex(out, SplitMix64(seed), 16);
  out.append("-");
  AppendUInt(out, n);
}

// The common head: {"type":..,"messageId":..,"anonymousId":..[,"userId":..],"timestamp":..
void AppendHead(std::string& out, std::string_view type, const Stream& s, std::uint64_t n,
                const Visitor& v, bool with_user_id) {
  out.append(R"({"type":")");
  out.append(type);
  out.append(R"(","messageId":")");
  AppendMessageId(out, s.options.seed, n);
  out.append(R"(","anonymousId":")");
  AppendAnonymousId(out, v);
  if (with_user_id) {
    out.append(R"(","userId":")");
    AppendUserId(out, v);
  }
  out.append(R"(","timestamp":)");
  AppendTimestamp(out, kBaseTimeMs + static_cast<std::int64_t>(n) * kStepMs);
}

// ,"context":{library, locale[, userAgent]}} closing the message.
void AppendContextAndClose(std::string& out, const Visitor& v, bool user_agent) {
  out.append(R"(,"context":{"library":{"name":"analytics.js","version":"next-1.72.0"},"locale":")");
  out.append(Pick(kLocales, v.hash >> 4));
  if (user_agent) {
    out.append(R"(","userAgent":")");
    out.append(Pick(kUserAgents, v.hash >> 12));
  }
  out.append(R"("}})");
}

// A page view. analytics.js would also copy url and title into properties and always add
// the userAgent; to keep every message within 300-700 bytes, properties hold only the path,
// and campaign landings (whose context.campaign and query string are long) go without it.
void AppendPage(std::string& out, const Stream& s, std::uint64_t n, const Visitor& v) {
  const std::uint64_t r = s.rng();
  AppendHead(out, "page", s, n, v, v.identified);
  const bool product_page = (r & 1) != 0;
  const bool with_campaign = (r >> 1) % 5 == 0;  // 20% arrive from a campaign
  const Campaign& campaign = Pick(kCampaigns, r >> 8);
  const std::string_view referrer = Pick(kReferrers, r >> 16);
  const Product product = GetProduct((r >> 24) % kProducts);
  const StaticPage& page = Pick(kPages, r >> 40);

  out.append(R"(,"name":")");
  out.append(product_page ? "Product"sv : page.name);
  out.append(R"(","properties":{"path":")");
  const std::size_t path_at = out.size();
  if (product_page) {
    out.append("/products/");
    AppendSlug(out, product);
  } else {
    out.append(page.path);
  }
  const std::size_t path_len = out.size() - path_at;
  // std::string::append copes with its own bytes as the source.
  out.append(R"("},"context":{"page":{"path":")");
  out.append(out.data() + path_at, path_len);
  out.append(R"(","referrer":")");
  out.append(referrer);
  out.append(R"(","title":")");
  if (product_page) {
    AppendProductName(out, product);
    out.append(" | Example Shop");
  } else {
    out.append(page.name);
    out.append(" | Example Shop");
  }
  out.append(R"(","url":")");
  out.append(kShop);
  out.append(out.data() + path_at, path_len);
  if (with_campaign) {
    out.append("?utm_source=");
    out.append(campaign.source);
    out.append("&utm_medium=");
    out.append(campaign.medium);
    out.append("&utm_campaign=");
    out.append(campaign.name);
    out.append(R"("},"campaign":{"source":")");
    out.append(campaign.source);
    out.append(R"(","medium":")");
    out.append(campaign.medium);
    out.append(R"(","name":")");
    out.append(campaign.name);
  }
  out.append(R"("},"library":{"name":"analytics.js","version":"next-1.72.0"})");
  if (!with_campaign) {
    out.append(R"(,"userAgent":")");
    out.append(Pick(kUserAgents, v.hash >> 12));
    out.push_back('"');
  }
  out.append("}}");
}

void AppendProductEvent(std::string& out, const Stream& s, std::uint64_t n, const Visitor& v,
                        std::string_view event) {
  const std::uint64_t r = s.rng();
  const Product p = GetProduct(r % kProducts);
  AppendHead(out, "track", s, n, v, v.identified);
  out.append(R"(,"event":")");
  out.append(event);
  out.append(R"(","properties":{"product_id":")");
  AppendProductId(out, p);
  out.append(R"(","sku":")");
  AppendSku(out, p);
  out.append(R"(","category":")");
  out.append(p.category->name);
  out.append(R"(","name":")");
  AppendProductName(out, p);
  out.append(R"(","brand":")");
  out.append(p.brand);
  out.append(R"(","variant":")");
  out.append(Pick(kVariants, r >> 20));
  out.append(R"(","price":)");
  AppendMoney(out, p.price_cents);
  out.append(R"(,"quantity":)");
  AppendUInt(out, 1 + (r >> 24) % 100 / 80);  // mostly 1, sometimes 2
  out.append(R"(,"currency":")");
  out.append(Currency(v));
  out.append(R"(","url":")");
  AppendProductUrl(out, p);
  out.append(R"(","image_url":"https://cdn.shop.example.com/img/)");
  AppendSku(out, p);
  out.append(R"(.jpg"})");
  AppendContextAndClose(out, v, false);
}

// Appends `items` cart items; returns the subtotal in cents.
std::uint64_t AppendCartItems(std::string& out, std::uint64_t r, std::size_t items) {
  std::uint64_t subtotal = 0;
  out.append(R"("products":[)");
  for (std::size_t i = 0; i < items; ++i) {
    if (i != 0) out.push_back(',');
    const Product p = GetProduct((r >> (i * 10)) % kProducts);
    const std::uint64_t quantity = 1 + ((r >> (40 + i * 4)) & 0xf) / 12;  // 1 or 2
    AppendCartItem(out, p, quantity);
    subtotal += p.price_cents * quantity;
  }
  out.push_back(']');
  return subtotal;
}

void AppendCartViewed(std::string& out, const Stream& s, std::uint64_t n, const Visitor& v) {
  const std::uint64_t r = s.rng();
  const std::size_t items = 1 + (s.rng() % 3);
  AppendHead(out, "track", s, n, v, v.identified);
  out.append(R"(,"event":"Cart Viewed","properties":{"cart_id":"cart_)");
  AppendHex(out, v.hash, 12);
  out.append(R"(",)");
  AppendCartItems(out, r, items);
  out.push_back('}');
  AppendContextAndClose(out, v, items == 1);
}

void AppendOrderCompleted(std::string& out, const Stream& s, std::uint64_t n, const Visitor& v) {
  const std::uint64_t r = s.rng();
  const std::uint64_t r2 = s.rng();
  const std::size_t items = 1 + r2 % 2;
  AppendHead(out, "track", s, n, v, v.identified);
  out.append(R"(,"event":"Order Completed","properties":{"order_id":"ord_)");
  AppendHex(out, SplitMix64(s.options.seed ^ SplitMix64(n)), 12);
  out.append(R"(","currency":")");
  out.append(Currency(v));
  out.append(R"(",)");
  const std::uint64_t subtotal = AppendCartItems(out, r, items);
  const std::uint64_t shipping = subtotal >= 5000 ? 0 : 495;
  const std::uint64_t tax = subtotal * 8 / 100;
  out.append(R"(,"revenue":)");
  AppendMoney(out, subtotal);
  out.append(R"(,"shipping":)");
  AppendMoney(out, shipping);
  out.append(R"(,"tax":)");
  AppendMoney(out, tax);
  out.append(R"(,"total":)");
  AppendMoney(out, subtotal + shipping + tax);
  out.push_back('}');
  AppendContextAndClose(out, v, items == 1);
}

void AppendIdentify(std::string& out, const Stream& s, std::uint64_t n, const Visitor& v) {
  const std::uint64_t r = s.rng();
  AppendHead(out, "identify", s, n, v, true);
  const Word& first = Pick(kFirstNames, v.hash >> 20);
  const Word& last = Pick(kLastNames, v.hash >> 28);
  out.append(R"(,"traits":{"email":")");
  out.append(first.slug);
  out.append(".");
  out.append(last.slug);
  AppendUInt(out, v.index);
  out.append(R"(@example.com","firstName":")");
  out.append(first.text);
  out.append(R"(","lastName":")");
  out.append(last.text);
  out.append(R"(","phone":"+1-555-)");
  AppendPadded(out, (v.hash >> 36) % 1000, 3);
  out.push_back('-');
  AppendPadded(out, (v.hash >> 46) % 10000, 4);
  out.append(R"(","createdAt":)");
  AppendTimestamp(out, kBaseTimeMs - static_cast<std::int64_t>((v.hash >> 8) % 31'536'000) * 1000);
  out.append(R"(,"marketing_opt_in":)");
  out.append((r & 3) != 0 ? "true"sv : "false"sv);
  out.push_back('}');
  AppendContextAndClose(out, v, true);
}

// Appends the next message of the stream to `out` and returns its route.
std::string_view AppendMessage(const Stream& s, std::string& out) {
  const std::uint64_t n = s.counter++;
  const Kind kind = PickKind(Below(s.rng, 100));
  const std::uint64_t visitors = s.options.visitors == 0 ? 1 : s.options.visitors;
  Visitor v;
  if (s.options.visitor_stride != 0) {
    const std::uint64_t index =
        (s.options.visitor_offset + n * s.options.visitor_stride) % visitors;
    v = GetVisitor(kind == Kind::kIdentify ? index / 10 * 10 : index);
  } else if (kind == Kind::kIdentify) {
    // An identified visitor: one of every 10th index (0, 10, 20, ...).
    v = GetVisitor(10 * Below(s.rng, (visitors - 1) / 10 + 1));
  } else {
    v = GetVisitor(Below(s.rng, visitors));
  }
  switch (kind) {
    case Kind::kPage:
      AppendPage(out, s, n, v);
      return "/v1/page";
    case Kind::kProductViewed:
      AppendProductEvent(out, s, n, v, "Product Viewed");
      return "/v1/track";
    case Kind::kProductAdded:
      AppendProductEvent(out, s, n, v, "Product Added");
      return "/v1/track";
    case Kind::kProductRemoved:
      AppendProductEvent(out, s, n, v, "Product Removed");
      return "/v1/track";
    case Kind::kCartViewed:
      AppendCartViewed(out, s, n, v);
      return "/v1/track";
    case Kind::kIdentify:
      AppendIdentify(out, s, n, v);
      return "/v1/identify";
    case Kind::kOrderCompleted:
      AppendOrderCompleted(out, s, n, v);
      return "/v1/track";
  }
  return "/v1/track";
}

constexpr std::size_t kMaxMessageBytes = 1024;  // comfortably above the largest message

}  // namespace

Workload::Workload(const WorkloadOptions& options)
    : options_(options), rng_(SplitMix64(options.seed)) {
  if (options_.batch == 0) options_.batch = 1;
  if (options_.visitors == 0) options_.visitors = 1;
}

BenchRequest Workload::Next() {
  BenchRequest request;
  const Stream s{options_, rng_, counter_};
  if (options_.batch <= 1) {
    request.body.reserve(kMaxMessageBytes);
    request.target = AppendMessage(s, request.body);
    request.messages = 1;
    return request;
  }
  request.body.reserve(options_.batch * kMaxMessageBytes + 64);
  request.body.append(R"({"batch":[)");
  for (std::size_t i = 0; i < options_.batch; ++i) {
    if (i != 0) request.body.push_back(',');
    // Messages carry their own times; sentAt (after the last one) lets the collector
    // correct the clock skew, as analytics-node's batches do.
    AppendMessage(s, request.body);
  }
  request.body.append(R"(],"sentAt":)");
  AppendTimestamp(request.body,
                  kBaseTimeMs + static_cast<std::int64_t>(counter_ - 1) * kStepMs + 250);
  request.body.push_back('}');
  request.target = "/v1/batch";
  request.messages = options_.batch;
  return request;
}

std::string Workload::NextMessage(std::string_view* route) {
  std::string message;
  message.reserve(kMaxMessageBytes);
  const std::string_view r = AppendMessage(Stream{options_, rng_, counter_}, message);
  if (route != nullptr) *route = r;
  return message;
}

}  // namespace cartwatch::bench
