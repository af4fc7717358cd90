"""Leaked-key reports from secret scanners (api.md §6.5): POST /v1/key-leaks revokes a reported key
on every worker within 1 s, and its answer tells nothing about whether a key exists."""

import datetime as dt
import random
import re
import statistics
import time
import uuid

import pytest
import requests

from looped_test.asserts import assert_error
from looped_test.procs import wait_until
from test_api_keys import (CHANGE_SEEN_WITHIN, create, details, fan_out, forge, keys_url, person, token,
                           use)

LEAKS = "/v1/key-leaks"
PATTERN = re.compile(r"^looped_[0-9A-Za-z]{46}$")
SOURCE = "https://github.com/example/leaky/blob/main/settings.py"
TIMED = ("lighttpd-pool", "apache-fcgid")  # where the no-oracle test measures times


def address():
    """A client address of its own (the stack trusts 127.0.0.1's X-Forwarded-For), with a fresh
    budget of 60 reports a minute: the budget is per address across every host of the store, and
    the suite's deployments share one store."""
    return "2001:db8:%x:%x::%x" % (random.getrandbits(16), random.getrandbits(16), random.getrandbits(16) | 1)


def report(d, keys, source=SOURCE, ip=None, session=None, **kw):
    body = {"keys": keys} if source is None else {"keys": keys, "source": source}
    headers = {"X-Forwarded-For": ip or address()}
    return (session or d.session).post(d.url + LEAKS, json=body, headers=headers, timeout=15, **kw)


def made_up(real):
    """A well-formed key (right shape and checksum) that names no key."""
    return forge(real, 20, keep_checksum=False)


def test_reported_key_is_revoked_on_every_worker_within_1s(deployment, stack, mongo):
    d = deployment
    _, db = mongo
    k = create(d, stack, name=f"leak {token()}")
    fake = made_up(k["key"])
    for status, _, body in fan_out(d, 24, {"X-API-Key": k["key"]}, threads=6):
        assert status == 200, (status, body)  # cached by every worker

    rep = report(d, [k["key"], fake, "not a key at all"])
    assert rep.status_code == 202, rep.text
    assert rep.json() == {"received": 3}
    reported = time.monotonic()
    wait_until(lambda: details(d, stack, k["id"])["status"] == "revoked", CHANGE_SEEN_WITHIN,
               "the reported key revoked")
    time.sleep(max(0.0, reported + CHANGE_SEEN_WITHIN - time.monotonic()))
    res = fan_out(d, 30, {"X-API-Key": k["key"]}, threads=6)
    bad = [x for x in res if x[0] != 401 or (x[2] or {}).get("error", {}).get("code") != "revoked_api_key"]
    assert not bad, bad[:5]

    got = details(d, stack, k["id"])
    assert got["revoked_by"] == "leak-report" and got["revoked_at"], got
    # One audit record, with the reason and where the key was found; the report itself is gone.
    recs = wait_until(lambda: list(db.audit.find({"key_id": k["id"], "action": "api_key.revoked"})), 5,
                      "the revoke's audit record")
    assert len(recs) == 1, recs
    r = person(d, stack, "GET", f"/v1/teams/acme/audit?key_id={k['id']}&action=api_key.revoked")
    assert r.status_code == 200, r.text
    rec = r.json()["data"][0]
    assert rec["actor"] == {"type": "system", "id": "leak-report"}
    assert rec["reason"] == "leaked" and rec["source"] == SOURCE and rec["path"] == LEAKS
    assert rec["request_id"] == rep.headers["X-Request-Id"]
    wait_until(lambda: db.key_leak_reports.count_documents({"request_id": rec["request_id"]}) == 0,
               5, "the worked report removed")
    # Nothing secret is kept: neither reported key nor its random part in the revoke's record, the
    # key's row or a report still waiting.
    docs = recs + [db.api_keys.find_one({"_id": k["id"]})] + list(db.key_leak_reports.find({}))
    for doc in docs:
        for raw in (k["key"], fake):
            assert raw not in str(doc) and raw[7:47] not in str(doc), doc

    # Reported again: still 202, nothing audited twice.
    assert report(d, [k["key"]]).status_code == 202
    time.sleep(CHANGE_SEEN_WITHIN)
    assert db.audit.count_documents({"key_id": k["id"], "action": "api_key.revoked"}) == 1


def test_a_key_of_any_team_is_revoked(deployment, stack):
    d = deployment
    k = create(d, stack, name=f"leak other {token()}", team="globex", user="outsider")
    assert use(d, k["key"]).status_code == 200
    assert report(d, [k["key"]], source=None).status_code == 202
    wait_until(lambda: use(d, k["key"]).status_code == 401, CHANGE_SEEN_WITHIN + 0.5,
               "the other team's key refused")
    r = person(d, stack, "GET", keys_url("globex", k["id"]), user="outsider")
    assert r.status_code == 200 and r.json()["revoked_by"] == "leak-report", r.text


