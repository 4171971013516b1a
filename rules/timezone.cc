#include "rules/timezone.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>

namespace cartwatch::rules {
namespace {

std::int64_t Big(std::string_view s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  // Sign-extend.
  const int shift = 64 - 8 * bytes;
  return static_cast<std::int64_t>(v << shift) >> shift;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// The civil year of a day count.
std::int64_t YearOfDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

int DaysInMonth(std::int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Reads a POSIX TZ name ("CET" or "<+03>"); false when there is none.
bool SkipName(std::string_view& s) {
  if (!s.empty() && s[0] == '<') {
    const auto close = s.find('>');
    if (close == std::string_view::npos) return false;
    s.remove_prefix(close + 1);
    return true;
  }
  std::size_t n = 0;
  while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n]))) ++n;
  if (n < 3) return false;
  s.remove_prefix(n);
  return true;
}

// [+-]hh[:mm[:ss]] as seconds; nullopt when malformed.
std::optional<std::int32_t> ReadTime(std::string_view& s) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  std::int32_t total = 0;
  for (int part = 0; part < 3; ++part) {
    if (part > 0) {
      if (s.empty() || s[0] != ':') break;
      s.remove_prefix(1);
    }
    std::int32_t v = 0;
    std::size_t n = 0;
    while (n < s.size() && n < 3 && std::isdigit(static_cast<unsigned char>(s[n]))) {
      v = v * 10 + (s[n] - '0');
      ++n;
    }
    if (n == 0) return std::nullopt;
    s.remove_prefix(n);
    total += v * (part == 0 ? 3600 : part == 1 ? 60 : 1);
  }
  return sign * total;
}

std::optional<int> ReadNumber(std::string_view& s) {
  std::size_t n = 0;
  int v = 0;
  while (n < s.size() && n < 3 && std::isdigit(static_cast<unsigned char>(s[n]))) {
    v = v * 10 + (s[n] - '0');
    ++n;
  }
  if (n == 0) return std::nullopt;
  s.remove_prefix(n);
  return v;
}

}  // namespace

std::optional<TimeZone::PosixRule> TimeZone::ParsePosix(std::string_view s) {
  PosixRule rule;
  if (!SkipName(s)) return std::nullopt;
  auto std_west = ReadTime(s);
  if (!std_west) return std::nullopt;
  rule.std_offset = -*std_west;
  if (s.empty()) return rule;
  if (!SkipName(s)) return std::nullopt;
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;
  if (!s.empty() && s[0] != ',') {
    auto dst_west = ReadTime(s);
    if (!dst_west) return std::nullopt;
    rule.dst_offset = -*dst_west;
  }
  // Only the Mm.w.d form: the one tzdata writes.
  for (DstDate* date : {&rule.start, &rule.end}) {
    if (s.size() < 2 || s[0] != ',' || s[1] != 'M') return std::nullopt;
    s.remove_prefix(2);
    auto m = ReadNumber(s);
    if (!m || s.empty() || s[0] != '.') return std::nullopt;
    s.remove_prefix(1);
    auto w = ReadNumber(s);
    if (!w || s.empty() || s[0] != '.') return std::nullopt;
    s.remove_prefix(1);
    auto d = ReadNumber(s);
    if (!d || *m < 1 || *m > 12 || *w < 1 || *w > 5 || *d > 6) return std::nullopt;
    *date = DstDate{*m, *w, *d, 7200};
    if (!s.empty() && s[0] == '/') {
      s.remove_prefix(1);
      auto t = ReadTime(s);
      if (!t) return std::nullopt;
      date->seconds = *t;
    }
  }
  if (!s.empty()) return std::nullopt;
  return rule;
}

std::int32_t TimeZone::RuleOffset(const PosixRule& rule, std::int64_t utc_seconds) {
  if (!rule.has_dst) return rule.std_offset;
  const std::int64_t local_days = (utc_seconds + rule.std_offset) / 86400 -
                                  ((utc_seconds + rule.std_offset) % 86400 < 0 ? 1 : 0);
  const std::int64_t year = YearOfDays(local_days);
  // The instant (UTC) a DstDate of `year` falls on, read in the local time of `offset`.
  auto instant = [&](const DstDate& date, std::int32_t offset) {
    const std::int64_t first = DaysFromCivil(year, date.month, 1);
    const int first_weekday = static_cast<int>(((first % 7) + 7 + 4) % 7);  // 1970-01-01: Thu
    int day = 1 + (date.weekday - first_weekday + 7) % 7 + (date.week - 1) * 7;
    while (day > DaysInMonth(year, date.month)) day -= 7;
    return (DaysFromCivil(year, date.month, day)) * 86400 + date.seconds - offset;
  };
  const std::int64_t start = instant(rule.start, rule.std_offset);
  const std::int64_t end = instant(rule.end, rule.dst_offset);
  const bool dst = start < end ? (utc_seconds >= start && utc_seconds < end)
                               : !(utc_seconds >= end && utc_seconds < start);
  return dst ? rule.dst_offset : rule.std_offset;
}

