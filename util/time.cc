#include "util/time.h"

#include <cstddef>
#include <limits>

namespace cartwatch::util {

namespace {

constexpr std::int64_t kMsPerSecond = 1000;
constexpr std::int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr std::int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr std::int64_t kMsPerDay = 24 * kMsPerHour;

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
// days_from_civil), valid for any year.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// The inverse of DaysFromCivil.
void CivilFromDays(std::int64_t z, int& year, unsigned& month, unsigned& day) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `pos`; advances `pos`.
bool ReadDigits(std::string_view text, std::size_t& pos, int n, int& value) {
  if (text.size() - pos < static_cast<std::size_t>(n)) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  value = v;
  pos += n;
  return true;
}

bool Expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// The first and last millisecond AppendIso8601 can write as four-digit years.
constexpr EpochMs kMinFormattable = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr EpochMs kMaxFormattable = 253402300799999;  // 9999-12-31T23:59:59.999Z

// Writes `value` as exactly `width` decimal digits at `p`.
void PutDigits(unsigned value, int width, char* p) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

std::optional<EpochMs> ParseIso8601(std::string_view text) {
  std::size_t pos = 0;
  int year, month, day;
  if (!ReadDigits(text, pos, 4, year) || !Expect(text, pos, '-') ||
      !ReadDigits(text, pos, 2, month) || !Expect(text, pos, '-') ||
      !ReadDigits(text, pos, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
  std::int64_t ms = DaysFromCivil(year, month, day) * kMsPerDay;
  if (pos == text.size()) return ms;

  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return std::nullopt;
  ++pos;
  int hour, minute, second;
  if (!ReadDigits(text, pos, 2, hour) || !Expect(text, pos, ':') ||
      !ReadDigits(text, pos, 2, minute) || !Expect(text, pos, ':') ||
      !ReadDigits(text, pos, 2, second)) {
    return std::nullopt;
  }
  // Leap seconds (":60") are refused: nothing downstream could represent them.
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  ms += hour * kMsPerHour + minute * kMsPerMinute + second * kMsPerSecond;

  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    int fraction_ms = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (pos - first < 3) fraction_ms = fraction_ms * 10 + (text[pos] - '0');
      ++pos;
    }
    const std::size_t digits = pos - first;
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) fraction_ms *= 10;
    ms += fraction_ms;
  }

  if (pos == text.size()) return ms;
  const char zone = text[pos++];
  if (zone == 'Z' || zone == 'z')
    return pos == text.size() ? std::optional<EpochMs>(ms) : std::nullopt;
  if (zone != '+' && zone != '-') return std::nullopt;
  int offset_hours, offset_minutes = 0;
  if (!ReadDigits(text, pos, 2, offset_hours)) return std::nullopt;
  if (pos < text.size()) {
    Expect(text, pos, ':');  // "+01:00" and "+0100" are both ISO-8601
    if (!ReadDigits(text, pos, 2, offset_minutes)) return std::nullopt;
  }
  if (pos != text.size() || offset_hours > 23 || offset_minutes > 59) return std::nullopt;
  const std::int64_t offset = offset_hours * kMsPerHour + offset_minutes * kMsPerMinute;
  // Local time = UTC + offset, so UTC = local - offset.
  return zone == '+' ? ms - offset : ms + offset;
}

void AppendIso8601(EpochMs ms, std::string& out) {
  if (ms < kMinFormattable) ms = kMinFormattable;
  if (ms > kMaxFormattable) ms = kMaxFormattable;
  std::int64_t days = ms / kMsPerDay;
  std::int64_t rem = ms % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  int year;
  unsigned month, day;
  CivilFromDays(days, year, month, day);
  const auto ms_of_day = static_cast<unsigned>(rem);
  // Filled in place and appended once: this runs for every stored message, twice.
  char buf[] = "0000-00-00T00:00:00.000Z";
  PutDigits(static_cast<unsigned>(year), 4, buf);
  PutDigits(month, 2, buf + 5);
  PutDigits(day, 2, buf + 8);
  PutDigits(ms_of_day / kMsPerHour, 2, buf + 11);
  PutDigits(ms_of_day / kMsPerMinute % 60, 2, buf + 14);
  PutDigits(ms_of_day / kMsPerSecond % 60, 2, buf + 17);
  PutDigits(ms_of_day % kMsPerSecond, 3, buf + 20);
  out.append(buf, sizeof buf - 1);
}

std::string FormatIso8601(EpochMs ms) {
  std::string out;
  out.reserve(24);
  AppendIso8601(ms, out);
  return out;
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds(0);
  std::size_t pos = 0;
  std::int64_t value = 0;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  while (pos < text.size() && IsDigit(text[pos])) {
    const int digit = text[pos] - '0';
    if (value > (kMax - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == 0) return std::nullopt;
  const std::string_view unit = text.substr(pos);
  std::int64_t scale;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = kMsPerSecond;
  } else if (unit == "m") {
    scale = kMsPerMinute;
  } else if (unit == "h") {
    scale = kMsPerHour;
  } else if (unit == "d") {
    scale = kMsPerDay;
  } else if (unit == "w") {
    scale = 7 * kMsPerDay;
  } else {
    return std::nullopt;
  }
  if (value > kMax / scale) return std::nullopt;
  return std::chrono::milliseconds(value * scale);
}

EpochMs NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cartwatch::util
