"""Usage per key and stale keys (api.md §6.8, issue 18), against every deployment.

The usage of a key is counted from its api.request audit records: the tests wait (bounded) for the
audit writer, then compare the buckets with the records in the store. The "days ago" of the stale
keys are back-dated fixtures written straight into the store (created_at in api_keys, last_used_at
in api_key_usage), never a sleep. The store-down test comes last in the file (it stops the store).
"""

import datetime as dt
import time

import pytest

from looped_test.asserts import assert_error
from looped_test.procs import wait_until
from test_api_keys import create, keys_url, list_all, listing, person, send, token, use

CLASSES = ("2xx", "3xx", "4xx", "429", "5xx")
HOUR = 3600
DAY = 86400


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def usage(d, stack, key_id, query="", team="acme", user="owner"):
    r = person(d, stack, "GET", keys_url(team, key_id, "/usage") + query, user=user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"interval", "since", "until", "data"}, body
    return body


def check_buckets(body, step):
    """Every bucket of [since, until), oldest first, each step long, on UTC boundaries; requests
    is the sum of the classes (no status outside them here)."""
    since, until = parse(body["since"]), parse(body["until"])
    starts = [parse(b["start"]) for b in body["data"]]
    assert since % step == 0 and until % step == 0, body["since"]
    assert starts == [since + i * step for i in range(int((until - since) // step))], starts
    for b in body["data"]:
        assert set(b) == {"start", "requests", "by_status"}, b
        assert set(b["by_status"]) == set(CLASSES), b
        assert b["requests"] == sum(b["by_status"].values()), b
    return starts


def audit_counts(db, key_id, since, until, step, team="acme"):
    """{bucket start: {class: n}} of the key's api.request records in the store."""
    out = {}
    for rec in db.audit.find({"team_id": team, "key_id": key_id, "action": "api.request",
                              "at": {"$gte": dt.datetime.fromtimestamp(since, dt.timezone.utc),
                                     "$lt": dt.datetime.fromtimestamp(until, dt.timezone.utc)}},
                             {"at": 1, "status": 1}):
        at = rec["at"].replace(tzinfo=dt.timezone.utc).timestamp()
        start = at - at % step
        s = rec["status"]
        cls = "429" if s == 429 else f"{s // 100}xx"
        out.setdefault(start, dict.fromkeys(CLASSES, 0))[cls] += 1
    return out


def as_counts(body):
    return {parse(b["start"]): b["by_status"] for b in body["data"] if b["requests"]}


# ---------------------------------------------------------------------------------------------
# usage


@pytest.fixture(scope="module")
def used_key(deployment, stack):
    """A restricted key (customers:read) used 37 times: 30 × 200, 5 × 403, 2 × 404; with the
    wall-clock range of the requests."""
    d = deployment
    k = create(d, stack, permission="restricted", scopes=["customers:read"])
    t0 = time.time()
    got = []
    for i in range(30):
        got.append(use(d, k["key"], "/v1/customers?limit=1").status_code)
    for i in range(5):
        got.append(use(d, k["key"], "/v1/invoices").status_code)
    for i in range(2):
        got.append(use(d, k["key"], f"/v1/customers/cus_nothing{i}").status_code)
    t1 = time.time()
    assert sorted(got) == [200] * 30 + [403] * 5 + [404] * 2, got
    return k, t0, t1


def test_usage_counts_37_requests_by_class(deployment, stack, mongo, used_key):
    d, (_, db) = deployment, mongo
    k, t0, t1 = used_key

    def all_in():
        body = usage(d, stack, k["id"])
        return body if sum(b["requests"] for b in body["data"]) >= 37 else None
    body = wait_until(all_in, 10, "the 37 requests in the key's usage (the audit written)")
    assert body["interval"] == "hour"
    starts = check_buckets(body, HOUR)
    assert len(starts) == 24, "the last 24 hours by default"
    assert starts[-1] <= time.time() < starts[-1] + HOUR, "the current hour last"
    total = dict.fromkeys(CLASSES, 0)
    for b in body["data"]:
        for c in CLASSES:
            total[c] += b["by_status"][c]
    assert total == {"2xx": 30, "3xx": 0, "4xx": 7, "429": 0, "5xx": 0}, total
    if int(t0 // HOUR) == int(t1 // HOUR):  # the requests did not straddle an hour's end
        last = body["data"][-1] if t1 >= starts[-1] else body["data"][-2]
        assert last["requests"] == 37 and last["by_status"]["2xx"] == 30, last
    # The counts are the audit's, bucket by bucket.
    assert as_counts(body) == audit_counts(db, k["id"], parse(body["since"]), parse(body["until"]),
                                           HOUR)
    # An admin may read it too; nothing about the read is audited (no read is).
    assert usage(d, stack, k["id"], user="admin") == body
    assert db.audit.count_documents({"key_id": k["id"], "actor.type": "user"}) == 1  # created


def test_usage_day_interval_and_explicit_range(deployment, stack, mongo, used_key):
    d, (_, db) = deployment, mongo
    k, t0, _ = used_key
    wait_until(lambda: sum(b["requests"] for b in usage(d, stack, k["id"])["data"]) >= 37, 10,
               "the audit of the 37 requests")
    now = time.time()
    body = usage(d, stack, k["id"], f"?interval=day&since={iso(now - 6 * DAY)}")
    assert body["interval"] == "day"
    starts = check_buckets(body, DAY)
    assert len(starts) == 7 and starts[-1] == now - now % DAY, starts
    assert sum(b["requests"] for b in body["data"]) == 37
    assert as_counts(body) == audit_counts(db, k["id"], starts[0], starts[-1] + DAY, DAY)
    assert len(usage(d, stack, k["id"], "?interval=day")["data"]) == 30, "30 days by default"

    # since rounded down, until rounded up; [since, until) holds the requests.
    a, b = t0 - 2 * HOUR - 1, now + 1
    body = usage(d, stack, k["id"], f"?since={iso(a)}&until={iso(b)}")
    starts = check_buckets(body, HOUR)
    assert parse(body["since"]) == a - a % HOUR and parse(body["until"]) == b - b % HOUR + HOUR
    assert sum(x["requests"] for x in body["data"]) == 37
    # A range that ends before the requests holds none of them: every bucket is there, zeros.
    body = usage(d, stack, k["id"], f"?since={iso(t0 - 30 * HOUR)}&until={iso(t0 - 20 * HOUR)}")
    assert len(check_buckets(body, HOUR)) in (10, 11)
    assert all(x["requests"] == 0 for x in body["data"])
    # The largest ranges are answered in full.
    assert len(usage(d, stack, k["id"], f"?since={iso(now - 2199 * HOUR)}")["data"]) == 2200
    assert len(usage(d, stack, k["id"], f"?interval=day&since={iso(now - 89 * DAY)}")["data"]) == 90


def test_usage_counts_back_dated_records(deployment, stack, mongo):
    """Records written straight into the audit (back-dated, of several statuses, and ones that
    must not count: another action, another key, another team) land in their UTC buckets."""
    d, (_, db) = deployment, mongo
    k = create(d, stack)
    other = create(d, stack)
    base = (time.time() // DAY - 3) * DAY  # midnight UTC three days ago

    def rec(at, status, key_id=k["id"], action="api.request", team="acme"):
        return {"at": dt.datetime.fromtimestamp(at, dt.timezone.utc), "team_id": team,
                "actor": {"type": "api_key", "id": key_id}, "key_id": key_id, "action": action,
                "method": "GET", "path": "/v1/customers", "status": status, "ip": "127.0.0.1",
                "user_agent": "test_usage", "request_id": token()}
    db.audit.insert_many([
        rec(base, 200), rec(base + 59, 201), rec(base + HOUR - 0.001, 304),     # hour 0
        rec(base + HOUR, 429), rec(base + HOUR + 1, 429), rec(base + HOUR + 2, 500),  # hour 1
        rec(base + 5 * HOUR, 401),                                              # hour 5
        rec(base + DAY + 1, 403),                                               # the next day
        rec(base + 2, 200, action="api_key.updated"),
        rec(base + 3, 200, key_id=other["id"]),
        rec(base + 4, 200, team="globex"),
    ])
    body = usage(d, stack, k["id"], f"?since={iso(base)}&until={iso(base + 6 * HOUR)}")
    check_buckets(body, HOUR)
    assert [x["requests"] for x in body["data"]] == [3, 3, 0, 0, 0, 1]
    assert body["data"][0]["by_status"] == {"2xx": 2, "3xx": 1, "4xx": 0, "429": 0, "5xx": 0}
    assert body["data"][1]["by_status"] == {"2xx": 0, "3xx": 0, "4xx": 0, "429": 2, "5xx": 1}
    assert body["data"][5]["by_status"]["4xx"] == 1
    body = usage(d, stack, k["id"], f"?interval=day&since={iso(base)}&until={iso(base + 2 * DAY)}")
    assert [x["requests"] for x in body["data"]] == [7, 1]
    assert as_counts(body) == audit_counts(db, k["id"], base, base + 2 * DAY, DAY)


@pytest.mark.parametrize("query,field", [
    ("?interval=week", "interval"),
    ("?interval=", "interval"),
    ("?interval=HOUR", "interval"),
    ("?since=yesterday", "since"),
    ("?since=2026-12-06", "since"),
    ("?until=2026-02-30T00:00:00Z", "until"),
    ("?until=", "until"),
    ("?since=2026-12-06T10:00:00Z&until=2026-12-06T10:00:00Z", "until"),
    ("?since=2026-12-07T00:00:00Z&until=2026-12-06T00:00:00Z", "until"),
    ("?since=2026-09-09T07:59:59Z&until=2026-12-10T00:00:00Z", "since"),  # 2,201 hours
    ("?interval=day&since=2026-09-07T23:00:00Z&until=2026-12-07T00:00:00Z", "since"),  # 91 days
], ids=["interval", "interval-empty", "interval-case", "since-text", "since-date", "until-feb30",
        "until-empty", "empty-range", "reversed", "hours-2201", "days-91"])
def test_usage_validation(deployment, stack, used_key, query, field):
    k = used_key[0]
    err = assert_error(person(deployment, stack, "GET", keys_url("acme", k["id"], "/usage") + query),
                       400, "validation_failed")
    assert err["details"][0]["field"] == field, err


def test_usage_not_found_forbidden_unknown_parameter(deployment, stack, used_key):
    d, k = deployment, used_key[0]
    g = create(d, stack, user="outsider", team="globex")
    assert_error(person(d, stack, "GET", keys_url("acme", g["id"], "/usage")), 404, "not_found")
    assert_error(person(d, stack, "GET", keys_url("acme", "key_doesnotexist000000000", "/usage")),
                 404, "not_found")
    assert_error(person(d, stack, "GET", keys_url("nope", k["id"], "/usage")), 404, "not_found")
    assert usage(d, stack, g["id"], team="globex", user="outsider")["data"]  # its own team: fine
    assert_error(person(d, stack, "GET", keys_url("acme", k["id"], "/usage"), user="member"),
                 403, "forbidden")
    # No user (the web server asks for one), and a key never authenticates it.
    assert send(d, "GET", keys_url("acme", k["id"], "/usage")).status_code == 401
    assert send(d, "GET", keys_url("acme", k["id"], "/usage"),
                headers={"X-API-Key": k["key"]}).status_code == 401
    assert_error(person(d, stack, "GET", keys_url("acme", k["id"], "/usage?bucket=hour")),
                 400, "unknown_parameter")
    r = person(d, stack, "POST", keys_url("acme", k["id"], "/usage"))
    assert_error(r, 405, "method_not_allowed")
    # A deleted key's records stay in the audit, but the key is gone: 404.
    gone = create(d, stack)
    assert person(d, stack, "DELETE", keys_url("acme", gone["id"])).status_code == 204
    assert_error(person(d, stack, "GET", keys_url("acme", gone["id"], "/usage")), 404, "not_found")


# ---------------------------------------------------------------------------------------------
# stale keys: ?unused_for_days=N


def test_unused_for_days(deployment, stack, mongo):
    d, (_, db) = deployment, mongo
    tok = token()
    now = dt.datetime.now(dt.timezone.utc)

    def key(name, created_days_ago=None, used_days_ago=None, **extra):
        k = create(d, stack, name=f"stale {tok} {name}", **extra)
        if created_days_ago is not None:
            db.api_keys.update_one({"_id": k["id"]},
                                   {"$set": {"created_at": now - dt.timedelta(days=created_days_ago)}})
        if used_days_ago is not None:
            db.api_key_usage.update_one(
                {"_id": k["id"]},
                {"$set": {"last_used_at": now - dt.timedelta(days=used_days_ago),
                          "last_used_ip": "203.0.113.7"}}, upsert=True)
        return k["id"]

    never = key("never used", created_days_ago=100)           # stale since 100 days
    old_use = key("used long ago", created_days_ago=200, used_days_ago=95)
    recent = key("used recently", created_days_ago=200, used_days_ago=10)
    fresh = key("made today")                                  # never used, made now
    revoked = key("revoked", created_days_ago=300)
    assert person(d, stack, "POST", keys_url("acme", revoked, "/revoke")).status_code == 200
    expired = key("expired", created_days_ago=300,
                  expires_at=(now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    db.api_keys.update_one({"_id": expired},
                           {"$set": {"expires_at": now - dt.timedelta(days=1)}})
    rotated_soon = key("expires later", created_days_ago=120,
                       expires_at=(now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def ids(query):
        return [x["id"] for x in list_all(d, stack, f"?q={tok}&{query}")]

    # Stalest first: by last use, or creation if never used.
    assert ids("unused_for_days=90") == [rotated_soon, never, old_use]
    assert ids("unused_for_days=96") == [rotated_soon, never]
    assert ids("unused_for_days=5") == [rotated_soon, never, old_use, recent]
    assert ids("unused_for_days=3650") == []
    assert fresh not in ids("unused_for_days=1")
    # It composes with the other filters: only active keys can match.
    assert ids("unused_for_days=90&status=active") == [rotated_soon, never, old_use]
    assert ids("unused_for_days=90&status=revoked") == []
    assert ids("unused_for_days=90&status=expired") == []
    assert ids("unused_for_days=90&expiring_within_days=31") == [rotated_soon]
    assert [x["id"] for x in list_all(d, stack, f"?q={tok}+used&unused_for_days=5")] == [old_use, recent]
    rows = {x["id"]: x for x in list_all(d, stack, f"?q={tok}&unused_for_days=5")}
    assert rows[never]["last_used_at"] is None and rows[old_use]["last_used_at"]
    assert all(x["status"] == "active" for x in rows.values())

    # Pages of one, the cursor in the same order; the plain list's cursor does not fit.
    seen, cursor = [], None
    for _ in range(10):
        page = listing(d, stack, f"?q={tok}&unused_for_days=5&limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += [x["id"] for x in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [rotated_soon, never, old_use, recent]
    plain = listing(d, stack, f"?q={tok}&limit=1")["next_cursor"]
    stale = listing(d, stack, f"?q={tok}&unused_for_days=5&limit=1")["next_cursor"]
    assert_error(person(d, stack, "GET", keys_url() + f"?q={tok}&unused_for_days=5&cursor={plain}"),
                 400, "invalid_cursor")
    assert_error(person(d, stack, "GET", keys_url() + f"?q={tok}&cursor={stale}"), 400, "invalid_cursor")



def test_unused_for_days_drops_a_key_once_used(deployment, stack, mongo):
    d, (_, db) = deployment, mongo
    tok = token()
    k = create(d, stack, name=f"stale {tok} soon used")
    db.api_keys.update_one({"_id": k["id"]}, {"$set": {"created_at": dt.datetime.now(dt.timezone.utc)
                                                       - dt.timedelta(days=40)}})
    assert [x["id"] for x in list_all(d, stack, f"?q={tok}&unused_for_days=30")] == [k["id"]]
    assert use(d, k["key"]).status_code == 200
    wait_until(lambda: list_all(d, stack, f"?q={tok}&unused_for_days=30") == [], 5,
               "the key off the stale list once used (its first use is written within 2 s)")


@pytest.mark.parametrize("value", ["0", "3651", "ten", "", "-1", "1.5", "+3"])
def test_unused_for_days_validation(deployment, stack, value):
    err = assert_error(person(deployment, stack, "GET", keys_url() + f"?unused_for_days={value}"),
                       400, "validation_failed")
    assert err["details"][0]["field"] == "unused_for_days", err


# ---------------------------------------------------------------------------------------------
# the store down (last: it stops the store)


def test_usage_store_down_is_503(deployment, stack, used_key, store_up):
    d, k = deployment, used_key[0]
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")
    usage(d, stack, k["id"])
    stack.store.stop()
    try:
        for q in ("", "?interval=day"):
            r = person(d, stack, "GET", keys_url("acme", k["id"], "/usage") + q)
            assert_error(r, 503, "unavailable")
            assert r.headers.get("Retry-After", "").isdigit(), dict(r.headers)
        r = person(d, stack, "GET", keys_url() + "?unused_for_days=30")
        assert_error(r, 503, "unavailable")
    finally:
        stack.store.start()

    def back():
        r = person(d, stack, "GET", keys_url("acme", k["id"], "/usage"))
        assert r.status_code in (200, 503), r.text
        return r.status_code == 200
    wait_until(back, 30, "usage once the store is back", interval=0.5)
