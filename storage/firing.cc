#include "storage/firing.h"

#include <cstdio>
#include <memory>

#include <rocksdb/iterator.h>

#include "profiles/codec.h"
#include "profiles/json_writer.h"
#include "rules/payload.h"
#include "storage/keys.h"
#include "storage/status.h"
#include "storage/timers.h"

namespace cartwatch::storage {

boost::system::result<rules::Marks*> Firing::MarksOf(const std::string& key) {
  auto it = marks_.find(key);
  if (it != marks_.end()) return &it->second;
  std::string value;
  rules::Marks marks;
  rocksdb::Status s = parts_.db->Get(rocksdb::ReadOptions(), parts_.timers, key, &value);
  if (s.ok()) {
    if (auto decoded = rules::DecodeMarks(value)) marks = std::move(*decoded);
  } else if (!s.IsNotFound()) {
    return FromStatus(s);
  }
  return &marks_.emplace(key, std::move(marks)).first->second;
}

const profiles::SiteThresholds* Firing::ThresholdsOf(std::string_view site_prefix) {
  auto it = thresholds_.find(site_prefix);
  if (it == thresholds_.end()) {
    std::optional<profiles::SiteThresholds> thresholds;
    std::string value;
    if (parts_.db->Get(rocksdb::ReadOptions(), parts_.meta, ThresholdsKey(site_prefix), &value).ok()) {
      if (auto decoded = profiles::DecodeThresholds(value)) thresholds = std::move(*decoded);
    }
    it = thresholds_.emplace(std::string(site_prefix), std::move(thresholds)).first;
  }
  return it->second ? &*it->second : nullptr;
}

boost::system::error_code Firing::Apply(const FireRequest& request, CommitRound& round,
                                        FireResult& result) {
  if (rules_.rules.empty()) return {};
  const std::string upper = TimerKeyLimit(request.now);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(parts_.db->NewIterator(ro, parts_.timers));
  for (it->Seek(rocksdb::Slice(&kTimerPrefix, 1)); it->Valid(); it->Next()) {
    if (result.due >= request.limit) {
      result.more = true;
      break;
    }
    const rocksdb::Slice raw_key = it->key();
    auto stored = DecodeTimer(rules_, raw_key.ToStringView(), it->value().ToStringView());
    ++result.due;
    // Whatever it decides, this timer is done.
    if (!stored) {
      round.batch->Delete(parts_.timers, raw_key);  // not of this layout
      ++result.stale;
      continue;
    }
    DeleteStoredTimer(*round.batch, parts_.timers, *stored);
    if (!stored->known_rule) {
      ++result.stale;  // its rule was removed from the config
      continue;
    }
    const SubjectKey& subject = stored->subject;
    // The person as the committed messages left them.
    std::optional<profiles::Customer> customer;
    std::optional<profiles::Visitor> visitor;
    if (subject.kind == rules::SubjectKind::kCustomer) {
      auto peeked = parts_.writer->PeekCustomer(subject.site_prefix, subject.id);
      if (!peeked) return peeked.error();
      customer = std::move(*peeked);
      if (customer && !customer->anonymous_ids.empty()) {
        // Their latest device: the pages they saw last.
        auto device = parts_.writer->PeekVisitor(subject.site_prefix, customer->anonymous_ids.back());
        if (!device) return device.error();
        visitor = std::move(*device);
      }
    } else {
      auto peeked = parts_.writer->PeekVisitor(subject.site_prefix, subject.id);
      if (!peeked) return peeked.error();
      visitor = std::move(*peeked);
    }
    if (subject.kind == rules::SubjectKind::kCustomer ? !customer : !visitor) {
      ++result.stale;  // erased
      continue;
    }
    const rules::Person person =
        rules::PersonOf(customer ? &*customer : nullptr, visitor ? &*visitor : nullptr);
    std::optional<profiles::CustomerStats> stats;
    std::optional<profiles::Score> score;
    if (customer) {
      stats = profiles::ComputeStats(*customer, request.now, options_);
      if (const profiles::SiteThresholds* t = ThresholdsOf(subject.site_prefix)) {
        if (auto values = profiles::RfmValuesOf(*stats, request.now)) {
          score = profiles::ScoreCustomer(*values, *t);
        }
      }
    }
    const std::string marks_key = MarksKey(subject);
    auto marks = MarksOf(marks_key);
    if (!marks) return marks.error();
    // The person's own time zone and language (their newest context), else the site's.
    const std::string_view site_name = subject.site_prefix.substr(1);
    const rules::SiteSettings& site = rules_.Site(site_name);
    auto own = [&](std::string profiles::Customer::*of_customer,
                   std::string profiles::Visitor::*of_visitor, const std::string& fallback) -> const std::string& {
      if (customer && !((*customer).*of_customer).empty()) return (*customer).*of_customer;
      if (visitor && !((*visitor).*of_visitor).empty()) return (*visitor).*of_visitor;
      return fallback;
    };
    const std::string& timezone =
        own(&profiles::Customer::timezone, &profiles::Visitor::timezone, site.timezone);
    const std::string& locale =
        own(&profiles::Customer::locale, &profiles::Visitor::locale, site.locale);
    const int offset_minutes = zones_.Get(timezone).OffsetSeconds(request.now) / 60;
    const rules::Decision d = rules::Fire(rules_, stored->timer, person, stats ? &*stats : nullptr,
                                          score, **marks, request.now, offset_minutes);
    if (d.next) PutTimer(*round.batch, parts_.timers, rules_, *d.next, subject);
    switch (d.outcome) {
      case rules::Decision::Outcome::kStale: ++result.stale; continue;
      case rules::Decision::Outcome::kNotMatched: ++result.not_matched; continue;
      case rules::Decision::Outcome::kHeld: ++result.held; continue;
      case rules::Decision::Outcome::kFired: break;
    }
    ++result.fired;
    if (result.fired_by_rule.size() < rules_.rules.size()) result.fired_by_rule.resize(rules_.rules.size());
    ++result.fired_by_rule[stored->timer.rule];
    const rules::Rule& rule = rules_.rules[stored->timer.rule];
    const std::string data = rules::ActionData(rules::ActionContext{
        .site = site_name,
        .rule = &rule,
        .timer = stored->timer,
        .person = person,
        .stats = stats ? &*stats : nullptr,
        .score = score,
        .now = request.now,
        .cart_url = site.cart_url});
    for (const rules::Action& action : d.actions) {
      OutboxEntry entry{.type = std::string(rules::ActionEvent(action.type)),
                        .status = action.skipped ? DeliveryStatus::kSkipped : DeliveryStatus::kPending,
                        .reason = action.reason,
                        .rule = rule.name,
                        .stage = stored->timer.stage,
                        .created_at = request.now,
                        .data = data};
      if (action.type == rules::ActionType::kEmail) {
        // The e-mail as sent: to, subject and HTML rendered from the template in the
        // person's language, then the data it was rendered with.
        std::optional<rules::EmailTemplates::Email> email;
        if (templates_ != nullptr) {
          email = templates_->Render(action.email_template, locale, site.locale, data);
        }
        if (!email && !action.skipped) {
          entry.status = DeliveryStatus::kSkipped;
          entry.reason = "no_template";
        }
        std::string out;
        profiles::JsonWriter j(out);
        j.BeginObject();
        j.Key("to");
        j.Text(person.traits().email.value);
        j.Key("template");
        j.String(action.email_template);
        j.Key("locale");  // the person's (or the site's) locale, and the template's language
        j.Text(locale);
        j.Key("language");
        j.Text(email ? std::string_view(email->language) : std::string_view());
        j.Key("subject");
        j.Text(email ? std::string_view(email->subject) : std::string_view());
        j.Key("html");
        j.Text(email ? std::string_view(email->html) : std::string_view());
        j.Key("action");
        j.Raw(data);
        j.EndObject();
        entry.data = std::move(out);
      }
      const bool is_email = action.type == rules::ActionType::kEmail;
      if (is_email) ++result.emails;
      if (entry.status == DeliveryStatus::kSkipped) {
        ++result.skipped;
        if (is_email) ++result.emails_skipped;
      }
      parts_.outbox->Add(round, subject, entry);
      ++result.actions;
    }
    if (d.marks != **marks) {
      **marks = d.marks;
      round.batch->Put(parts_.timers, marks_key, rules::EncodeMarks(d.marks));
    }
  }
  return FromStatus(it->status());
}

void Firing::End(const CommitRound& round, bool written) {
  marks_.clear();
  thresholds_.clear();
}

}  // namespace cartwatch::storage
