#include "profiles/event.h"

#include "util/utf8.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

namespace cartwatch::profiles {

namespace {

namespace od = simdjson::ondemand;

// A cart or order lists at most this many products; more are ignored. The collector's
// message limit (32 KB) keeps real messages far below it.
constexpr std::size_t kMaxProducts = 500;
// Longer strings are cut (at a UTF-8 character boundary): they are names and URLs for
// display, and state is rewritten on every event.
constexpr std::size_t kMaxString = 2048;
constexpr std::size_t kMaxCurrency = 8;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

void AssignCut(std::string_view s, std::string& out) {
  if (s.size() > kMaxString) {
    std::size_t n = kMaxString;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // continuation
    s = s.substr(0, n);
  }
  out.assign(s);
}

// A string value; false (and `out` untouched) when the value is not a string.
bool GetString(od::value& value, std::string& out) {
  std::string_view s;
  if (value.get_string().get(s)) return false;
  AssignCut(s, out);
  return true;
}

// An id or other text that may come as a string or a number (numbers as their JSON text).
bool GetText(od::value& value, std::string& out) {
  od::json_type type;
  if (value.type().get(type)) return false;
  if (type == od::json_type::string) return GetString(value, out);
  if (type != od::json_type::number) return false;
  AssignCut(Trim(value.raw_json_token()), out);
  return true;
}

// A number, or a string holding one ("19.90").
std::optional<double> GetNumber(od::value& value) {
  od::json_type type;
  if (value.type().get(type)) return std::nullopt;
  double d = 0;
  if (type == od::json_type::number) {
    if (value.get_double().get(d)) return std::nullopt;
  } else if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return std::nullopt;
    s = Trim(s);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<Amount> GetAmount(od::value& value) {
  const std::optional<double> d = GetNumber(value);
  return d ? AmountFromDouble(*d) : std::nullopt;
}

std::optional<std::int64_t> GetQuantity(od::value& value) {
  const std::optional<double> d = GetNumber(value);
  if (!d || std::fabs(*d) >= 1e9) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(*d));
}

std::optional<EpochMs> GetTime(od::value& value) {
  std::string_view s;
  if (value.get_string().get(s)) return std::nullopt;
  return util::ParseIso8601(s);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `name` equals the Segment event name `spec` (lower case, words split by spaces), ignoring
// case and accepting '_' for ' ': "Product Added", "product_added".
bool IsEvent(std::string_view name, std::string_view spec) {
  if (name.size() != spec.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] == '_' ? ' ' : Lower(name[i]);
    if (c != spec[i]) return false;
  }
  return true;
}

// What a message's properties are read for.
enum class Need : std::uint8_t {
  kUnknown,   // type (or, for track, event) not seen yet: read them in case
  kNothing,   // skip them
  kPage,      // url, title, referrer
  kProduct,   // one product in the properties
  kProducts,  // products[], currency
  kOrder,     // products[], currency, order_id, total/revenue/value
};

// The event type of (type, event); nullopt when the type is not a Segment type.
std::optional<EventType> Classify(std::string_view type, std::string_view event) {
  if (type == "track") {
    if (IsEvent(event, "product viewed")) return EventType::kProductViewed;
    if (IsEvent(event, "product added")) return EventType::kProductAdded;
    if (IsEvent(event, "product removed")) return EventType::kProductRemoved;
    if (IsEvent(event, "cart viewed") || IsEvent(event, "cart updated")) {
      return EventType::kCartReplaced;
    }
    if (IsEvent(event, "checkout started")) return EventType::kCheckoutStarted;
    if (IsEvent(event, "order completed")) return EventType::kOrderCompleted;
    return EventType::kActivity;
  }
  if (type == "page" || type == "screen") return EventType::kPage;
  if (type == "identify") return EventType::kIdentify;
  if (type == "alias") return EventType::kAlias;  // kActivity without previousId (Finish)
  if (type == "group") return EventType::kActivity;
  return std::nullopt;
}

Need NeedOf(EventType type) {
  switch (type) {
    case EventType::kPage:
      return Need::kPage;
    case EventType::kProductViewed:
    case EventType::kProductAdded:
    case EventType::kProductRemoved:
      return Need::kProduct;
    case EventType::kCartReplaced:
    case EventType::kCheckoutStarted:
      return Need::kProducts;
    case EventType::kOrderCompleted:
      return Need::kOrder;
    case EventType::kActivity:
    case EventType::kIdentify:
    case EventType::kAlias:
      return Need::kNothing;
  }
  return Need::kNothing;
}

// The Clear functions empty a value as its default would be, keeping the memory of its
// strings for the next message.
void Clear(Campaign& c) {
  c.source.clear();
  c.medium.clear();
  c.name.clear();
  c.term.clear();
  c.content.clear();
}

void Clear(Product& p) {
  p.key.clear();
  p.product_id.clear();
  p.sku.clear();
  p.name.clear();
  p.category.clear();
  p.brand.clear();
  p.image_url.clear();
  p.url.clear();
  p.quantity.reset();
  p.price.reset();
}

void Clear(Event& e) {
  e.type = EventType::kActivity;
  e.message_id.clear();
  e.anonymous_id.clear();
  e.user_id.clear();
  e.previous_id.clear();
  e.at = 0;
  e.received_at = 0;
  e.url.clear();
  e.title.clear();
  e.referrer.clear();
  Clear(e.campaign);
  e.traits = TraitValues();  // rarely set: not worth keeping
  e.timezone.clear();
  e.locale.clear();
  e.products.clear();
  e.currency.clear();
  e.order_id.clear();
  e.total.reset();
}

// Everything one walk over a message gathers. What is kept depends on the type, known only
// once "type" (and "event") have been read, which may come after "properties".
struct Walk {
  Event* out = nullptr;  // what the walk fills (Finish completes it)
  Event& event() { return *out; }
  std::string type, event_name, name;
  bool has_type = false, has_event = false;
  std::optional<EpochMs> timestamp, received_at;

