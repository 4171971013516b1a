#include "storage/fault_fs.h"

#include <optional>

#include <rocksdb/file_system.h>

namespace cartwatch::storage {
namespace {

rocksdb::IOStatus NoSpace() { return rocksdb::IOStatus::NoSpace("injected: no space left on device"); }
rocksdb::IOStatus SyncFailed() { return rocksdb::IOStatus::IOError("injected: sync failed (EIO)"); }

class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                     std::shared_ptr<FaultInjection> faults)
      : FSWritableFileOwnerWrapper(std::move(file)), faults_(std::move(faults)) {}

  // A full disk takes the first half of what is appended, as write(2) does when it runs
  // out of room in the middle, then fails.
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return PartialAppend(data, options, dbg);
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return PartialAppend(data, options, dbg);
    return target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    return target()->PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    if (RefuseSync()) return SyncFailed();
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    if (RefuseSync()) return SyncFailed();
    return target()->Fsync(options, dbg);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (Refuse()) return NoSpace();
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  bool Refuse() {
    if (!faults_->disk_full()) return false;
    faults_->CountRefused();
    return true;
  }
  // Why a file may not be created now: the disk is full, or creating fails.
  std::optional<rocksdb::IOStatus> RefuseCreate() {
    if (Refuse()) return NoSpace();
    if (!faults_->create_failing()) return std::nullopt;
    faults_->CountRefused();
    return rocksdb::IOStatus::IOError("injected: creating a file failed (EIO)");
  }
  bool RefuseSync() {
    if (!faults_->sync_failing()) return false;
    faults_->CountRefused();
    return true;
  }
  rocksdb::IOStatus PartialAppend(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                                  rocksdb::IODebugContext* dbg) {
    if (data.size() > 1) {
      target()->Append(rocksdb::Slice(data.data(), data.size() / 2), options, dbg)
          .PermitUncheckedError();
      target()->Flush(options, dbg).PermitUncheckedError();
    }
    return NoSpace();
  }
  std::shared_ptr<FaultInjection> faults_;
};

class FaultyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem(std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<FaultInjection> faults)
      : FileSystemWrapper(std::move(base)), faults_(std::move(faults)) {}

  const char* Name() const override { return "CartwatchFaultInjection"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (auto refused = RefuseCreate()) return *refused;
    return Wrap(target()->NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (auto refused = RefuseCreate()) return *refused;
    return Wrap(target()->ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    if (auto refused = RefuseCreate()) return *refused;
    return Wrap(target()->ReuseWritableFile(name, old_name, options, result, dbg), result);
  }

 private:
  rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (s.ok()) *result = std::make_unique<FaultyWritableFile>(std::move(*result), faults_);
    return s;
  }
  bool Refuse() {
    if (!faults_->disk_full()) return false;
    faults_->CountRefused();
    return true;
  }
  // Why a file may not be created now: the disk is full, or creating fails.
  std::optional<rocksdb::IOStatus> RefuseCreate() {
    if (Refuse()) return NoSpace();
    if (!faults_->create_failing()) return std::nullopt;
    faults_->CountRefused();
    return rocksdb::IOStatus::IOError("injected: creating a file failed (EIO)");
  }
  bool RefuseSync() {
    if (!faults_->sync_failing()) return false;
    faults_->CountRefused();
    return true;
  }
  std::shared_ptr<FaultInjection> faults_;
};

}  // namespace

std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(std::shared_ptr<FaultInjection> faults) {
  return rocksdb::NewCompositeEnv(
      std::make_shared<FaultyFileSystem>(rocksdb::FileSystem::Default(), std::move(faults)));
}

}  // namespace cartwatch::storage
