#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "util/logfmt.h"

namespace cartwatch::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{2};

// "2026-12-07T15:54:56.123Z"
void AppendTimestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm t{};
  gmtime_r(&seconds, &t);
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                              t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                              static_cast<int>(ms % 1000));
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::optional<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return std::nullopt;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetOutput(int fd) { g_fd.store(fd, std::memory_order_relaxed); }

Line::Line(Level level, std::string_view msg) : enabled_(Enabled(level)) {
  if (!enabled_) return;
  text_.reserve(128);
  text_ += "ts=";
  AppendTimestamp(text_);
  text_ += " level=";
  text_ += LevelName(level);
  text_ += " msg=";
  text_ += util::LogfmtValue(msg);
}

Line::~Line() {
  if (!enabled_) return;
  text_.push_back('\n');
  // One write(2) a line; the lock keeps a line that the pipe takes in parts (longer than
  // PIPE_BUF) whole against other threads' lines.
  static std::mutex write_mu;
  std::lock_guard lock(write_mu);
  const int fd = g_fd.load(std::memory_order_relaxed);
  const char* p = text_.data();
  std::size_t left = text_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report it
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void Line::AppendKey(std::string_view key) {
  text_.push_back(' ');
  text_ += key;
  text_.push_back('=');
}

Line& Line::Add(std::string_view key, std::string_view value) {
  if (enabled_) {
    AppendKey(key);
    text_ += util::LogfmtValue(value);
  }
  return *this;
}

Line& Line::AddSigned(std::string_view key, std::int64_t value) {
  if (enabled_) {
    AppendKey(key);
    text_ += std::to_string(value);
  }
  return *this;
}

Line& Line::AddUnsigned(std::string_view key, std::uint64_t value) {
  if (enabled_) {
    AppendKey(key);
    text_ += std::to_string(value);
  }
  return *this;
}

Line& Line::Add(std::string_view key, double value) {
  if (enabled_) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    AppendKey(key);
    if (ec == std::errc()) text_.append(buf, end);
  }
  return *this;
}

Line& Line::AddRaw(std::string_view pairs) {
  if (!enabled_ || pairs.empty()) return *this;
  text_.push_back(' ');
  text_ += pairs;
  return *this;
}

}  // namespace cartwatch::log
