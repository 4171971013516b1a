#include "storage/info_log.h"

#include <sys/time.h>

#include <cstdarg>
#include <ctime>
#include <filesystem>

namespace cartwatch::storage {

std::shared_ptr<InfoLog> InfoLog::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path log = std::filesystem::path(dir) / "LOG";
  std::filesystem::rename(log, std::filesystem::path(dir) / "LOG.old", ec);
  std::FILE* file = std::fopen(log.c_str(), "we");
  if (file == nullptr) return nullptr;
  return std::shared_ptr<InfoLog>(new InfoLog(file));
}

InfoLog::~InfoLog() { CloseImpl().PermitUncheckedError(); }

rocksdb::Status InfoLog::CloseImpl() {
  std::lock_guard lock(mu_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  return rocksdb::Status::OK();
}

void InfoLog::Logv(const char* format, va_list ap) {
  timeval now{};
  gettimeofday(&now, nullptr);
  std::tm t{};
  localtime_r(&now.tv_sec, &t);
  std::lock_guard lock(mu_);
  if (file_ == nullptr) return;
  // Write errors (a full disk) are ignored: the line is lost, nothing else.
  std::fprintf(file_, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", t.tm_year + 1900, t.tm_mon + 1,
               t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(now.tv_usec));
  std::vfprintf(file_, format, ap);
  std::fputc('\n', file_);
  std::fflush(file_);
  std::clearerr(file_);
}

void InfoLog::Flush() {
  std::lock_guard lock(mu_);
  if (file_ != nullptr) std::fflush(file_);
}

}  // namespace cartwatch::storage
