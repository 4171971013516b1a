// HTTP integration tests of the query API: events export and paging, the visitor and
// customer documents, erase, deliveries and checkpoints (the fixture: http_fixture.h).
#include "tests/collector/http_fixture.h"

namespace cartwatch::collector::http_test {
namespace {

TEST_F(HttpTest, BatchIsStoredAndExported) {
  Response res = Post("/v1/batch", R"({"batch":[)" + kTrack +
                                       R"(,{"type":"page","name":"Home","userId":"u1","messageId":"m2"}]})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(json::parse(res.body()), json::parse(R"({"success":true})"));

  auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].at("messageId"), "m1");
  EXPECT_EQ(events[0].at("event"), "Product Added");
  EXPECT_EQ(events[0].at("properties").at("price").as_double(), 9.5);
  EXPECT_TRUE(events[0].contains("receivedAt"));
  EXPECT_TRUE(events[0].contains("timestamp"));
  EXPECT_EQ(events[1].at("messageId"), "m2");
  EXPECT_EQ(events[1].at("type"), "page");
}

TEST_F(HttpTest, EventsPagesWithCursor) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Post("/v1/track", R"({"event":"E","userId":"u","messageId":"p)" +
                                    std::to_string(i) + R"("})")
                  .result_int(),
              200);
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    Response res = Send(http::verb::get, "/v1/events?limit=2&after=" + cursor, "",
                        {{"Authorization", "Bearer sk"}});
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(res[http::field::content_type], "application/x-ndjson");
    cursor = std::string(res["Cartwatch-Cursor"]);
    if (res.body().empty()) break;
    std::istringstream lines(res.body());
    for (std::string line; std::getline(lines, line);) {
      seen.push_back(std::string(json::parse(line).at("messageId").as_string()));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
}

