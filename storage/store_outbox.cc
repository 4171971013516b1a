// RocksStore's entry points for the rule engine and webhook delivery (storage/rocks_store.h):
// firing timers, the outbox as the query API lists it, and the delivery queues and changes
// (storage/deliveries.h).
#include "storage/rocks_store.h"

#include <algorithm>
#include <future>

#include "profiles/profiles.h"
#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {

FireResult RocksStore::FireDueTimers(std::int64_t now, std::size_t limit) {
  std::promise<FireResult> done;
  FireRequest fire{.now = now,
                   .limit = std::max<std::size_t>(limit, 1),
                   .done = [&done](const FireResult& r) { done.set_value(r); }};
  if (!commits_.QueueAndCommit(Pending{std::move(fire)})) {
    return FireResult{.error = Errc::kClosed};
  }
  return done.get_future().get();
}

boost::system::result<DeliveryList> RocksStore::ReadDeliveries(std::string_view site,
                                                               std::string_view status,
                                                               std::string_view after,
                                                               std::size_t limit) {
  if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
  std::optional<DeliveryStatus> wanted;
  if (!status.empty()) {
    wanted = DeliveryStatusNamed(status);
    if (!wanted) return boost::system::error_code(Errc::kInvalidArgument);
  }
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  auto view = ViewOutbox();
  if (!view) return view.error();
  auto page = storage::ReadDeliveries(*view, SitePrefix(site), wanted, after, limit);
  if (!page) return page.error();
  return DeliveryList{std::move(page->deliveries), std::move(page->next_cursor)};
}

boost::system::result<PersonRules> RocksStore::ReadPersonRules(std::string_view site,
                                                               std::string_view user_id,
                                                               std::size_t max_actions) {
  auto customer = ReadCustomer(site, user_id);
  if (!customer) return customer.error();
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  const std::string prefix = SitePrefix(site);
  const SubjectKey person{prefix, rules::SubjectKind::kCustomer, user_id};
  auto pending = ReadPersonTimers(*db_, timers_cf_, person);
  if (!pending) return pending.error();
  PersonRules out;
  const util::EpochMs now = util::NowMs();
  std::optional<profiles::CustomerStats> stats;
  if (*customer) stats = profiles::ComputeStats(**customer, now, options_.profiles);
  for (const PendingTimer& p : *pending) {
    const auto index = options_.rules.IndexOf(p.timer.rule_id);
    if (index && *customer) {
      // Only what still applies: a cart changed since made the older timers pointless.
      const rules::Timer timer{*index, static_cast<std::uint8_t>(p.timer.stage), p.timer.due, p.version};
      if (rules::StaleReason(options_.rules.rules[*index], timer, rules::PersonOf(&**customer, nullptr),
                             stats ? &*stats : nullptr)) {
        continue;
      }
    }
    out.pending.push_back(PersonRules::Timer{
        .rule = index ? options_.rules.rules[*index].name : std::string(),
        .stage = p.timer.stage,
        .due_at = p.timer.due});
  }
  auto view = ViewOutbox();
  if (!view) return view.error();
  auto actions = ReadPersonDeliveries(*view, person, max_actions);
  if (!actions) return actions.error();
  out.actions = std::move(*actions);
  return out;
}

boost::system::result<OutboxView> RocksStore::ViewOutbox() {
  auto disabled = storage::ReadDisabledEndpoints(*db_, deliveries_cf_);
  if (!disabled) return disabled.error();
  return OutboxView{.db = db_.get(),
                    .outbox = outbox_cf_,
                    .deliveries = deliveries_cf_,
                    .disabled = std::move(*disabled)};
}

boost::system::result<std::vector<DueDelivery>> RocksStore::ReadDueDeliveries(
    std::string_view endpoint, std::int64_t now, std::size_t limit,
    const std::set<std::uint64_t>& skip, DueCursor* cursor) {
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  return storage::ReadDueDeliveries(*db_, deliveries_cf_, outbox_cf_, endpoint, now, limit, skip,
                                    cursor);
}

boost::system::result<DeliveryCounts> RocksStore::CountDeliveries(std::string_view endpoint,
                                                                  std::size_t cap) {
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  auto queued = storage::CountQueuedDeliveries(*db_, deliveries_cf_, endpoint, cap);
  if (!queued) return queued.error();
  return DeliveryCounts{.queued = *queued, .dead = deliveries_.DeadCount(endpoint)};
}

boost::system::result<std::vector<std::string>> RocksStore::ReadDisabledEndpoints() {
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  return storage::ReadDisabledEndpoints(*db_, deliveries_cf_);
}

void RocksStore::ChangeDeliveries(DeliveryChange change, DeliveryCallback done, bool own_thread) {
  if (change.kind == DeliveryChange::Kind::kRetry && change.site.size() > kMaxSiteName) {
    done(DeliveryResult{.error = Errc::kInvalidArgument});
    return;
  }
  if (own_thread) {
    DeliveryCallback refused = done;
    if (!commits_.QueueForLoop(Pending{DeliveryRequest{.change = std::move(change), .done = std::move(done)}})) {
      refused(DeliveryResult{.error = Errc::kClosed});
    }
    return;
  }
  Pending request{DeliveryRequest{.change = std::move(change), .done = std::move(done)}};
  if (!commits_.Queue(request)) {
    std::get<DeliveryRequest>(request.request).done(DeliveryResult{.error = Errc::kClosed});
  }
}

Store::RuleFigures RocksStore::GetRuleFigures() {
  auto load = [](const std::atomic<std::uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  return RuleFigures{.timers_armed = timers_.armed(),
                     .timers_pending = load(timers_pending_),
                     .timers_fired = load(rule_counts_.fired),
                     .timers_stale = load(rule_counts_.stale),
                     .timers_not_matched = load(rule_counts_.not_matched),
                     .timers_held = load(rule_counts_.held),
                     .tasks = {.pending = load(rule_counts_.tasks_pending),
                               .skipped = load(rule_counts_.tasks_skipped)},
                     .emails = {.pending = load(rule_counts_.emails_pending),
                                .skipped = load(rule_counts_.emails_skipped)},
                     .fired_by_rule = [&] {
                       std::vector<std::pair<std::string, std::uint64_t>> by_rule;
                       for (std::size_t i = 0; i < options_.rules.rules.size(); ++i) {
                         by_rule.emplace_back(options_.rules.rules[i].name,
                                              load(rule_counts_.fired_by_rule[i]));
                       }
                       return by_rule;
                     }()};
}

}  // namespace cartwatch::storage
