// The storefront tracker (sdk-js/dist/cartwatch.min.js) as the build embedded it into the
// binary, which the public listener serves at GET /cartwatch.js (docs/api.md). Private to
// collector/. Thread safety: EmbeddedTracker() may be called from any thread; what it returns
// is immutable.
#pragma once

#include <string>
#include <string_view>

#include "collector/router.h"

namespace cartwatch::collector {

struct TrackerScript {
  std::string_view body;  // the minified script, UTF-8
  std::string gzipped;    // `body` as one gzip member, compressed once
  std::string version;    // 16 hex digits of a 64-bit FNV-1a hash of `body`
  std::string etag;       // `version` in quotes: a strong validator
};

// The answer to GET /cartwatch.js (docs/api.md, "The tracker"): the script, gzip when the
// request accepts it, 304 for a matching If-None-Match, cached by version; 404
// tracker_not_built when the build had no tracker.
Response TrackerResponse(const Request& request, std::string_view query);

// The embedded script, built on the first call. nullptr when the build had no tracker (CMake
// found no sdk-js/dist/cartwatch.min.js: `npm run --prefix sdk-js build` before building).
const TrackerScript* EmbeddedTracker();

}  // namespace cartwatch::collector