  // properties
  Product single;
  std::string prop_url, prop_title, prop_referrer;
  std::optional<Amount> total, revenue, value;
  bool has_products = false;

  // context
  std::string page_url, page_title, page_referrer;
  Campaign campaign;
  TraitValues context_traits, traits;

  // Ready for a new message, into `event` (emptied).
  void Reset(Event* event) {
    out = event;
    Clear(*out);
    type.clear();
    event_name.clear();
    name.clear();
    has_type = has_event = false;
    timestamp.reset();
    received_at.reset();
    Clear(single);
    prop_url.clear();
    prop_title.clear();
    prop_referrer.clear();
    total.reset();
    revenue.reset();
    value.reset();
    has_products = false;
    page_url.clear();
    page_title.clear();
    page_referrer.clear();
    Clear(campaign);
    context_traits = TraitValues();
    traits = TraitValues();
  }

  Need need() const {
    if (!has_type || (type == "track" && !has_event)) return Need::kUnknown;
    const std::optional<EventType> t = Classify(type, event_name);
    return t ? NeedOf(*t) : Need::kNothing;
  }
};

// Sets the Product field `key` names from `value`; false when `key` is none of them.
bool ReadProductField(std::string_view key, od::value& value, Product& p) {
  if (key == "product_id") {
    GetText(value, p.product_id);
  } else if (key == "sku") {
    GetText(value, p.sku);
  } else if (key == "id") {
    GetText(value, p.key);  // Segment v1; the key only when neither of the above is given
  } else if (key == "name") {
    GetString(value, p.name);
  } else if (key == "category") {
    GetString(value, p.category);
  } else if (key == "brand") {
    GetString(value, p.brand);
  } else if (key == "image_url") {
    GetString(value, p.image_url);
  } else if (key == "url") {
    GetString(value, p.url);
  } else if (key == "quantity") {
    p.quantity = GetQuantity(value);
  } else if (key == "price") {
    p.price = GetAmount(value);
  } else {
    return false;
  }
  return true;
}

void FinishProduct(Product& p) {
  if (!p.product_id.empty()) {
    p.key = p.product_id;
  } else if (!p.sku.empty()) {
    p.key = p.sku;
  }
}

// Calls f(key, value) for each field of `value`, which returns false for malformed JSON
// (a fatal simdjson error; then so does ForEachField). A value that is not an object has no
// fields: true. Each reader below is one of these walks.
template <typename F>
bool ForEachField(od::value& value, F&& f) {
  od::object object;
  if (value.get_object().get(object)) return true;
  for (auto field_result : object) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
    if (!f(key, field.value())) return false;
  }
  return true;
}

// false on malformed JSON (a fatal simdjson error); wrong types are skipped silently.
bool ReadProducts(od::value& value, std::vector<Product>& out) {
  od::array array;
  if (value.get_array().get(array)) return true;  // not an array: ignored
  for (auto element : array) {
    od::value item;
    if (std::move(element).get(item)) return false;
    od::json_type type;
    if (item.type().get(type) || type != od::json_type::object) continue;
    Product p;
    const bool ok = ForEachField(item, [&](std::string_view key, od::value& v) {
      ReadProductField(key, v, p);
      return true;
    });
    if (!ok) return false;
    FinishProduct(p);
    if (out.size() < kMaxProducts) out.push_back(std::move(p));
  }
  return true;
}

bool ReadProperties(od::value& value, Walk& w) {
  return ForEachField(value, [&](std::string_view key, od::value& v) {
    if (ReadProductField(key, v, w.single)) {
      if (key == "url") w.prop_url = w.single.url;
    } else if (key == "products") {
      w.has_products = true;
      w.event().products.clear();
      if (!ReadProducts(v, w.event().products)) return false;
    } else if (key == "currency") {
      std::string currency;
      if (GetString(v, currency)) {
        currency = std::string(Trim(currency));
        if (currency.size() <= kMaxCurrency) {
          for (char& c : currency) c = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
          w.event().currency = std::move(currency);
        }
      }
    } else if (key == "order_id") {
      GetText(v, w.event().order_id);
    } else if (key == "total") {
      w.total = GetAmount(v);
    } else if (key == "revenue") {
      w.revenue = GetAmount(v);
    } else if (key == "value") {
      w.value = GetAmount(v);
    } else if (key == "title") {
      GetString(v, w.prop_title);
    } else if (key == "referrer") {
      GetString(v, w.prop_referrer);
    }
    return true;
  });
}

bool ReadTraits(od::value& value, TraitValues& t) {
  return ForEachField(value, [&](std::string_view key, od::value& v) {
    std::optional<std::string>* slot = nullptr;
    if (key == "email") {
      slot = &t.email;
    } else if (key == "phone") {
      slot = &t.phone;
    } else if (key == "firstName" || key == "first_name") {
      slot = &t.first_name;
    } else if (key == "lastName" || key == "last_name") {
      slot = &t.last_name;
    } else if (key == "name") {
      slot = &t.name;
    }
    if (slot == nullptr) return true;
    std::string text;
    if (GetText(v, text)) *slot = std::move(text);
    return true;
  });
}

bool ReadCampaign(od::value& value, Campaign& c) {
  return ForEachField(value, [&](std::string_view key, od::value& v) {
    if (key == "source") {
      GetText(v, c.source);
    } else if (key == "medium") {
      GetText(v, c.medium);
    } else if (key == "name") {
      GetText(v, c.name);
    } else if (key == "term") {
      GetText(v, c.term);
    } else if (key == "content") {
      GetText(v, c.content);
    }
    return true;
  });
}

bool ReadContext(od::value& value, Walk& w) {
  return ForEachField(value, [&](std::string_view key, od::value& v) {
    if (key == "page") {
      return ForEachField(v, [&](std::string_view page_key, od::value& pv) {
        if (page_key == "url") {
          GetString(pv, w.page_url);
        } else if (page_key == "title") {
          GetString(pv, w.page_title);
        } else if (page_key == "referrer") {
          GetString(pv, w.page_referrer);
        }
        return true;
      });
    } else if (key == "campaign") {
      Clear(w.campaign);
      if (!ReadCampaign(v, w.campaign)) return false;
    } else if (key == "traits") {
      w.context_traits = TraitValues();
      if (!ReadTraits(v, w.context_traits)) return false;
    } else if (key == "timezone") {
      GetString(v, w.event().timezone);
    } else if (key == "locale") {
      GetString(v, w.event().locale);
    }
    return true;
  });
}

// An IANA time zone name: letters, digits and "_+-/", at most 64 bytes, no "..".
bool LooksLikeTimeZone(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '/' || s.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '+' || c == '-' || c == '/';
  });
}