TEST_F(HttpTest, EventsNeedsTheSecretKeyAndValidParameters) {
  Response none = Send(http::verb::get, "/v1/events");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(ErrorCode(none), "missing_secret_key");
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  Response write_key = Send(http::verb::get, "/v1/events", "", {{"Authorization", "Bearer wk"}});
  EXPECT_EQ(write_key.result_int(), 401);
  EXPECT_EQ(ErrorCode(write_key), "unknown_secret_key");
  for (std::string q : {"limit=0", "limit=abc", "limit=10001", "limit=-1"}) {
    Response bad = Send(http::verb::get, "/v1/events?" + q, "", {{"Authorization", "Bearer sk"}});
    EXPECT_EQ(bad.result_int(), 400) << q;
    EXPECT_EQ(ErrorCode(bad), "invalid_limit");
  }
  Response cursor =
      Send(http::verb::get, "/v1/events?after=zzz", "", {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(cursor.result_int(), 400);
  EXPECT_EQ(ErrorCode(cursor), "invalid_cursor");
  // Each site sees only its own events.
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  EXPECT_EQ(Events("sk").size(), 1u);
  EXPECT_EQ(Events("sk2").size(), 0u);
}

TEST_F(HttpTest, CustomerAndVisitorDocumentsFollowTheEvents) {
  const std::string now = util::FormatIso8601(util::NowMs() - 60'000);
  Response res = Post("/v1/batch", R"({"batch":[
    {"type":"page","anonymousId":"a1","messageId":"q1","timestamp":")" + now + R"(",
     "context":{"page":{"url":"https://shop.example/?utm_source=news&utm_campaign=nov","title":"Home"}}},
    {"type":"track","event":"Product Added","anonymousId":"a1","messageId":"q2","timestamp":")" + now + R"(",
     "properties":{"product_id":"sock","price":4.5,"quantity":3,"currency":"EUR"}},
    {"type":"identify","anonymousId":"a1","userId":"ada","messageId":"q3","timestamp":")" + now + R"(",
     "traits":{"email":"ada@example.com","firstName":"Ada"}}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();

  Response customer = Send(http::verb::get, "/v1/customers/ada", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(customer.result_int(), 200) << customer.body();
  EXPECT_EQ(customer[http::field::content_type], "application/json");
  json::value c = json::parse(customer.body());
  EXPECT_EQ(c.at("user_id"), "ada");
  EXPECT_EQ(c.at("traits").at("email"), "ada@example.com");
  EXPECT_EQ(c.at("traits").at("first_name"), "Ada");
  EXPECT_EQ(c.at("anonymous_ids"), json::parse(R"(["a1"])"));
  EXPECT_EQ(c.at("cart").at("items"), 3);
  EXPECT_EQ(c.at("cart").at("value").as_double(), 13.5);
  EXPECT_EQ(c.at("cart").at("currency"), "EUR");
  EXPECT_EQ(c.at("stats").at("orders"), 0);
  EXPECT_EQ(c.at("stats").at("visits_last_30_days"), 1);

  Response visitor = Send(http::verb::get, "/v1/visitors/a1", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(visitor.result_int(), 200) << visitor.body();
  json::value v = json::parse(visitor.body());
  EXPECT_EQ(v.at("user_id"), "ada");
  EXPECT_EQ(v.at("cart").at("items"), 3);  // the linked customer's cart
  ASSERT_EQ(v.at("sessions").as_array().size(), 1u);
  EXPECT_EQ(v.at("sessions").at(0).at("utm").at("source"), "news");
  EXPECT_EQ(v.at("sessions").at(0).at("landing_page").at("title"), "Home");

  // Ids are percent-decoded path segments.
  ASSERT_EQ(Post("/v1/identify", R"({"userId":"a/b c","messageId":"q4"})").result_int(), 200);
  EXPECT_EQ(Send(http::verb::get, "/v1/customers/a%2Fb%20c", "", {{"Authorization", "Bearer sk"}})
                .result_int(),
            200);
}

TEST_F(HttpTest, ProfileApiErrors) {
  ASSERT_EQ(Post("/v1/track", kTrack).result_int(), 200);  // visitor a1 of site shop
  Response none = Send(http::verb::get, "/v1/visitors/a1");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(ErrorCode(none), "missing_secret_key");
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  Response wrong = Send(http::verb::delete_, "/v1/customers/u1", "", {{"Authorization", "Bearer wk"}});
  EXPECT_EQ(wrong.result_int(), 401);
  EXPECT_EQ(ErrorCode(wrong), "unknown_secret_key");

  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer sk"}};
  Response unknown = Send(http::verb::get, "/v1/customers/nobody", "", auth);
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown), "customer_not_found");
  Response unknown_visitor = Send(http::verb::get, "/v1/visitors/nobody", "", auth);
  EXPECT_EQ(unknown_visitor.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown_visitor), "visitor_not_found");
  // Another site's secret key sees none of this site's people.
  Response other = Send(http::verb::get, "/v1/visitors/a1", "", {{"Authorization", "Bearer sk2"}});
  EXPECT_EQ(other.result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/a1", "", auth).result_int(), 200);

  Response escape = Send(http::verb::get, "/v1/customers/a%zz", "", auth);
  EXPECT_EQ(escape.result_int(), 400);
  EXPECT_EQ(ErrorCode(escape), "invalid_path");
  for (std::string target : {"/v1/customers/", "/v1/customers/a/b", "/v1/visitors/"}) {
    Response missing = Send(http::verb::get, target, "", auth);
    EXPECT_EQ(missing.result_int(), 404) << target;
    EXPECT_EQ(ErrorCode(missing), "not_found") << target;
  }
  Response post = Send(http::verb::post, "/v1/customers/u1", "{}", auth);
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[http::field::allow], "GET, DELETE, OPTIONS");
  Response del = Send(http::verb::delete_, "/v1/visitors/a1", "", auth);
  EXPECT_EQ(del.result_int(), 405);
  EXPECT_EQ(del[http::field::allow], "GET, OPTIONS");
}

TEST_F(HttpTest, DeleteCustomerErasesTheProfileAndItsEvents) {
  ASSERT_EQ(Post("/v1/batch", R"({"batch":[
    {"type":"track","event":"Product Added","anonymousId":"eve-phone","messageId":"e1","properties":{"sku":"S"}},
    {"type":"identify","anonymousId":"eve-phone","userId":"eve","messageId":"e2","traits":{"email":"eve@example.com"}},
    {"type":"page","anonymousId":"bob-laptop","messageId":"b1"}]})")
                .result_int(),
            200);
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer sk"}};
  Response erased = Send(http::verb::delete_, "/v1/customers/eve", "", auth);
  ASSERT_EQ(erased.result_int(), 202) << erased.body();
  EXPECT_EQ(json::parse(erased.body()),
            json::parse(R"({"success":true,"user_id":"eve","found":true,"visitors_erased":1})"));
  EXPECT_EQ(Send(http::verb::get, "/v1/customers/eve", "", auth).result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/eve-phone", "", auth).result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/bob-laptop", "", auth).result_int(), 200);

  ASSERT_FALSE(store_->PurgeErasedEvents());  // what the store's own thread does at once
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("messageId"), "b1");

  // Erasing again is not an error: there is nothing left.
  Response again = Send(http::verb::delete_, "/v1/customers/eve", "", auth);
  EXPECT_EQ(again.result_int(), 202);
  EXPECT_EQ(json::parse(again.body()).at("found"), false);
}