def comparable(r):
    """What a report's answer says, minus what differs between any two answers (the request's
    id, the date, the worker, the budget left)."""
    skip = {"x-request-id", "date", "x-worker", "ratelimit-remaining", "ratelimit-reset"}
    return r.status_code, r.content, tuple(sorted(h.lower() for h in r.headers if h.lower() not in skip))


def test_no_oracle_same_answer_and_time_for_real_and_made_up_keys(deployment, stack):
    """200 reports of real keys (each a new key, revoked behind the answer) and 200 of made-up
    ones, interleaved at random: byte-identical answers, median times within 10%. The times on
    one lighttpd and one Apache deployment (the others compare 20 answers of each)."""
    d = deployment
    tok = token()
    timed = d.name in TIMED
    real = [create(d, stack, name=f"oracle {tok} {i}")["key"] for i in range(200 if timed else 20)]
    fake = [made_up(k) for k in real]
    order = [("real", k) for k in real] + [("fake", k) for k in fake]
    random.Random(tok).shuffle(order)
    times, answers = {"real": [], "fake": []}, {"real": set(), "fake": set()}
    ips = [address() for _ in range((len(order) + 49) // 50)]  # 50 each: under the limit
    with requests.Session() as s:
        for i, (kind, key) in enumerate(order):
            ip = ips[i // 50]
            t0 = time.perf_counter()
            r = report(d, [key], ip=ip, session=s)
            times[kind].append(time.perf_counter() - t0)
            assert r.status_code == 202, r.text
            answers[kind].add(comparable(r))
            # Paced as a prober would be: a real key's revoke (behind the answer) has ended before
            # the next report, so each time is the answer's own, not the last revoke's store work.
            time.sleep(0.03)
    assert answers["real"] == answers["fake"] and len(answers["real"]) == 1, answers
    med = {kind: statistics.median(v) for kind, v in times.items()}
    print(f"{d.name}: median answer real {med['real'] * 1e3:.2f} ms, made-up {med['fake'] * 1e3:.2f} ms")
    if timed:
        assert abs(med["real"] - med["fake"]) / min(med.values()) < 0.10, med
    # And the real ones were revoked.
    wait_until(lambda: use(d, real[-1]).status_code == 401, 5, "the last real key refused")


def test_61_reports_in_a_minute_from_one_address_is_429(deployment, stack):
    d = deployment
    ip = address()
    k = create(d, stack, name=f"leak rate {token()}")
    fake = made_up(k["key"])
    with requests.Session() as s:
        for i in range(60):
            r = report(d, [fake], ip=ip, session=s)
            assert r.status_code == 202, (i, r.text)
        r = report(d, [k["key"]], ip=ip, session=s)
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["RateLimit-Limit"] == "60" and r.headers["RateLimit-Remaining"] == "0"
        # Refused means not reported: the key still works. Another address has its own budget.
        time.sleep(CHANGE_SEEN_WITHIN)
        assert use(d, k["key"]).status_code == 200
        assert report(d, [fake], session=s).status_code == 202


@pytest.mark.parametrize("body,field", [
    ({}, "keys"),
    ({"keys": []}, "keys"),
    ({"keys": "looped_x"}, "keys"),
    ({"keys": ["x"] * 101}, "keys"),
    ({"keys": [1]}, "keys[0]"),
    ({"keys": ["ok", None]}, "keys[1]"),
    ({"keys": ["x" * 257]}, "keys[0]"),
    ({"keys": ["x"], "source": 5}, "source"),
    ({"keys": ["x"], "source": "ftp://example.com/a"}, "source"),
    ({"keys": ["x"], "source": "https://example.com/" + "a" * 2030}, "source"),
    ({"keys": ["x"], "source": "https://example.com/\u0001"}, "source"),
    ({"keys": ["x"], "extra": 1}, "extra"),
    ([], "(body)"),
])
def test_bad_reports_are_400_and_store_nothing(deployment, stack, mongo, body, field):
    d = deployment
    _, db = mongo
    r = d.session.post(d.url + LEAKS, json=body, headers={"X-Forwarded-For": address()}, timeout=15)
    err = assert_error(r, 400, "validation_failed")
    assert field in [x["field"] for x in err["details"]], err
    assert db.key_leak_reports.count_documents({"request_id": r.headers["X-Request-Id"]}) == 0


def test_not_json_and_wrong_type(deployment, stack):
    d = deployment
    hdr = {"X-Forwarded-For": address()}
    assert_error(d.session.post(d.url + LEAKS, data=b"{", headers={**hdr, "Content-Type": "application/json"},
                                timeout=15), 400, "invalid_json")
    assert_error(d.session.post(d.url + LEAKS, data=b"keys=x", headers={**hdr, "Content-Type": "text/plain"},
                                timeout=15), 415, "unsupported_media_type")
    assert_error(d.session.get(d.url + LEAKS, headers=hdr, timeout=15), 405, "method_not_allowed")
    ok = {"keys": ["x"], "source": "https://example.com/" + "a" * (2048 - 20)}
    assert len(ok["source"]) == 2048
    r = d.session.post(d.url + LEAKS, json=ok, headers=hdr, timeout=15)
    assert r.status_code == 202 and r.json() == {"received": 1}, r.text


def test_store_down_is_503_for_every_report(deployment, stack, mongo, store_up):
    """Nothing is accepted that cannot be kept: 503 in the envelope, the same for a real key and
    a made-up one; the scanner retries, and once the store is back the report works."""
    d = deployment
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")
    k = create(d, stack, name=f"leak down {token()}")
    stack.store.stop()
    answers = set()
    for key in (k["key"], made_up(k["key"])):
        r = report(d, [key])
        e = assert_error(r, 503, "unavailable")
        answers.add((r.status_code, e["code"], e["message"]))
    assert len(answers) == 1, answers
    stack.store.start()
    wait_until(lambda: report(d, [k["key"]]).status_code == 202, 20, "reports accepted again")
    wait_until(lambda: details(d, stack, k["id"])["status"] == "revoked", 5, "the key revoked")


def test_a_report_left_by_a_crash_is_worked_by_the_sweep(deployment, stack, mongo):
    """A report stored and answered whose process died before working it (made here by storing
    the document directly, as the handler does): another process's sweep revokes the key."""
    d = deployment
    _, db = mongo
    k = create(d, stack, name=f"leak sweep {token()}")
    digest = db.api_keys.find_one({"_id": k["id"]})["hash"]
    rid = uuid.uuid4().hex
    db.key_leak_reports.insert_one({
        "_id": f"leak_test{token()}", "at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=10),
        "digests": [digest], "source": SOURCE, "ip": "198.51.100.1", "user_agent": "scanner/1",
        "request_id": rid})
    # A sweep every 5 s in every process, then the feed (1 s).
    wait_until(lambda: use(d, k["key"]).status_code == 401, 5 + 1 + CHANGE_SEEN_WITHIN, "the key refused")
    assert details(d, stack, k["id"])["revoked_by"] == "leak-report"
    wait_until(lambda: db.audit.find_one({"key_id": k["id"], "action": "api_key.revoked"}), 5, "audit")
    rec = db.audit.find_one({"key_id": k["id"], "action": "api_key.revoked"})
    assert rec["request_id"] == rid and rec["source"] == SOURCE and rec["ip"] == "198.51.100.1"
    wait_until(lambda: db.key_leak_reports.count_documents({"request_id": rid}) == 0, 5, "report removed")


def test_admin_lists_pending_reports(deployment, stack, mongo):
    """looped-admin leaks pending: the reports not worked yet (one made to be worked in a minute,
    so that no sweep takes it first), never a key."""
    _, db = mongo
    rid, report_id = uuid.uuid4().hex, f"leak_test{token()}"
    db.key_leak_reports.insert_one({
        "_id": report_id, "at": dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60),
        "digests": ["0" * 64, "1" * 64], "source": SOURCE, "ip": "198.51.100.2", "user_agent": "scanner/1",
        "request_id": rid})
    try:
        out = stack.admin("leaks", "pending")
        assert out.returncode == 0, out.stderr
        line = [x for x in out.stdout.splitlines() if x.startswith(report_id)]
        assert len(line) == 1 and line[0].split("\t")[2:] == ["2 keys", SOURCE], out.stdout
    finally:
        db.key_leak_reports.delete_one({"_id": report_id})


def test_openapi_documents_the_secret_pattern(deployment):
    doc = deployment.session.get(deployment.url + "/openapi.json", timeout=15).json()
    op = doc["paths"][LEAKS]["post"]
    assert op["security"] == [] and set(op["responses"]) >= {"202", "400", "429", "503"}
    pat = op["x-secret-pattern"]
    assert pat == doc["components"]["securitySchemes"]["ApiKey"]["x-secret-pattern"] == "looped_[0-9A-Za-z]{46}"
    assert PATTERN.pattern == f"^{pat}$"