std::optional<TimeZone> TimeZone::FromPosixRule(std::string_view text) {
  auto rule = ParsePosix(text);
  if (!rule) return std::nullopt;
  TimeZone zone;
  zone.initial_offset_ = rule->std_offset;
  zone.rule_ = rule;
  return zone;
}

std::optional<TimeZone> TimeZone::Parse(std::string_view s) {
  constexpr std::size_t kHeader = 44;
  if (s.size() < kHeader || s.substr(0, 4) != "TZif" || s[4] < '2') return std::nullopt;
  auto counts = [&](std::size_t at, std::int64_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = Big(s, at + 20 + 4 * i, 4);
  };
  std::int64_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  // Skip the version 1 block (32-bit times) to the version 2 header.
  const std::size_t v1 = static_cast<std::size_t>(c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]);
  const std::size_t header2 = kHeader + v1;
  if (s.size() < header2 + kHeader || s.substr(header2, 4) != "TZif") return std::nullopt;
  counts(header2, c);
  const std::int64_t timecnt = c[3], typecnt = c[4];
  if (timecnt < 0 || typecnt <= 0 || typecnt > 256 || timecnt > 100000) return std::nullopt;
  std::size_t at = header2 + kHeader;
  const std::size_t data = static_cast<std::size_t>(timecnt * 9 + typecnt * 6 + c[5] + c[2] * 12 + c[1] + c[0]);
  if (s.size() < at + data) return std::nullopt;
  TimeZone zone;
  std::vector<std::int32_t> type_offsets(static_cast<std::size_t>(typecnt));
  const std::size_t types_at = at + static_cast<std::size_t>(timecnt * 9);
  for (std::int64_t i = 0; i < typecnt; ++i) {
    type_offsets[static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(Big(s, types_at + static_cast<std::size_t>(i) * 6, 4));
  }
  for (std::int64_t i = 0; i < timecnt; ++i) {
    zone.transitions_.push_back(Big(s, at + static_cast<std::size_t>(i) * 8, 8));
    const auto index = static_cast<unsigned char>(s[at + static_cast<std::size_t>(timecnt * 8 + i)]);
    if (index >= typecnt) return std::nullopt;
    zone.offsets_.push_back(type_offsets[index]);
  }
  zone.initial_offset_ = type_offsets[0];
  // The footer: "\n<rule>\n".
  const std::size_t footer = at + data;
  if (footer < s.size() && s[footer] == '\n') {
    const std::size_t end = s.find('\n', footer + 1);
    if (end != std::string_view::npos && end > footer + 1) {
      zone.rule_ = ParsePosix(s.substr(footer + 1, end - footer - 1));
    }
  }
  return zone;
}

std::optional<TimeZone> TimeZone::Load(std::string_view name, const std::string& dir) {
  // Names as the event parser lets through; never a path out of `dir`.
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return std::nullopt;
  }
  if (name == "UTC" || name == "Etc/UTC") return Utc();
  std::ifstream in(dir + "/" + std::string(name), std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return Parse(bytes);
}

std::int32_t TimeZone::OffsetSeconds(std::int64_t utc_ms) const {
  const std::int64_t t = utc_ms / 1000 - (utc_ms % 1000 < 0 ? 1 : 0);
  if (transitions_.empty() || t < transitions_.front()) {
    if (transitions_.empty() && rule_) return RuleOffset(*rule_, t);
    return initial_offset_;
  }
  if (t >= transitions_.back() && rule_) return RuleOffset(*rule_, t);
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  return offsets_[static_cast<std::size_t>(it - transitions_.begin()) - 1];
}

const TimeZone& TimeZones::Get(std::string_view name) {
  auto it = zones_.find(name);
  if (it != zones_.end()) return it->second;
  std::optional<TimeZone> zone = TimeZone::Load(name, dir_);
  return zones_.emplace(std::string(name), zone ? std::move(*zone) : TimeZone::Utc()).first->second;
}

}  // namespace cartwatch::rules
