// The data of a rule engine action (docs/rules.md, "Payloads"): what a manager needs before
// calling, or what an e-mail shows. The same object is the webhook's `data` (for
// `email.triggered`, with `to`, the template and the rendered message beside it).
//
// Pure: everything it shows is given. Thread safety: none needed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profiles/profiles.h"
#include "rules/rules.h"

namespace cartwatch::rules {

struct ActionContext {
  std::string_view site{};
  const Rule* rule = nullptr;
  Timer timer{};
  Person person{};  // as of the firing; `visitor` (when set) is their latest device
  const profiles::CustomerStats* stats = nullptr;  // customers only
  std::optional<profiles::Score> score{};
  EpochMs now = 0;
  std::string_view cart_url{};  // the site's link to the cart; empty: a product's link
};

// The action's data as a JSON object.
std::string ActionData(const ActionContext& context);

// The line a CRM can show as the task's title, e.g. "Anna Petrova left a cart of 3 items
// (129.90 EUR), 2.1x their usual order".
std::string SummaryLine(const ActionContext& context);

}  // namespace cartwatch::rules