// A BCP 47 language tag ("ru", "en-US", "zh_Hant_TW"): letters, digits, '-' and '_'.
bool LooksLikeLocale(std::string_view s) {
  if (s.empty() || s.size() > 35) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

bool ReadMessage(od::object& root, Walk& w) {
  for (auto field_result : root) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
    od::value& v = field.value();
    switch (key.size()) {
      case 4:
        if (key == "type") {
          w.has_type = GetString(v, w.type);
          // Not a Segment type: nothing to apply, stop reading.
          if (w.has_type && w.type != "track" && !Classify(w.type, "")) return true;
        } else if (key == "name") {
          GetText(v, w.name);
        }
        break;
      case 5:
        if (key == "event") w.has_event = GetString(v, w.event_name);
        break;
      case 6:
        if (key == "userId") {
          w.event().user_id.clear();
          GetText(v, w.event().user_id);
        } else if (key == "traits") {
          w.traits = TraitValues();
          if (!ReadTraits(v, w.traits)) return false;
        }
        break;
      case 7:
        if (key == "context" && !ReadContext(v, w)) return false;
        break;
      case 9:
        if (key == "messageId") {
          GetText(v, w.event().message_id);
        } else if (key == "timestamp") {
          w.timestamp = GetTime(v);
        }
        break;
      case 10:
        if (key == "properties") {
          // The cheap path: a track event that changes no cart or order skips its
          // properties unread (the On Demand parser steps over them).
          if (w.need() == Need::kNothing) break;
          Clear(w.single);
          if (!ReadProperties(v, w)) return false;
        } else if (key == "receivedAt") {
          w.received_at = GetTime(v);
        } else if (key == "previousId") {
          w.event().previous_id.clear();
          GetText(v, w.event().previous_id);
        }
        break;
      case 11:
        if (key == "anonymousId") {
          w.event().anonymous_id.clear();
          GetText(v, w.event().anonymous_id);
        }
        break;
      default:
        break;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Fills the Event from a complete walk; false when the message changes no state.
bool Finish(Walk& w) {
  Event& e = w.event();
  if (!w.has_type) return false;
  const std::optional<EventType> type = Classify(w.type, w.event_name);
  if (!type || (w.type == "track" && !w.has_event)) return false;
  if (e.anonymous_id.empty() && e.user_id.empty()) return false;
  if (!w.timestamp && !w.received_at) return false;
  e.type = *type;
  if (e.type == EventType::kAlias && (e.previous_id.empty() || e.user_id.empty())) {
    e.type = EventType::kActivity;
  }
  if (e.type != EventType::kAlias) e.previous_id.clear();
  e.at = w.timestamp ? *w.timestamp : *w.received_at;
  e.received_at = w.received_at ? *w.received_at : e.at;
  if (!LooksLikeTimeZone(e.timezone)) e.timezone.clear();
  if (!LooksLikeLocale(e.locale)) e.locale.clear();

  e.traits = std::move(w.context_traits);
  if (e.type == EventType::kIdentify) {
    TraitValues& t = w.traits;
    if (t.email) e.traits.email = std::move(t.email);
    if (t.phone) e.traits.phone = std::move(t.phone);
    if (t.first_name) e.traits.first_name = std::move(t.first_name);
    if (t.last_name) e.traits.last_name = std::move(t.last_name);
    if (t.name) e.traits.name = std::move(t.name);
  }

  switch (NeedOf(e.type)) {
    case Need::kPage: {
      // Swapped, not moved: the walk keeps the event's old buffers for the next message.
      e.url.swap(!w.prop_url.empty() ? w.prop_url : w.page_url);
      e.title.swap(!w.prop_title.empty() ? w.prop_title : w.page_title);
      e.referrer.swap(!w.prop_referrer.empty() ? w.prop_referrer : w.page_referrer);
      if (w.type == "screen" && e.url.empty()) e.url = w.name;
      if (e.title.empty()) e.title.swap(w.name);
      e.campaign = !w.campaign.empty() ? std::move(w.campaign) : CampaignFromUrl(e.url);
      e.products.clear();
      e.currency.clear();
      break;
    }
    case Need::kProduct:
      e.products.clear();
      FinishProduct(w.single);
      if (!w.single.key.empty()) e.products.push_back(std::move(w.single));
      break;
    case Need::kProducts:
      // Cart Viewed without a products array says nothing about the cart's content.
      if (e.type == EventType::kCartReplaced && !w.has_products) e.type = EventType::kActivity;
      if (e.type != EventType::kCartReplaced) e.products.clear();
      break;
    case Need::kOrder:
      if (e.order_id.empty()) e.order_id = "message:" + e.message_id;
      e.total = w.total ? w.total : w.revenue ? w.revenue : w.value;
      break;
    case Need::kNothing:
    case Need::kUnknown:
      e.products.clear();
      e.currency.clear();
      break;
  }
  if (e.type != EventType::kOrderCompleted) e.order_id.clear();
  // Products without a key cannot be cart lines; orders keep them for their spend.
  if (e.type != EventType::kOrderCompleted) {
    std::erase_if(e.products, [](const Product& p) { return p.key.empty(); });
  }
  return true;
}

}  // namespace

std::optional<Amount> AmountFromDouble(double value) {
  if (!std::isfinite(value) || std::fabs(value) >= 1e14) return std::nullopt;
  return static_cast<Amount>(std::llround(value * static_cast<double>(kAmountScale)));
}

Campaign CampaignFromUrl(std::string_view url) {
  Campaign c;
  const std::size_t q = url.find('?');
  if (q == std::string_view::npos) return c;
  std::string_view query = url.substr(q + 1);
  if (const std::size_t hash = query.find('#'); hash != std::string_view::npos) {
    query = query.substr(0, hash);
  }
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = pair.substr(0, eq);
    if (key.substr(0, 4) != "utm_") continue;
    // %-escapes may spell bytes that are not UTF-8 ("%FF"): repaired with U+FFFD, so that the
    // documents that show the campaign stay valid JSON.
    const std::string decoded = util::ToValidUtf8(PercentDecode(pair.substr(eq + 1)));
    std::string value;
    AssignCut(decoded, value);
    const std::string_view name = key.substr(4);
    if (name == "source") {
      c.source = std::move(value);
    } else if (name == "medium") {
      c.medium = std::move(value);
    } else if (name == "campaign") {
      c.name = std::move(value);
    } else if (name == "term") {
      c.term = std::move(value);
    } else if (name == "content") {
      c.content = std::move(value);
    }
  }
  return c;
}

bool ParseEventInto(std::string_view stored_json, Event& out) {
  thread_local od::parser parser;
  thread_local std::string buffer;
  // Reused, as `out` is by the caller: its strings keep their memory from one message to
  // the next.
  thread_local Walk walk;
  // The parser needs SIMDJSON_PADDING readable bytes after the text.
  buffer.reserve(stored_json.size() + simdjson::SIMDJSON_PADDING);
  buffer.assign(stored_json);

  od::document doc;
  if (parser.iterate(buffer.data(), buffer.size(), buffer.capacity()).get(doc)) return false;
  od::object root;
  if (doc.get_object().get(root)) return false;
  walk.Reset(&out);
  return ReadMessage(root, walk) && Finish(walk);
}

std::optional<Event> ParseEvent(std::string_view stored_json) {
  Event event;
  if (!ParseEventInto(stored_json, event)) return std::nullopt;
  return event;
}

}  // namespace cartwatch::profiles
