// fuzz_config: app/config.h's LoadConfig on any file.
//
// The input is the config file's contents (written to an in-memory file, memfd, read back
// through /proc/self/fd). No environment variables or flags.
// What it proves, for any bytes: LoadConfig either throws ConfigError (with a message that
// names the file) or returns a config that keeps the promises docs/config.md makes; any
// other exception, crash, leak or undefined behaviour is a finding. The promises checked:
// at least one site; site names, write keys and secret keys non-empty and unique, names at
// most 255 bytes, no key both a write key and a secret key; rate limits finite, 0 or at
// least 0.001; events_page_default <= events_page_max; max_message_bytes <=
// max_request_bytes; every limit at least 1; connection timeouts in (0, 1 day].
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "app/config.h"
#include "fuzz_check.h"

namespace {

using namespace cartwatch;

// The in-memory file, made once per process.
const std::string& ConfigPath(int* fd) {
  static int file = memfd_create("cartwatch-fuzz.toml", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(file);
  if (file < 0) fuzz::Fail("memfd_create failed");
  *fd = file;
  return path;
}

void CheckConfig(const Config& c) {
  CARTWATCH_FUZZ_CHECK(!c.sites.empty(), "no site");
  std::set<std::string> names, keys;
  for (const collector::Site& s : c.sites) {
    CARTWATCH_FUZZ_CHECK(!s.name.empty() && s.name.size() <= 255, s.name);
    CARTWATCH_FUZZ_CHECK(!s.write_key.empty() && !s.secret_key.empty(), s.name);
    CARTWATCH_FUZZ_CHECK(names.insert(s.name).second, s.name);
    CARTWATCH_FUZZ_CHECK(keys.insert(s.write_key).second, s.write_key);
    CARTWATCH_FUZZ_CHECK(keys.insert(s.secret_key).second, s.secret_key);
    CARTWATCH_FUZZ_CHECK(std::isfinite(s.rate_limit) && s.rate_limit >= 0 &&
                             (s.rate_limit == 0 || s.rate_limit >= 0.001),
                         s.name);
    CARTWATCH_FUZZ_CHECK(std::isfinite(s.rate_burst) && s.rate_burst >= 0, s.name);
  }
  const collector::Limits& l = c.limits;
  CARTWATCH_FUZZ_CHECK(l.events_page_default <= l.events_page_max, "events_page");
  CARTWATCH_FUZZ_CHECK(l.max_message_bytes <= l.max_request_bytes, "max_message_bytes");
  CARTWATCH_FUZZ_CHECK(l.max_message_bytes >= 1 && l.max_request_bytes >= 1 &&
                           l.max_batch_messages >= 1 && l.max_header_bytes >= 1 &&
                           l.events_page_default >= 1,
                       "limits");
  for (auto t : {c.server.read_timeout, c.server.idle_timeout, c.server.write_timeout}) {
    CARTWATCH_FUZZ_CHECK(t.count() > 0 && t <= std::chrono::hours(24), "timeout");
  }
  CARTWATCH_FUZZ_CHECK(c.server.shutdown_grace.count() >= 0 &&
                           c.server.shutdown_grace <= std::chrono::hours(24),
                       "shutdown_grace");
  CARTWATCH_FUZZ_CHECK(c.storage.profiles.session_timeout.count() > 0, "session_timeout");
  for (const RuleConfig& r : c.rules) {
    CARTWATCH_FUZZ_CHECK(!r.name.empty() && !r.actions.empty(), r.name);
    CARTWATCH_FUZZ_CHECK(std::isfinite(r.factor) && r.factor > 0, r.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int fd;
  const std::string& path = ConfigPath(&fd);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    fuzz::Fail("writing the memfd failed");
  }
  try {
    Config config = LoadConfig(path, {}, {});
    CheckConfig(config);
  } catch (const ConfigError& e) {
    CARTWATCH_FUZZ_CHECK(std::string_view(e.what()).starts_with(path), e.what());
  }
  return 0;
}
