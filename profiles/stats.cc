// Customer statistics, RFM and ABC. The definitions are in docs/profiles.md.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "profiles/profiles.h"

namespace cartwatch::profiles {

namespace {

constexpr EpochMs kDayMs = 24 * 60 * 60 * 1000;
constexpr double kYearDays = 365.25;

// The currency a customer's money is counted in: that of the newest order stating one,
// else the archived currency with the most orders; empty when no order states one.
std::string StatsCurrency(const Customer& c) {
  for (auto it = c.orders.rbegin(); it != c.orders.rend(); ++it) {
    if (!it->currency.empty()) return it->currency;
  }
  const CurrencyTotal* best = nullptr;
  for (const CurrencyTotal& t : c.archived.revenue) {
    if (!t.currency.empty() && (best == nullptr || t.orders > best->orders)) best = &t;
  }
  return best != nullptr ? best->currency : std::string();
}

void Add(std::vector<Favourite>& sums, const std::string& name, Amount amount) {
  if (name.empty()) return;
  for (Favourite& f : sums) {
    if (f.name == name) {
      f.spend = AddAmounts(f.spend, amount);
      return;
    }
  }
  sums.push_back(Favourite{name, amount});
}

// The three largest, ties by name.
std::vector<Favourite> Top3(std::vector<Favourite> sums) {
  std::sort(sums.begin(), sums.end(), [](const Favourite& a, const Favourite& b) {
    return a.spend != b.spend ? a.spend > b.spend : a.name < b.name;
  });
  if (sums.size() > 3) sums.resize(3);
  return sums;
}

// The value at quantile i/5 (nearest rank) of ascending `sorted`, for i = 1..4.
template <typename T>
std::array<T, 4> QuintileCuts(const std::vector<T>& sorted) {
  std::array<T, 4> cuts{};
  const std::size_t n = sorted.size();
  for (std::size_t i = 1; i <= 4; ++i) {
    const std::size_t rank = (i * n + 4) / 5;  // ceil(i * n / 5), >= 1 when n >= 1
    cuts[i - 1] = sorted[rank - 1];
  }
  return cuts;
}

template <typename T>
int Above(T value, const std::array<T, 4>& cuts) {
  int n = 0;
  for (const T cut : cuts) n += value > cut ? 1 : 0;
  return n;
}

}  // namespace

CustomerStats ComputeStats(const Customer& c, EpochMs now, const Options& options) {
  CustomerStats stats;
  stats.last_seen = c.last_seen;
  const EpochMs window_start = now - 30 * kDayMs;
  for (const EpochMs start : c.visits) {
    if (start > window_start && start <= now) ++stats.visits_last_30_days;
  }

  stats.currency = StatsCurrency(c);
  stats.orders = c.archived.count + static_cast<std::int64_t>(c.orders.size());
  if (stats.orders == 0) return stats;

  // Per currency; orders that state none count as the stats currency.
  auto total_for = [&stats](const std::string& currency) -> CurrencyTotal& {
    const std::string& key = currency.empty() ? stats.currency : currency;
    for (CurrencyTotal& t : stats.revenue_by_currency) {
      if (t.currency == key) return t;
    }
    stats.revenue_by_currency.push_back(CurrencyTotal{key, 0, 0});
    return stats.revenue_by_currency.back();
  };
  std::vector<Favourite> categories, brands;
  auto in_currency = [&stats](const std::string& currency) {
    return currency.empty() || currency == stats.currency;
  };
  for (const CurrencyTotal& t : c.archived.revenue) {
    CurrencyTotal& into = total_for(t.currency);
    into.orders += t.orders;
    into.revenue = AddAmounts(into.revenue, t.revenue);
  }
  for (const Spend& s : c.archived.categories) {
    if (in_currency(s.currency)) Add(categories, s.name, s.amount);
  }
  for (const Spend& s : c.archived.brands) {
    if (in_currency(s.currency)) Add(brands, s.name, s.amount);
  }
  for (const Order& order : c.orders) {
    CurrencyTotal& into = total_for(order.currency);
    ++into.orders;
    into.revenue = AddAmounts(into.revenue, order.revenue);
    if (!in_currency(order.currency)) continue;
    for (const OrderItem& item : order.items) {
      Add(categories, item.category, item.amount);
      Add(brands, item.brand, item.amount);
    }
  }
  std::sort(stats.revenue_by_currency.begin(), stats.revenue_by_currency.end(),
            [](const CurrencyTotal& a, const CurrencyTotal& b) {
              return a.revenue != b.revenue ? a.revenue > b.revenue : a.currency < b.currency;
            });
  stats.favourite_categories = Top3(std::move(categories));
  stats.favourite_brands = Top3(std::move(brands));

  for (const CurrencyTotal& t : stats.revenue_by_currency) {
    if (t.currency != stats.currency) continue;
    stats.revenue = t.revenue;
    if (t.orders > 0) {
      // Exact, rounded half away from zero: |revenue| <= kMaxAmount, so nothing overflows.
      const Amount half = t.orders / 2;
      stats.average_order_value =
          (t.revenue >= 0 ? t.revenue + half : t.revenue - half) / t.orders;
    }
  }

  EpochMs first = 0, last = 0;
  bool any = false;
  auto see = [&](EpochMs at) {
    if (!any || at < first) first = at;
    if (!any || at > last) last = at;
    any = true;
  };
  if (c.archived.count > 0) {
    see(c.archived.first_at);
    see(c.archived.last_at);
  }
  for (const Order& order : c.orders) see(order.at);
  stats.first_order_at = first;
  stats.last_order_at = last;
  if (stats.orders >= 2) {
    stats.mean_days_between_orders = static_cast<double>(last - first) /
                                     static_cast<double>(kDayMs) /
                                     static_cast<double>(stats.orders - 1);
  }

  // A tenure under a year counts as a year: a new customer is not extrapolated from a
  // few weeks.
  const double years =
      std::max(1.0, static_cast<double>(now - first) / static_cast<double>(kDayMs) / kYearDays);
  stats.orders_a_year = static_cast<double>(stats.orders) / years;
  const double ltv = static_cast<double>(stats.average_order_value) * stats.orders_a_year *
                     options.expected_lifetime_years;
  stats.ltv = std::isfinite(ltv) ? std::llround(std::clamp(ltv, -static_cast<double>(kMaxAmount),
                                                          static_cast<double>(kMaxAmount)))
                                 : 0;
  return stats;
}

std::optional<RfmValues> RfmValuesOf(const CustomerStats& stats, EpochMs now) {
  if (stats.orders == 0 || !stats.last_order_at) return std::nullopt;
  RfmValues values;
  values.recency_days = std::max<EpochMs>(0, now - *stats.last_order_at) / kDayMs;
  values.frequency = stats.orders;
  values.monetary = stats.revenue;
  return values;
}

SiteThresholds ComputeThresholds(std::span<const RfmValues> customers, EpochMs computed_at) {
  SiteThresholds t;
  t.customers = static_cast<std::int64_t>(customers.size());
  t.computed_at = computed_at;
  constexpr Amount kNever = std::numeric_limits<Amount>::max();
  t.abc_a_min = t.abc_b_min = kNever;
  if (customers.empty()) return t;

  std::vector<std::int64_t> recency, frequency;
  std::vector<Amount> monetary;
  recency.reserve(customers.size());
  frequency.reserve(customers.size());
  monetary.reserve(customers.size());
  for (const RfmValues& v : customers) {
    recency.push_back(v.recency_days);
    frequency.push_back(v.frequency);
    monetary.push_back(v.monetary);
  }
  std::sort(recency.begin(), recency.end());
  std::sort(frequency.begin(), frequency.end());
  std::sort(monetary.begin(), monetary.end());
  t.recency_days = QuintileCuts(recency);
  t.frequency = QuintileCuts(frequency);
  t.monetary = QuintileCuts(monetary);

  // ABC: walk customers from the largest revenue down; A while the revenue before them is
  // under 80% of the total, B while under 95%.
  __int128 total = 0;
  for (const Amount m : monetary) total += m > 0 ? m : 0;
  __int128 before = 0;
  for (auto it = monetary.rbegin(); it != monetary.rend() && *it > 0; ++it) {
    if (before * 100 < total * 80) {
      t.abc_a_min = *it;
    } else if (before * 100 < total * 95) {
      t.abc_b_min = *it;
    } else {
      break;
    }
    before += *it;
  }
  if (t.abc_b_min == kNever) t.abc_b_min = t.abc_a_min;
  return t;
}

RfmSegment SegmentOf(int r, int f, int m) {
  using S = RfmSegment;
  // Rows: R = 5 down to 1; columns: FM = 1 to 5 (docs/profiles.md).
  static constexpr S kGrid[5][5] = {
      {S::kNew, S::kPotentialLoyalist, S::kPotentialLoyalist, S::kChampions, S::kChampions},
      {S::kPromising, S::kPotentialLoyalist, S::kLoyal, S::kChampions, S::kChampions},
      {S::kAboutToSleep, S::kNeedAttention, S::kNeedAttention, S::kLoyal, S::kLoyal},
      {S::kHibernating, S::kHibernating, S::kAtRisk, S::kAtRisk, S::kAtRisk},
      {S::kLost, S::kLost, S::kAtRisk, S::kCantLose, S::kCantLose},
  };
  r = std::clamp(r, 1, 5);
  const int fm = std::clamp((std::clamp(f, 1, 5) + std::clamp(m, 1, 5) + 1) / 2, 1, 5);
  return kGrid[5 - r][fm - 1];
}

std::string_view SegmentName(RfmSegment segment) {
  switch (segment) {
    case RfmSegment::kChampions:
      return "champions";
    case RfmSegment::kLoyal:
      return "loyal";
    case RfmSegment::kPotentialLoyalist:
      return "potential_loyalist";
    case RfmSegment::kNew:
      return "new";
    case RfmSegment::kPromising:
      return "promising";
    case RfmSegment::kNeedAttention:
      return "need_attention";
    case RfmSegment::kAboutToSleep:
      return "about_to_sleep";
    case RfmSegment::kAtRisk:
      return "at_risk";
    case RfmSegment::kCantLose:
      return "cant_lose";
    case RfmSegment::kHibernating:
      return "hibernating";
    case RfmSegment::kLost:
      return "lost";
  }
  return "lost";
}

std::string_view AbcName(AbcClass abc) {
  switch (abc) {
    case AbcClass::kA:
      return "A";
    case AbcClass::kB:
      return "B";
    case AbcClass::kC:
      return "C";
  }
  return "C";
}

std::optional<Score> ScoreCustomer(const RfmValues& values, const SiteThresholds& thresholds) {
  if (thresholds.customers == 0) return std::nullopt;
  Score score;
  score.r = 5 - Above(values.recency_days, thresholds.recency_days);
  score.f = 1 + Above(values.frequency, thresholds.frequency);
  score.m = 1 + Above(values.monetary, thresholds.monetary);
  score.segment = SegmentOf(score.r, score.f, score.m);
  if (values.monetary > 0 && values.monetary >= thresholds.abc_a_min) {
    score.abc = AbcClass::kA;
  } else if (values.monetary > 0 && values.monetary >= thresholds.abc_b_min) {
    score.abc = AbcClass::kB;
  } else {
    score.abc = AbcClass::kC;
  }
  return score;
}

}  // namespace cartwatch::profiles
