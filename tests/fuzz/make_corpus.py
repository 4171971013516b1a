#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/<harness>/): a few
realistic inputs each, small files. Rerun after changing it; scripts/fuzz.sh only reads the
corpus (it fuzzes a copy).

    python3 tests/fuzz/make_corpus.py
"""
import base64
import gzip
import io
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0: the same bytes on every run.
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def write(harness: str, name: str, data) -> None:
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dumps(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


# ---- Segment messages and bodies -------------------------------------------------------
TRACK = {"type": "track", "anonymousId": "a-1", "event": "Product Added", "messageId": "m1",
         "timestamp": "2026-11-23T12:00:00.123Z",
         "properties": {"product_id": "sku-1", "sku": "S-1", "name": "Shoe", "price": 19.9,
                        "quantity": 1, "category": "Shoes", "brand": "Acme"},
         "context": {"page": {"url": "https://shop.example/p/1?utm_source=news"},
                     "userAgent": "Mozilla/5.0"}}
PAGE = {"type": "page", "anonymousId": "a-1", "name": "Home",
        "properties": {"url": "https://shop.example/", "title": "Home", "referrer": ""},
        "context": {"campaign": {"source": "news", "medium": "email", "name": "w47"}}}
IDENTIFY = {"type": "identify", "anonymousId": "a-1", "userId": "ada",
            "traits": {"email": "ada@example.com", "firstName": "Ada", "last_name": "Lovelace",
                       "phone": "+44 20 0000"},
            "timestamp": "2026-11-23T12:00:01+01:00"}
ORDER = {"type": "track", "userId": "ada", "event": "Order Completed",
         "properties": {"order_id": "o-1", "total": "39.80", "revenue": 35, "currency": "eur",
                        "products": [{"product_id": "sku-1", "price": 19.9, "quantity": 2},
                                     {"sku": 7, "price": "5", "quantity": 1.6}]}}
CART = {"type": "track", "anonymousId": "a-2", "event": "Cart Viewed",
        "properties": {"products": [{"product_id": "sku-2", "price": 1, "quantity": 3}]}}
REMOVED = {"type": "track", "anonymousId": "a-1", "event": "Product Removed",
           "properties": {"product_id": "sku-1", "quantity": 1}}
CHECKOUT = {"type": "track", "anonymousId": "a-1", "event": "Checkout Started",
            "properties": {"value": 19.9}}
SCREEN = {"type": "screen", "userId": 42, "name": "Cart", "sentAt": "2026-11-23T12:00:05Z"}
ALIAS = {"type": "alias", "previousId": "a-1", "userId": "ada"}
GROUP = {"type": "group", "userId": "ada", "groupId": "g-1", "traits": {"name": "Acme"}}

BATCH = {"batch": [PAGE, TRACK, IDENTIFY, ORDER], "sentAt": "2026-11-23T12:00:05Z",
         "writeKey": "wk", "context": {"library": {"name": "analytics-node", "version": "1"}}}
BATCH_ALL = {"batch": [PAGE, TRACK, REMOVED, CART, CHECKOUT, IDENTIFY, ORDER, SCREEN, ALIAS,
                       GROUP]}
BATCH_PARTIAL = {"batch": [TRACK, {"type": "track", "anonymousId": "a-1"}, 3,
                           {"type": "nope", "userId": "u"}, {"type": "page"},
                           {"type": "alias", "userId": "u"},
                           {"type": "page", "userId": "u", "timestamp": "yesterday"}],
                 "context": {"ip": "1.2.3.4"}}
ODD = ('{"batch":[{"type":"track","anonymousId":"a\\u00e9\\ud83d\\ude00","event":"E",'
       '"messageId":"","writeKey":"x","type":"track","receivedAt":1,"originalTimestamp":"x",'
       '"properties":{"big":1e308,"neg":-0.0,"deep":[[[[{"a":null}]]]],"n":123456789012345678901234567890}}],'
       '"sentAt":null,"context":{"a":1}}')

SINGLES = {"track": TRACK, "page": PAGE, "identify": IDENTIFY, "screen": SCREEN,
           "alias": ALIAS, "group": GROUP}


def ingest_corpus() -> None:
    write("fuzz_ingest", "batch.json", dumps(BATCH))
    write("fuzz_ingest", "batch_all_types.json", dumps(BATCH_ALL))
    write("fuzz_ingest", "batch_partial.json", dumps(BATCH_PARTIAL))
    write("fuzz_ingest", "batch_odd.json", ODD)
    write("fuzz_ingest", "batch_pretty.json", json.dumps(BATCH, indent=2))
    for route, msg in SINGLES.items():
        write("fuzz_ingest", f"single_{route}.json", dumps(msg))
    write("fuzz_ingest", "sdk_js_beacon.json",
          dumps({"batch": [PAGE, CART], "sentAt": "2026-11-23T12:00:05.000Z",
                 "writeKey": "wk"}))
    write("fuzz_ingest", "not_object.json", '[1,2,{"a":"b"}]')
    write("fuzz_ingest", "empty_batch.json", '{"batch":[]}')


# ---- HTTP -------------------------------------------------------------------------------
BASIC = "Basic " + base64.b64encode(b"wk:").decode()


def request(method: str, target: str, body: bytes = b"", headers=(), version="1.1",
            length=True, host=True) -> bytes:
    lines = [f"{method} {target} HTTP/{version}"] + (["Host: collector.example"] if host else [])
    lines += list(headers)
    if length and (body or method == "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, sizes) -> bytes:
    out, at = b"", 0
    for n in sizes:
        part = body[at:at + n]
        at += n
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    if at < len(body):
        out += f"{len(body) - at:x};ext=1\r\n".encode() + body[at:] + b"\r\n"
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


def http_corpus() -> None:
    body = dumps(BATCH).encode()
    post = ["Authorization: " + BASIC, "Content-Type: application/json"]
    write("fuzz_http", "batch.http", request("POST", "/v1/batch", body, post))
    write("fuzz_http", "batch_gzip.http",
          request("POST", "/v1/batch", gz(body), post + ["Content-Encoding: gzip"]))
    write("fuzz_http", "batch_chunked.http",
          request("POST", "/v1/batch", chunked(body, [10, 100]),
                  post + ["Transfer-Encoding: chunked"], length=False))
    write("fuzz_http", "track_writekey_in_body.http",
          request("POST", "/v1/track", dumps(dict(TRACK, writeKey="wk")).encode(),
                  ["Content-Type: text/plain;charset=UTF-8", "Origin: https://shop.example"]))
    # Pipelined: store, read back as customer and visitor, export, erase, read again.
    sk = ["Authorization: Bearer sk"]
    write("fuzz_http", "pipelined_store_read_erase.http",
          request("POST", "/v1/batch", dumps(BATCH_ALL).encode(), post)
          + request("GET", "/v1/customers/ada", headers=sk)
          + request("GET", "/v1/visitors/a-1", headers=sk + ["Origin: https://shop.example"])
          + request("GET", "/v1/events?limit=3", headers=sk)
          + request("GET", "/v1/events?after=0000000000000002&limit=50", headers=sk)
          + request("DELETE", "/v1/customers/ada", headers=sk)
          + request("GET", "/v1/customers/ada", headers=sk))
    write("fuzz_http", "pipelined_gzip_chunked.http",
          request("POST", "/v1/identify", chunked(gz(dumps(IDENTIFY).encode()), [5, 7]),
                  post + ["Content-Encoding: gzip", "Transfer-Encoding: chunked"], length=False)
          + request("GET", "/v1/visitors/a%2D1", headers=sk))
    pixel = base64.b64encode(dumps(dict(PAGE, writeKey="wk")).encode()).decode()
    write("fuzz_http", "pixel.http",
          request("GET", "/v1/pixel/page?data=" + pixel, headers=["Referer: https://shop.example/"]))
    write("fuzz_http", "preflight.http",
          request("OPTIONS", "/v1/batch",
                  headers=["Origin: https://shop.example",
                           "Access-Control-Request-Method: POST",
                           "Access-Control-Request-Headers: content-type, authorization"])
          + request("OPTIONS", "/v1/events", headers=["Origin: https://evil.example"]))
    write("fuzz_http", "rate_limited.http",
          request("POST", "/v1/page", dumps(PAGE).encode(),
                  ["Authorization: Basic " + base64.b64encode(b"wk2:").decode()])
          + request("POST", "/v1/page", dumps(PAGE).encode(),
                    ["Authorization: Basic " + base64.b64encode(b"wk2:").decode()]))
    write("fuzz_http", "broken_store.http",
          request("POST", "/v1/batch", body,
                  ["Authorization: Basic " + base64.b64encode(b"wk3:").decode()])
          + request("GET", "/v1/customers/ada", headers=["Authorization: Bearer sk3"])
          + request("GET", "/v1/events", headers=["Authorization: Bearer sk3"])
          + request("DELETE", "/v1/customers/ada", headers=["Authorization: Bearer sk3"]))
    write("fuzz_http", "errors.http",
          request("PUT", "/v1/batch", b"{}", post)
          + request("GET", "/nope")
          + request("POST", "/v1/batch", b"{}", ["Authorization: Basic !!!"])
          + request("POST", "/v1/batch", b"{\"batch\":[]}", post + ["Content-Encoding: br"])
          + request("POST", "/v1/batch", b"x", ["Authorization: " + BASIC, "Content-Type: text/html"])
          + request("GET", "/v1/pixel/track?data=%zz")
          + request("GET", "/v1/pixel/nope?data=e30=")
          + request("GET", "/healthz")
          + request("GET", "/readyz", version="1.0"))
    write("fuzz_http", "http10_close.http",
          request("POST", "/v1/screen", dumps(SCREEN).encode(), post, version="1.0"))
    # Money at the edge of what is accepted (|amount| < 1e14, quantity < 1e9), once each.
    big = {"batch": [
        {"type": "track", "userId": "u", "event": "Order Completed",
         "properties": {"order_id": "o-big", "total": 99999999999999, "currency": "USD",
                        "products": [{"product_id": "p", "price": 99999999999999,
                                      "quantity": 999999999, "category": "c", "brand": "b"}]}},
        {"type": "track", "userId": "u", "anonymousId": "a", "event": "Product Added",
         "properties": {"product_id": "p", "price": -99999999999999.99, "quantity": 999999999}}]}
    write("fuzz_http", "big_amounts.http",
          request("POST", "/v1/batch", dumps(big).encode(), post)
          + request("GET", "/v1/customers/u", headers=sk)
          + request("GET", "/v1/visitors/a", headers=sk))
    # The admin listener (every request also goes there): health, checkpoints (FakeStore
    # refuses a dir naming "exists" and fails one naming "fail").
    write("fuzz_http", "admin.http",
          request("GET", "/healthz") + request("GET", "/readyz")
          + request("POST", "/checkpoint?dir=/backup/2026-11-23")
          + request("POST", "/checkpoint?dir=%2Fbackup%2Fexists")
          + request("POST", "/checkpoint?dir=/fail") + request("POST", "/checkpoint")
          + request("GET", "/checkpoint?dir=/x"))
    # Per-client rate limits: from the trusted proxy (10.1.2.3), X-Forwarded-For names the
    # client; 7 requests of one client pass its burst of 6.
    fwd = b""
    for i, client in enumerate(["203.0.113.9"] * 7 + ["2001:db8::1, 10.0.0.1", "nonsense"]):
        fwd += request("POST", "/v1/track", dumps(dict(TRACK, messageId=f"f{i}")).encode(),
                       post + [f"X-Forwarded-For: {client}"])
    write("fuzz_http", "forwarded_for.http", fwd)
    # Framing: absolute-form target, Transfer-Encoding that is not only chunked, no Host.
    write("fuzz_http", "absolute_form.http",
          request("POST", "http://collector.example/v1/page", dumps(PAGE).encode(), post)
          + request("GET", "http://collector.example/v1/customers/ada?x=1", headers=sk))
    write("fuzz_http", "framing_te.http",
          request("POST", "/v1/batch", chunked(body, [64]),
                  post + ["Transfer-Encoding: gzip, chunked"], length=False))
    write("fuzz_http", "framing_no_host.http", request("GET", "/v1/events", headers=sk, host=False))
    write("fuzz_http", "expect_continue.http",
          request("POST", "/v1/group", dumps(GROUP).encode(), post + ["Expect: 100-continue"]))


# ---- Query ------------------------------------------------------------------------------
def query_corpus() -> None:
    write("fuzz_query", "ada", "ada\n0000000000000000\n10")
    write("fuzz_query", "visitor_slash", "v%2F2\n0000000000000003\n1")
    write("fuzz_query", "utf8", "%C3%BCser\nFFFFFFFFFFFFFFFF\n50")
    write("fuzz_query", "space", "x%20y\n00000000000000ff")
    write("fuzz_query", "bad_escape", "%zz\n%30000000000000001\n0")
    write("fuzz_query", "unknown", "nobody\n\n")
    write("fuzz_query", "cursor_upper", "a-1\n00000000000000A0\n51")


# ---- Gzip -------------------------------------------------------------------------------
def gzip_corpus() -> None:
    body = dumps(BATCH).encode()
    write("fuzz_gzip", "batch.gz", gz(body))
    write("fuzz_gzip", "two_members.gz", gz(b'{"batch":[') + gz(dumps(PAGE).encode() + b"]}"))
    write("fuzz_gzip", "empty.gz", gz(b""))
    write("fuzz_gzip", "bomb.gz", gz(b" " * 200000))  # inflates past the 64 KiB cap
    write("fuzz_gzip", "truncated.gz", gz(body)[:-6])
    write("fuzz_gzip", "trailing_garbage.gz", gz(body) + b"\x00\x00")
    write("fuzz_gzip", "stored_block.gz", gzip.compress(b"x" * 10, compresslevel=0, mtime=0))


# ---- Config -----------------------------------------------------------------------------
MINIMAL = '''[[sites]]
name = "shop"
write_key = "wk"
secret_key = "sk"
'''
FULL = '''[server]
listen = "[::]:8080"
admin_listen = "127.0.0.1:0"
io_threads = 2
read_timeout = "250ms"
shutdown_grace = "0"

[storage]
data_dir = "/tmp/x"
fsync = true
retention = "90d"
max_queued_mb = 1
state_write_delay = "0s"

[profiles]
session_timeout = "30m"
ltv_lifetime_years = 5

[limits]
max_message_bytes = 1024
max_request_bytes = 4096
events_page_default = 10
events_page_max = 10

[templates]
dir = "t"

[[sites]]
name = "shop"
write_key = "wk"
secret_key = "sk"
allowed_origins = ["https://shop.example", "http://localhost:8000"]
rate_limit = 0.5
rate_burst = 10

[[sites]]
name = "other"
write_key = "wk2"
secret_key = "sk2"
allowed_origins = ["*"]

[[rules]]
name = "abandoned"
kind = "abandoned_cart"
idle = "1h"
actions = ["task", "email"]
template = "cart"
cooldown = "7d"

[[rules]]
name = "dormant"
kind = "dormant_customer"
adaptive = true
factor = 2.5

[[webhooks]]
url = "https://crm.example/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
events = ["task.created"]
allow_private = false
'''


def config_corpus() -> None:
    shutil.copyfile(os.path.join(ROOT, "config", "cartwatch.toml"),
                    os.path.join(OUT, "fuzz_config", "cartwatch.toml"))
    write("fuzz_config", "minimal.toml", MINIMAL)
    write("fuzz_config", "full.toml", FULL)
    write("fuzz_config", "bad_key.toml", MINIMAL + "[storage]\nfsyncc = true\n")
    write("fuzz_config", "dup_site.toml", MINIMAL + MINIMAL)
    write("fuzz_config", "syntax.toml", "[server\nlisten = ")


def main() -> None:
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "fuzz_config"))
    ingest_corpus()
    http_corpus()
    query_corpus()
    gzip_corpus()
    config_corpus()


if __name__ == "__main__":
    main()
