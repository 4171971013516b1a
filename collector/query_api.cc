// The query API of the public listener (docs/api.md, "Query API"): GET /v1/events, GET
// /v1/deliveries and the customer and visitor documents (GET, and DELETE of a customer),
// with the site's secret key.
// Router member functions; the rest of the router is in router.cc.
#include "collector/router.h"

#include <charconv>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "collector/http_util.h"
#include "collector/site_state.h"
#include "profiles/codec.h"
#include "util/time.h"
#include "util/utf8.h"

namespace cartwatch::collector {

namespace net = boost::asio;

const Router::SiteState* Router::AuthenticateSecret(const Request& request,
                                                    const Respond& respond) const {
  const unsigned version = request.version();
  auto fail = [&](Response res) {
    AddCors(request, nullptr, res);
    res.set(http::field::www_authenticate, "Bearer");
    respond(std::move(res));
    return nullptr;
  };
  auto token = BearerToken(request[http::field::authorization]);
  if (!token) {
    return fail(ErrorResponse(401, "missing_secret_key",
                              "send the site's secret key as Authorization: Bearer <secret_key>",
                              version));
  }
  const SiteState* site = SiteBySecretKey(*token);
  if (!site) {
    return fail(ErrorResponse(401, "unknown_secret_key",
                              "the Bearer token is not the secret key of a configured site",
                              version));
  }
  return site;
}

void Router::HandleEvents(const Request& request, std::string_view query, Respond respond) {
  const unsigned version = request.version();
  auto fail = [&](Response res) {
    AddCors(request, nullptr, res);
    respond(std::move(res));
  };
  const SiteState* site = AuthenticateSecret(request, respond);
  if (!site) return;
  std::string after;
  std::size_t limit = limits_.events_page_default;
  auto params = ParseQuery(query);
  if (!params) {
    return fail(ErrorResponse(400, "invalid_query", "the query string is malformed", version));
  }
  for (auto& [key, value] : *params) {
    if (key == "after") {
      after = value;
    } else if (key == "limit") {
      const std::string& v = value;
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size() || n == 0 ||
          n > limits_.events_page_max) {
        return fail(ErrorResponse(400, "invalid_limit",
                                  "limit must be a whole number from 1 to " +
                                      std::to_string(limits_.events_page_max),
                                  version));
      }
      limit = n;
    }
  }
  Response res{http::status::ok, version};
  res.set(http::field::content_type, "application/x-ndjson");
  res.set(http::field::cache_control, "no-store");
  AddCors(request, site, res);
  net::post(exports_, [this, site, after = std::move(after), limit, res = std::move(res),
                       respond = std::move(respond)]() mutable {
    const unsigned version = res.version();
    // A page stops near 8 MiB so one export cannot hold a huge response in memory.
    auto page = store_.ReadEvents(site->site.name, after, limit, 8u << 20);
    if (!page) {
      Response error =
          page.error() == storage::make_error_code(storage::Errc::kInvalidArgument)
              ? ErrorResponse(400, "invalid_cursor",
                              "after= must be a cursor from a Cartwatch-Cursor header", version)
              : StorageErrorResponse(page.error(), version, StorageOp::kRead);
      for (auto& field : res) {
        if (field.name() != http::field::content_type) error.set(field.name(), field.value());
      }
      return respond(std::move(error));
    }
    res.set("Cartwatch-Cursor", page->next_cursor);
    std::size_t total = 0;
    for (const auto& e : page->events) total += e.json.size() + 1;
    res.body().reserve(total);
    for (const auto& e : page->events) {
      res.body() += e.json;
      res.body() += '\n';
    }
    respond(std::move(res));
  });
}

