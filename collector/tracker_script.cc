#include "collector/tracker_script.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "collector/gzip.h"

namespace cartwatch::embedded {
// Generated from sdk-js/dist/cartwatch.min.js by cmake/EmbedFile.cmake.
extern const unsigned char kTrackerScript[];
extern const std::size_t kTrackerScriptSize;
}  // namespace cartwatch::embedded

namespace cartwatch::collector {

namespace {

std::optional<TrackerScript> Build() {
  if (embedded::kTrackerScriptSize == 0) return std::nullopt;
  TrackerScript script;
  script.body = std::string_view(reinterpret_cast<const char*>(embedded::kTrackerScript),
                                 embedded::kTrackerScriptSize);
  script.gzipped = GzipCompress(script.body);
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char c : script.body) hash = (hash ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  script.version = hex;
  script.etag = "\"" + script.version + "\"";
  return script;
}

}  // namespace

const TrackerScript* EmbeddedTracker() {
  static const std::optional<TrackerScript> script = Build();
  return script ? &*script : nullptr;
}

}  // namespace cartwatch::collector
