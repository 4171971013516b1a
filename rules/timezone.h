// Time zones by IANA name ("Europe/Berlin"), for quiet hours in a person's own time: the
// offset from UTC at an instant, read from the system's zoneinfo files (Debian's tzdata,
// TZif version 2 or later: the transitions, then the POSIX TZ rule at the file's end for
// instants after the last one). GCC 12's libstdc++ has no std::chrono::tzdb, hence this.
//
// A TimeZone is a plain value (thread-safe to read). TimeZones caches loaded zones and is
// not thread-safe: the committing thread owns one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cartwatch::rules {

class TimeZone {
 public:
  static TimeZone Utc() { return TimeZone(); }
  // The zone from TZif bytes; nullopt when they are not a TZif file of version 2 or later.
  static std::optional<TimeZone> Parse(std::string_view tzif);
  // The zone named `name` under `dir`; nullopt when the name is not a zone there.
  static std::optional<TimeZone> Load(std::string_view name,
                                      const std::string& dir = "/usr/share/zoneinfo");

  // Seconds east of UTC at `utc_ms` (Unix ms).
  std::int32_t OffsetSeconds(std::int64_t utc_ms) const;

  // A POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"); the zone is that rule alone.
  static std::optional<TimeZone> FromPosixRule(std::string_view rule);

 private:
  // "Mm.w.d/time": the d-th weekday (0 Sunday) of week w (5: the last) of month m, at
  // `seconds` after local midnight.
  struct DstDate {
    int month = 0, week = 0, weekday = 0;
    std::int32_t seconds = 7200;
  };
  struct PosixRule {
    std::int32_t std_offset = 0;  // seconds east of UTC
    bool has_dst = false;
    std::int32_t dst_offset = 0;
    DstDate start, end;
  };
  static std::optional<PosixRule> ParsePosix(std::string_view rule);
  static std::int32_t RuleOffset(const PosixRule& rule, std::int64_t utc_seconds);

  std::vector<std::int64_t> transitions_;  // Unix seconds, ascending
  std::vector<std::int32_t> offsets_;      // from each transition on
  std::int32_t initial_offset_ = 0;        // before the first transition
  std::optional<PosixRule> rule_;          // after the last transition
};

class TimeZones {
 public:
  explicit TimeZones(std::string dir = "/usr/share/zoneinfo") : dir_(std::move(dir)) {}
  // The zone named `name`, loaded once; UTC when it cannot be loaded (also remembered).
  const TimeZone& Get(std::string_view name);

 private:
  std::string dir_;
  std::map<std::string, TimeZone, std::less<>> zones_;
};

}  // namespace cartwatch::rules
