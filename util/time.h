// Time helpers shared by every subsystem: ISO-8601 timestamps and config durations.
// Pure functions, no state: safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cartwatch::util {

// Milliseconds since the Unix epoch, UTC. Every stored time in Cartwatch uses this unit.
using EpochMs = std::int64_t;

// Parses an ISO-8601 / RFC 3339 date-time such as "2026-11-23T17:24:02.123Z",
// "2026-11-23T17:24:02+01:00", "2026-11-23T17:24:02.5-0330" or "2026-11-23T17:24:02"
// (no offset: UTC), and a bare date "2026-11-23" (midnight UTC). A space is accepted in
// place of 'T' ('t' and 'z' are accepted too, as RFC 3339 allows); the offset may be
// "Z", "+HH", "+HHMM" or "+HH:MM". Fractions beyond milliseconds are truncated.
// Returns nullopt for anything else, including out-of-range fields (month 13, hour 24,
// Feb 30, a leap second ":60") and years outside 0000-9999.
std::optional<EpochMs> ParseIso8601(std::string_view text);

// Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ" (always UTC, always milliseconds), appending to `out`.
// Times before year 0000 or after 9999 are clamped to the first / last millisecond of that
// range, so the result always parses again with ParseIso8601.
void AppendIso8601(EpochMs ms, std::string& out);
std::string FormatIso8601(EpochMs ms);

// Parses a config duration: a non-negative integer followed by a unit, e.g. "250ms", "15s",
// "5m", "1h", "90d". Units: ms, s, m, h, d, w. "0" alone is zero.
// Returns nullopt for anything else (no unit, unknown unit, sign, fraction, overflow).
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Current wall-clock time in EpochMs.
EpochMs NowMs();

}  // namespace cartwatch::util
