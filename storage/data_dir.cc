#include "storage/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "util/time.h"

namespace cartwatch::storage {
namespace {

namespace fs = std::filesystem;

fs::path FailedWriteMark(const std::string& dir) { return fs::path(dir) / "CARTWATCH_WRITE_FAILED"; }

template <typename F>
void ForEachWalFile(const std::string& dir, F f) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".log") f(entry.path());
  }
}

}  // namespace

std::uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

void SyncWalFiles(const std::string& dir) {
  ForEachWalFile(dir, [](const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
  });
}

WalFiles WalFilesOf(const std::string& dir) {
  WalFiles files;
  ForEachWalFile(dir, [&files](const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return;
    files.bytes += static_cast<std::uint64_t>(st.st_size);
    files.newest_mtime_ms =
        std::max<std::int64_t>(files.newest_mtime_ms, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 +
                                                          st.st_mtim.tv_nsec / 1'000'000);
  });
  return files;
}

void MarkFailedWrite(const std::string& dir) {
  const int fd = ::open(FailedWriteMark(dir).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) ::close(fd);
}

bool HasFailedWriteMark(const std::string& dir) {
  std::error_code ignored;
  return fs::exists(FailedWriteMark(dir), ignored);
}

void ClearFailedWriteMark(const std::string& dir) {
  std::error_code ignored;
  fs::remove(FailedWriteMark(dir), ignored);
}

std::string WalDamageReport(const std::string& damage, std::uint64_t last_event_id,
                            const WalFiles& before_open) {
  const std::int64_t kept_ms = static_cast<std::int64_t>(last_event_id / 1000);
  std::string report = "the write-ahead log was damaged (" + damage +
                       "): every message before the damage was recovered, the last one "
                       "received at " +
                       (last_event_id > 0 ? util::FormatIso8601(kept_ms) : "(none)") +
                       ", and what the log (" + std::to_string(before_open.bytes) +
                       " bytes in all) held after the damage was dropped: messages "
                       "received after that";
  if (before_open.newest_mtime_ms > kept_ms) {
    report += " and up to " + util::FormatIso8601(before_open.newest_mtime_ms) +
              " (the log's last write)";
  }
  return report + " may be lost, acknowledged ones among them";
}

}  // namespace cartwatch::storage