void Router::HandleDeliveries(const Request& request, std::string_view query, Respond respond) {
  const unsigned version = request.version();
  auto fail = [&](const SiteState* site, Response res) {
    AddCors(request, site, res);
    respond(std::move(res));
  };
  const SiteState* site = AuthenticateSecret(request, respond);
  if (!site) return;
  std::string after, status;
  std::size_t limit = limits_.events_page_default;
  auto params = ParseQuery(query);
  if (!params) {
    return fail(site, ErrorResponse(400, "invalid_query", "the query string is malformed", version));
  }
  for (auto& [key, value] : *params) {
    if (key == "after") {
      after = value;
    } else if (key == "status") {
      if (value != "pending" && value != "delivered" && value != "failed" && value != "dead" &&
          value != "skipped") {
        return fail(site, ErrorResponse(400, "invalid_status",
                                        "status must be pending, delivered, failed, dead or "
                                        "skipped",
                                        version));
      }
      status = value;
    } else if (key == "limit") {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n == 0 ||
          n > limits_.events_page_max) {
        return fail(site, ErrorResponse(400, "invalid_limit",
                                        "limit must be a whole number from 1 to " +
                                            std::to_string(limits_.events_page_max),
                                        version));
      }
      limit = n;
    }
  }
  Response res{http::status::ok, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  AddCors(request, site, res);
  net::post(exports_, [this, site, after = std::move(after), status = std::move(status), limit,
                       res = std::move(res), respond = std::move(respond)]() mutable {
    const unsigned version = res.version();
    auto page = store_.ReadDeliveries(site->site.name, status, after, limit);
    if (!page) {
      Response error =
          page.error() == storage::make_error_code(storage::Errc::kInvalidArgument)
              ? ErrorResponse(400, "invalid_cursor",
                              "after= must be the next_cursor of an earlier page (an action id)",
                              version)
              : StorageErrorResponse(page.error(), version, StorageOp::kRead);
      for (auto& field : res) {
        if (field.name() != http::field::content_type) error.set(field.name(), field.value());
      }
      return respond(std::move(error));
    }
    std::string& body = res.body();
    body = "{\"deliveries\":[";
    for (std::size_t i = 0; i < page->deliveries.size(); ++i) {
      if (i > 0) body.push_back(',');
      body += page->deliveries[i];
    }
    body += "],\"next_cursor\":";
    body += boost::json::serialize(boost::json::string(page->next_cursor));
    body += '}';
    res.set("Cartwatch-Cursor", page->next_cursor);
    respond(std::move(res));
  });
}

void Router::HandleDeliveryChange(const Request& request, storage::DeliveryChange::Kind kind,
                                  std::string_view name, Respond respond) {
  const unsigned version = request.version();
  const SiteState* site = AuthenticateSecret(request, respond);
  if (!site) return;
  const bool retry = kind == storage::DeliveryChange::Kind::kRetry;
  auto decoded = PercentDecode(name);
  if (!decoded) {
    Response res = ErrorResponse(400, "invalid_path",
                                 retry ? "the action id has a malformed %-escape"
                                       : "the endpoint name has a malformed %-escape",
                                 version);
    AddCors(request, site, res);
    return respond(std::move(res));
  }
  storage::DeliveryChange change{.kind = kind, .now = util::NowMs()};
  if (retry) {
    change.site = site->site.name;
    change.id = *decoded;
  } else {
    change.endpoint = *decoded;
  }
  Response base = JsonResponse(retry ? 202 : 200, "", version);
  AddCors(request, site, base);
  store_.ChangeDeliveries(
      std::move(change),
      [retry, name = *decoded, base = std::move(base), respond = std::move(respond),
       version](const storage::DeliveryResult& result) mutable {
        auto answer = [&](Response res) {
          CopyCors(base, res);
          respond(std::move(res));
        };
        if (result.error) return answer(StorageErrorResponse(result.error, version, StorageOp::kChange));
        if (retry && !result.found) {
          return answer(ErrorResponse(404, "delivery_not_found",
                                      "this site has no action \"" + name +
                                          "\" with webhook deliveries (ids look like "
                                          "act_000000000000002a: GET /v1/deliveries lists them)",
                                      version));
        }
        if (retry && result.retried == 0) {
          return answer(ErrorResponse(409, "not_retryable",
                                      "action \"" + name +
                                          "\" has no failed or dead delivery to retry (delivered, "
                                          "not yet attempted, or waiting for a disabled endpoint: "
                                          "POST /v1/endpoints/{name}/enable)",
                                      version));
        }
        if (!retry && !result.found) {
          return answer(ErrorResponse(404, "endpoint_not_found",
                                      "no webhook endpoint is named \"" + name +
                                          "\" ([[webhooks]] name in the config; the URL's host "
                                          "when no name is given)",
                                      version));
        }
        boost::json::object body{{"success", true}};
        if (retry) {
          body["id"] = name;
          body["retried"] = result.retried;
        } else {
          body["endpoint"] = name;
          body["was_disabled"] = result.was_disabled;
        }
        base.body() = boost::json::serialize(body);
        respond(std::move(base));
      });
}

