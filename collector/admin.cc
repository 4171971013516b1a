// The admin listener (docs/api.md, "Admin"): /healthz, /readyz, /metrics and POST
// /checkpoint. Router member functions; the rest of the router is in router.cc.
#include "collector/router.h"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "collector/http_util.h"
#include "util/utf8.h"

namespace cartwatch::collector {

namespace net = boost::asio;

namespace {

RouteLabel AdminRouteLabel(std::string_view path) {
  if (path == "/healthz") return RouteLabel::kHealthz;
  if (path == "/readyz") return RouteLabel::kReadyz;
  if (path == "/metrics") return RouteLabel::kMetrics;
  if (path == "/checkpoint") return RouteLabel::kCheckpoint;
  return RouteLabel::kOther;
}

}  // namespace

void Router::HandleAdmin(const Request& request, Respond respond) {
  if (counters_) {
    std::string_view target = OriginFormTarget(request.target());
    respond = [counters = counters_.get(),
               route = AdminRouteLabel(target.substr(0, target.find('?'))),
               respond = std::move(respond)](Response&& res) {
      counters->Request(route, res.result_int());
      respond(std::move(res));
    };
  }
  HandleAdminRoute(request, std::move(respond));
}

void Router::HandleAdminRoute(const Request& request, Respond respond) {
  std::string_view target = OriginFormTarget(request.target());
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  const unsigned version = request.version();
  if (path == "/metrics" && metrics_ != nullptr) {
    if (request.method() != http::verb::get) {
      Response res = ErrorResponse(405, "method_not_allowed", "use GET", version);
      res.set(http::field::allow, "GET");
      return respond(std::move(res));
    }
    Response res{http::status::ok, version};
    res.set(http::field::content_type, metrics::kContentType);
    res.set(http::field::cache_control, "no-store");
    res.body() = metrics_->Exposition();
    return respond(std::move(res));
  }
  if (path != "/checkpoint") return respond(HandleHealth(request));
  if (request.method() != http::verb::post) {
    Response res = ErrorResponse(405, "method_not_allowed", "use POST", version);
    res.set(http::field::allow, "POST");
    return respond(std::move(res));
  }
  std::string dir;
  if (auto params = ParseQuery(query)) {
    for (auto& [key, value] : *params) {
      if (key == "dir") dir = std::move(value);
    }
  }
  if (dir.empty() || dir.front() != '/' || !util::IsValidUtf8(dir)) {
    return respond(ErrorResponse(400, "invalid_dir",
                                 "give the checkpoint's directory as ?dir=<absolute UTF-8 path, "
                                 "%-encoded>; it must not exist, its parent must",
                                 version));
  }
  // Off the I/O thread: the write-ahead log is copied, which takes a while when it is large.
  net::post(exports_, [this, dir = std::move(dir), version, respond = std::move(respond)] {
    if (auto ec = store_.Checkpoint(dir)) {
      if (ec == storage::make_error_code(storage::Errc::kInvalidArgument)) {
        return respond(ErrorResponse(400, "invalid_dir",
                                     "\"" + dir + "\" exists already; a checkpoint goes into a "
                                     "new directory",
                                     version));
      }
      return respond(ErrorResponse(500, "checkpoint_failed",
                                   "the checkpoint into \"" + dir + "\" failed: " + ec.message() +
                                       "; remove what it left there before retrying",
                                   version));
    }
    respond(JsonResponse(200, boost::json::serialize(boost::json::object{{"checkpoint", dir}}),
                         version));
  });
}

Response Router::HandleHealth(const Request& request) {
  std::string_view target = OriginFormTarget(request.target());
  std::string_view path = target.substr(0, target.find('?'));
  const unsigned version = request.version();
  if (path == "/healthz" || path == "/readyz") {
    if (request.method() != http::verb::get) {
      Response res = ErrorResponse(405, "method_not_allowed", "use GET", version);
      res.set(http::field::allow, "GET");
      return res;
    }
    if (path == "/healthz") return JsonResponse(200, R"({"status":"ok"})", version);
    const storage::Store::Health health = store_.GetHealth();
    boost::json::object body;
    if (health.writable) {
      const std::string message = "storage is not writable: " + health.writable.message();
      body["error"] = boost::json::object{{"code", "not_ready"}, {"message", message}};
      body["status"] = "not_ready";
    } else {
      body["status"] = "ready";
    }
    if (!health.write_failure.empty()) {
      body["write_failure"] = util::ToValidUtf8(health.write_failure);
    }
    if (!health.wal_recovery.empty()) {
      body["wal_recovery"] = util::ToValidUtf8(health.wal_recovery);
    }
    return JsonResponse(health.writable ? 503 : 200, boost::json::serialize(body), version);
  }
  return ErrorResponse(404, "not_found",
                       "no such endpoint: " + std::string(path) + " (admin serves /healthz, /metrics, "
                       "/readyz, POST /checkpoint)",
                       version);
}

}  // namespace cartwatch::collector
