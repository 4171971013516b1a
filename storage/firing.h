// Firing the rule engine's due timers, inside the commit (docs/rules.md, "Exactly once"):
// a FireRequest of a round reads the timers due by its time (in due order, at most its
// limit), and for each asks rules::Fire with the person's records as the committed
// messages left them. Into the round's batch go the timer's removal, the next stage's timer
// (or the same timer moved past the quiet hours), the person's marks and the outbox
// entries: one atomic write, so each (rule, stage, version) acts exactly once, also across
// kill -9. A round that is not written leaves the timers where they were.
//
// Private to storage/. Used by the committing thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/system/error_code.hpp>
#include <rocksdb/db.h>

#include "rules/email.h"
#include "rules/rules.h"
#include "rules/timezone.h"
#include "storage/commit_stage.h"
#include "storage/outbox.h"
#include "storage/requests.h"
#include "storage/state.h"

namespace cartwatch::storage {

class Firing final : public CommitStage {
 public:
  // `rules` and `options` outlive it. `templates` renders the e-mails (null: none).
  Firing(const rules::RuleSet& rules, const profiles::Options& options,
         std::shared_ptr<const rules::EmailTemplates> templates)
      : rules_(rules), options_(options), templates_(std::move(templates)) {}

  struct Parts {
    rocksdb::DB* db = nullptr;
    rocksdb::ColumnFamilyHandle* timers = nullptr;
    rocksdb::ColumnFamilyHandle* meta = nullptr;  // the sites' thresholds
    StateWriter* writer = nullptr;
    Outbox* outbox = nullptr;
  };
  // After each open of the database.
  void Attach(const Parts& parts) { parts_ = parts; }

  // Fires what `request` asks for into the round's batch, counting into `result`.
  boost::system::error_code Apply(const FireRequest& request, CommitRound& round,
                                  FireResult& result);

  void End(const CommitRound& round, bool written) override;

 private:
  // The person's marks as this round left them (read from RocksDB first).
  boost::system::result<rules::Marks*> MarksOf(const std::string& key);
  // The site's thresholds, read once a round.
  const profiles::SiteThresholds* ThresholdsOf(std::string_view site_prefix);

  const rules::RuleSet& rules_;
  const profiles::Options& options_;
  const std::shared_ptr<const rules::EmailTemplates> templates_;
  rules::TimeZones zones_;  // the people's and the sites' time zones, loaded once
  Parts parts_;
  std::map<std::string, rules::Marks, std::less<>> marks_{};  // the round's
  std::map<std::string, std::optional<profiles::SiteThresholds>, std::less<>> thresholds_{};
};

}  // namespace cartwatch::storage
