// What every harness shares (tests/fuzz/README.md): the failure report, the UTF-8 policy
// and the collector limits they run with.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "collector/options.h"

// Every UndefinedBehaviorSanitizer report stops the run (libFuzzer then saves the input),
// with its stack. Each harness is one translation unit, so this is defined once per binary.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}

namespace cartwatch::fuzz {

// A failed invariant: prints why and aborts, so that libFuzzer saves the input.
[[noreturn]] inline void Fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "\n*** fuzz invariant failed: %s\n", what);
  if (!detail.empty()) {
    std::fprintf(stderr, "*** detail (%zu bytes): %.*s\n", detail.size(),
                 static_cast<int>(std::min<std::size_t>(detail.size(), 2000)), detail.data());
  }
  std::abort();
}
#define CARTWATCH_FUZZ_CHECK(cond, detail) \
  do {                                     \
    if (!(cond)) ::cartwatch::fuzz::Fail(#cond, (detail)); \
  } while (false)

inline bool IsValidUtf8(std::string_view s) {
  return simdjson::validate_utf8(s.data(), s.size());
}

// Non-UTF-8 bytes in a JSON body: a finding with CARTWATCH_FUZZ_STRICT_UTF8 (the default).
// Without it (-DCARTWATCH_FUZZ_STRICT_UTF8=OFF, to fuzz past one while it is being fixed)
// they are only reported: the first few of each kind with their body, then counts at exit.
inline void NonUtf8Body(std::string_view where, std::string_view body, bool error_body) {
#ifdef CARTWATCH_FUZZ_STRICT_UTF8
  Fail("JSON body is not valid UTF-8", std::string(where) + ": " + std::string(body));
#else
  static std::mutex mu;
  static std::size_t seen[2] = {0, 0};
  static const char* const kind[2] = {"in a success body (not an error echo)",
                                      "in an error body"};
  std::lock_guard lock(mu);
  if (++seen[error_body] <= 3) {
    std::fprintf(stderr, "NOTE (UTF-8, not failing): non-UTF-8 %s from %.*s: %.*s\n",
                 kind[error_body], static_cast<int>(where.size()), where.data(),
                 static_cast<int>(std::min<std::size_t>(body.size(), 300)), body.data());
  }
  static const bool registered = [] {
    std::atexit([] {
      for (int i = 0; i < 2; ++i) {
        if (seen[i] > 0) {
          std::fprintf(stderr, "NOTE (UTF-8, not failing): %zu non-UTF-8 JSON bodies %s\n",
                       seen[i], kind[i]);
        }
      }
    });
    return true;
  }();
  (void)registered;
#endif
}

// Whether the known finding `id` (README.md, "Findings") is to be skipped: listed in
// CARTWATCH_FUZZ_SKIP (comma-separated), to fuzz on past it while its fix is pending. Never
// set by scripts/fuzz.sh: unfixed, a finding fails the runs and the replay.
inline bool Skipping(std::string_view id) {
  static const std::string list = [] {
    const char* v = std::getenv("CARTWATCH_FUZZ_SKIP");
    return "," + std::string(v ? v : "") + ",";
  }();
  return list.find("," + std::string(id) + ",") != std::string::npos;
}

// Small limits, so that inputs of a few KB reach them. `client_limits`: per-client rate
// limits too (a Router then allocates a 1 MiB table, which costs more than most inputs).
inline collector::Limits FuzzLimits(bool client_limits = false) {
  collector::Limits limits;
  limits.max_message_bytes = 2048;
  limits.max_request_bytes = 16 * 1024;
  limits.max_batch_messages = 20;
  limits.max_header_bytes = 4096;
  limits.events_page_default = 5;
  limits.events_page_max = 50;
  if (client_limits) {
    // The client named by X-Forwarded-For when the peer is a proxy in 10/8.
    limits.client_rate_limit = 0.01;
    limits.client_rate_burst = 6;
    limits.trusted_proxies = {"10.0.0.0/8", "fd00::/8"};
  }
  return limits;
}

}  // namespace cartwatch::fuzz