// A pretty-printed body is exported one message per line.
TEST_F(HttpTest, PrettyPrintedBodyExportsOneJsonDocumentPerLine) {
  const std::string body =
      "{\n  \"batch\": [\n    {\n      \"type\": \"track\",\n      \"event\": \"Product Added\",\n"
      "      \"anonymousId\": \"pretty\",\n      \"properties\": {\n        \"name\": \"Shoe \\ud83d\"\n"
      "      }\n    },\n    {\"type\": \"page\", \"anonymousId\": \"pretty\",\n \"properties\": {\"p\":\n"
      + std::string(40, '[') + std::string(40, ']') + "}}\n  ]\n}\n";
  Response res = Post("/v1/batch", body);
  ASSERT_EQ(res.result_int(), 200) << res.body();
  json::object answer = json::parse(res.body()).as_object();
  EXPECT_EQ(answer.at("accepted").as_int64(), 1);
  EXPECT_EQ(answer.at("rejected").at(0).at("code").as_string(), "too_deep");
  Response page = Send(http::verb::get, "/v1/events", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(page.result_int(), 200);
  std::istringstream lines(page.body());
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    json::object e = json::parse(line).as_object();
    EXPECT_EQ(e.at("properties").at("name").as_string(), "Shoe \xEF\xBF\xBD");
  }
  EXPECT_EQ(n, 1u) << page.body();
}