void Router::HandleProfile(const Request& request, Profile kind, std::string_view raw_id,
                           Respond respond) {
  const unsigned version = request.version();
  const bool customer = kind == Profile::kCustomer;
  const std::string_view noun = customer ? "customer" : "visitor";
  auto fail = [&](const SiteState* site, Response res) {
    AddCors(request, site, res);
    respond(std::move(res));
  };
  const SiteState* site = AuthenticateSecret(request, respond);
  if (!site) return;
  std::optional<std::string> id = PercentDecode(raw_id);
  if (!id) {
    return fail(site, ErrorResponse(400, "invalid_path",
                                    "the " + std::string(noun) + " id has a malformed %-escape",
                                    version));
  }
  if (!util::IsValidUtf8(*id)) {
    return fail(site, ErrorResponse(400, "invalid_path",
                                    "the " + std::string(noun) +
                                        " id is not valid UTF-8 once %-decoded; ids are the "
                                        "userId or anonymousId strings of the messages",
                                    version));
  }
  if (id->empty() || raw_id.find('/') != std::string_view::npos) {
    return fail(site, ErrorResponse(404, "not_found",
                                    std::string("use /v1/") + (customer ? "customers" : "visitors") +
                                        "/{id}, with a '/' in the id sent as %2F",
                                    version));
  }

  if (request.method() == http::verb::delete_) {
    Response accepted = JsonResponse(202, "", version);
    AddCors(request, site, accepted);
    store_.EraseCustomer(
        site->site.name, *id,
        [id = *id, accepted = std::move(accepted), respond = std::move(respond),
         version](const storage::EraseResult& result) mutable {
          if (result.error) {
            Response res = StorageErrorResponse(result.error, version, StorageOp::kErase);
            CopyCors(accepted, res);
            return respond(std::move(res));
          }
          accepted.body() = boost::json::serialize(boost::json::object{
              {"success", true},
              {"user_id", id},
              {"found", result.found},
              {"visitors_erased", result.visitors},
          });
          respond(std::move(accepted));
        });
    return;
  }

  Response res{http::status::ok, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  AddCors(request, site, res);
  // Off the I/O threads: a record not in the block cache is read from disk.
  net::post(profile_reads_, [this, site, customer, noun, id = std::move(*id), res = std::move(res),
                       respond = std::move(respond)]() mutable {
    const unsigned version = res.version();
    auto error = [&](Response e) {
      for (auto& field : res) {
        if (field.name() != http::field::content_type) e.set(field.name(), field.value());
      }
      respond(std::move(e));
    };
    auto not_found = [&] {
      error(ErrorResponse(404, std::string(noun) + "_not_found",
                          "site " + site->site.name + " has no " + std::string(noun) + " \"" + id +
                              "\" (ids are case-sensitive; a " + std::string(noun) +
                              " exists once a message with that " +
                              (customer ? "userId" : "anonymousId") + " was accepted)",
                          version));
    };
    const std::string& name = site->site.name;
    if (customer) {
      auto found = store_.ReadCustomer(name, id);
      if (!found) return error(StorageErrorResponse(found.error(), version, StorageOp::kRead));
      if (!*found) return not_found();
      auto thresholds = store_.ReadThresholds(name);
      const profiles::SiteThresholds* t =
          thresholds && *thresholds ? &**thresholds : nullptr;
      res.body() =
          profiles::RenderCustomer(**found, t, util::NowMs(), store_.profile_options());
      // What the rule engine holds for them: pending timers and the latest actions.
      auto rules = store_.ReadPersonRules(name, id, 10);
      if (!rules) return error(StorageErrorResponse(rules.error(), version, StorageOp::kRead));
      std::string& body = res.body();
      body.pop_back();  // the document's closing brace
      body += ",\"rules\":{\"pending_timers\":[";
      for (std::size_t i = 0; i < rules->pending.size(); ++i) {
        const storage::PersonRules::Timer& timer = rules->pending[i];
        if (i > 0) body.push_back(',');
        boost::json::object o{{"rule", timer.rule}, {"stage", timer.stage}};
        std::string due;
        util::AppendIso8601(timer.due_at, due);
        o["due_at"] = due;
        body += boost::json::serialize(o);
      }
      body += "],\"last_actions\":[";
      for (std::size_t i = 0; i < rules->actions.size(); ++i) {
        if (i > 0) body.push_back(',');
        body += rules->actions[i];
      }
      body += "]}}";
      return respond(std::move(res));
    }
    auto visitor = store_.ReadVisitor(name, id);
    if (!visitor) return error(StorageErrorResponse(visitor.error(), version, StorageOp::kRead));
    if (!*visitor) return not_found();
    std::optional<profiles::Customer> linked;
    if (!(*visitor)->user_id.empty()) {
      // The cart is the linked customer's; when that cannot be read, the visitor's own.
      if (auto c = store_.ReadCustomer(name, (*visitor)->user_id); c && *c) linked = std::move(*c);
    }
    res.body() = profiles::RenderVisitor(**visitor, linked ? &*linked : nullptr);
    respond(std::move(res));
  });
}

}  // namespace cartwatch::collector