// GET /v1/deliveries: the rule engine's actions, secret key only, by status, paged with the
// cursor; a bad status, limit or cursor is a 400 naming the parameter.
TEST_F(HttpTest, DeliveriesListsTheRuleEnginesActions) {
  rules::RuleSet set;
  set.rules.push_back(rules::Rule{
      .name = "abandoned",
      .kind = rules::Kind::kAbandonedCart,
      .stages = {rules::Stage{.after = 3600 * 1000, .task = true, .email = true, .email_template = "abandoned_cart"}}});
  store_options_.rules = set;
  store_options_.timer_tick = std::chrono::milliseconds(0);  // fired by the test
  RestartStoreAndServer();
  ASSERT_EQ(Post("/v1/batch", R"({"batch":[
      {"type":"identify","anonymousId":"d1","userId":"anna","messageId":"i1","traits":{"name":"Anna"}},
      {"type":"track","userId":"anna","event":"Product Added","messageId":"t1",
       "properties":{"product_id":"p1","name":"Boots","price":80,"quantity":1,"currency":"EUR"}}]})")
                .result_int(),
            200);
  const storage::FireResult fired = store_->FireDueTimers(util::NowMs() + 2 * 3600 * 1000, 1000);
  ASSERT_FALSE(fired.error);
  EXPECT_EQ(fired.actions, 2u);

  EXPECT_EQ(Send(http::verb::get, "/v1/deliveries").result_int(), 401);
  Response all = Send(http::verb::get, "/v1/deliveries", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(all.result_int(), 200) << all.body();
  EXPECT_EQ(all[http::field::content_type], "application/json");
  json::object page = json::parse(all.body()).as_object();
  const json::array& list = page.at("deliveries").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("type").as_string(), "task.created");
  EXPECT_EQ(list[0].at("status").as_string(), "pending");
  EXPECT_EQ(list[0].at("data").at("cart").at("lines").at(0).at("name").as_string(), "Boots");
  EXPECT_EQ(list[1].at("type").as_string(), "email.triggered");
  EXPECT_EQ(list[1].at("status").as_string(), "skipped");  // no e-mail address
  EXPECT_EQ(list[1].at("reason").as_string(), "no_email_address");
  EXPECT_EQ(page.at("next_cursor").as_string(), list[1].at("id").as_string());

  Response skipped = Send(http::verb::get, "/v1/deliveries?status=skipped", "",
                          {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(json::parse(skipped.body()).at("deliveries").as_array().size(), 1u);
  Response first = Send(http::verb::get, "/v1/deliveries?limit=1", "", {{"Authorization", "Bearer sk"}});
  const std::string cursor(json::parse(first.body()).at("next_cursor").as_string());
  Response rest = Send(http::verb::get, "/v1/deliveries?after=" + cursor, "",
                       {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(json::parse(rest.body()).at("deliveries").as_array().size(), 1u);

  Response bad_status = Send(http::verb::get, "/v1/deliveries?status=lost", "",
                             {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(bad_status.result_int(), 400);
  EXPECT_EQ(ErrorCode(bad_status), "invalid_status");
  EXPECT_EQ(ErrorCode(Send(http::verb::get, "/v1/deliveries?after=zzz", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_cursor");
  EXPECT_EQ(ErrorCode(Send(http::verb::get, "/v1/deliveries?limit=0", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_limit");
  // The delivery routes: secret key, POST only, JSON errors for unknown ids and names.
  const std::string task_id(list[0].at("id").as_string());
  EXPECT_EQ(Send(http::verb::post, "/v1/deliveries/" + task_id + "/retry").result_int(), 401);
  Response get_retry = Send(http::verb::get, "/v1/deliveries/" + task_id + "/retry", "",
                            {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(get_retry.result_int(), 405);
  EXPECT_EQ(get_retry[http::field::allow], "POST, OPTIONS");
  Response unknown = Send(http::verb::post, "/v1/deliveries/act_00000000000000ff/retry", "",
                          {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown), "delivery_not_found");
  // No endpoint is configured: the task has no delivery to retry.
  EXPECT_EQ(ErrorCode(Send(http::verb::post, "/v1/deliveries/" + task_id + "/retry", "",
                           {{"Authorization", "Bearer sk"}})),
            "delivery_not_found");
  EXPECT_EQ(ErrorCode(Send(http::verb::post, "/v1/deliveries/act_%zz/retry", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_path");
  Response endpoint = Send(http::verb::post, "/v1/endpoints/crm/enable", "",
                           {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(endpoint.result_int(), 404);
  EXPECT_EQ(ErrorCode(endpoint), "endpoint_not_found");

  // Counted for Prometheus.
  const std::string metrics = Send(http::verb::get, "/metrics", "", {}, true).body();
  EXPECT_NE(metrics.find(R"(cartwatch_http_requests_total{code="404",route="endpoints"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(cartwatch_http_requests_total{code="404",route="deliveries"} 2)"),
            std::string::npos);
  EXPECT_NE(metrics.find("cartwatch_rule_timers_armed_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cartwatch_rule_timers_due_total{outcome=\"fired\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("cartwatch_rule_fired_total{rule=\"abandoned\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="pending",type="task.created"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="skipped",type="email.triggered"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="pending",type="email.triggered"} 0)"),
            std::string::npos) << metrics;
  // The customer's document shows them too.
  Response anna = Send(http::verb::get, "/v1/customers/anna", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(anna.result_int(), 200) << anna.body();
  json::object doc = json::parse(anna.body()).as_object();
  EXPECT_EQ(doc.at("user_id").as_string(), "anna");
  EXPECT_TRUE(doc.at("rules").at("pending_timers").as_array().empty());  // the one stage fired
  EXPECT_EQ(doc.at("rules").at("last_actions").as_array().size(), 2u);
  // Another site's secret sees its own outbox: empty.
  Response other = Send(http::verb::get, "/v1/deliveries", "", {{"Authorization", "Bearer sk2"}});
  EXPECT_TRUE(json::parse(other.body()).at("deliveries").as_array().empty());
}

// A backup: POST /checkpoint on the admin listener writes a consistent copy that opens as
// a data directory of its own with every message acknowledged before it, and none after.
TEST_F(HttpTest, CheckpointIsABackupThatOpensOnItsOwn) {
  const std::string before =
      R"({"batch":[{"type":"page","anonymousId":"a","messageId":"before-1"},)"
      R"({"type":"page","anonymousId":"a","messageId":"before-2"}]})";
  ASSERT_EQ(Post("/v1/batch", before).result_int(), 200);
  const fs::path copy = dir_.string() + "-checkpoint";
  Response made = Send(http::verb::post, "/checkpoint?dir=" + copy.string(), "", {}, true);
  ASSERT_EQ(made.result_int(), 200) << made.body();
  EXPECT_EQ(json::parse(made.body()).at("checkpoint").as_string(), copy.string());
  ASSERT_EQ(Post("/v1/batch",
                 R"({"batch":[{"type":"page","anonymousId":"a","messageId":"after-1"}]})")
                .result_int(),
            200);
  // Refused: the same directory again, a relative one, none, the wrong method.
  Response again = Send(http::verb::post, "/checkpoint?dir=" + copy.string(), "", {}, true);
  EXPECT_EQ(again.result_int(), 400);
  EXPECT_EQ(ErrorCode(again), "invalid_dir");
  EXPECT_EQ(Send(http::verb::post, "/checkpoint?dir=backup", "", {}, true).result_int(), 400);
  EXPECT_EQ(Send(http::verb::post, "/checkpoint", "", {}, true).result_int(), 400);
  Response not_utf8 = Send(http::verb::post, "/checkpoint?dir=/tmp/%FF", "", {}, true);
  EXPECT_EQ(not_utf8.result_int(), 400);
  EXPECT_TRUE(util::IsValidUtf8(not_utf8.body()));
  EXPECT_EQ(Send(http::verb::get, "/checkpoint?dir=/x", "", {}, true).result_int(), 405);

  storage::StoreOptions restored_options;
  restored_options.data_dir = copy.string();
  std::string error;
  auto restored = storage::Store::Open(restored_options, &error);
  ASSERT_TRUE(restored.has_value()) << error;
  auto page = (*restored)->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(page.has_value());
  std::vector<std::string> ids;
  for (const auto& e : page->events) {
    ids.emplace_back(json::parse(e.json).at("messageId").as_string());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"before-1", "before-2"}));
  (*restored)->Close();
  fs::remove_all(copy);
}

}  // namespace
}  // namespace cartwatch::collector::http_test
