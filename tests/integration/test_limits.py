"""Per-key rate limits and network allow-lists (api.md §6.1, §6.2), against every deployment, each
started here with 4 looped-fcgi processes so that one budget is shared by 4 processes.

Rate-limit windows start at multiples of per_seconds since the epoch (ratelimit.h): the tests that
count a budget exactly start early in a window, so that the previous window's weight is zero.
"""

import os
import signal
import threading
import time
import http.client

import pytest

from looped_test.asserts import assert_error
from looped_test.procs import wait_until
from looped_test.stack import running
from test_api_keys import audit_until, create, details, fan_out, keys_url, patch, person, use

PROCS = 4


@pytest.fixture(scope="module")
def deployment(request, stack):
    """This module's deployments run 4 processes (the pool's workers, or spawned processes)."""
    with running(stack, request.param, procs=PROCS) as d:
        yield d


def window_start(per_seconds, room):
    """Waits until at least `room` seconds of the current window are left."""
    left = per_seconds - time.time() % per_seconds
    if left < room:
        time.sleep(left + 0.05)


def statuses(results):
    return sorted(s for s, _, _ in results)


def limited_key(d, stack, requests_, per_seconds, **extra):
    return create(d, stack, permission="read_all",
                  rate_limit={"requests": requests_, "per_seconds": per_seconds}, **extra)


def warm_up(d, stack):
    """Makes the web server start (spawned modes) all its processes: a burst with an unlimited key."""
    k = create(d, stack)
    seen = set()
    for _ in range(5):
        seen |= {w for s, w, _ in fan_out(d, 32, {"X-API-Key": k["key"]}) if s == 200}
        if len(seen) >= min(PROCS, 2):
            break
    return seen


def from_addr(d, source, path, headers):
    """A GET from another loopback address (127.0.0.2: not a trusted proxy)."""
    host, port = d.url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=15, source_address=(source, 0))
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# the key's fields


def test_rate_limit_and_allowed_ips_fields(deployment, stack):
    d = deployment
    k = create(d, stack, rate_limit={"requests": 100, "per_seconds": 60},
               allowed_ips=["203.0.113.7/24", "2001:DB8::1/32", "192.0.2.1", "::ffff:198.51.100.0/120",
                            "203.0.113.0/24"])
    assert k["rate_limit"] == {"requests": 100, "per_seconds": 60}
    # normalised, duplicates dropped, order kept
    assert k["allowed_ips"] == ["203.0.113.0/24", "2001:db8::/32", "192.0.2.1", "198.51.100.0/24"]
    assert details(d, stack, k["id"])["allowed_ips"] == k["allowed_ips"]
    plain = create(d, stack)
    assert plain["rate_limit"] is None and plain["allowed_ips"] == []

    r = patch(d, stack, k["id"], {"rate_limit": None, "allowed_ips": []})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limit"] is None and r.json()["allowed_ips"] == []
    recs = audit_until(d, stack, f"?key_id={k['id']}&action=api_key.updated", lambda r: r, "the update record")
    ch = recs[0]["changes"]
    assert ch["rate_limit"] == {"old": {"requests": 100, "per_seconds": 60}, "new": None}
    assert ch["allowed_ips"]["new"] == [] and len(ch["allowed_ips"]["old"]) == 4


@pytest.mark.parametrize("body, field", [
    ({"rate_limit": {"requests": 0, "per_seconds": 10}}, "rate_limit.requests"),
    ({"rate_limit": {"requests": 1000001, "per_seconds": 10}}, "rate_limit.requests"),
    ({"rate_limit": {"requests": 5, "per_seconds": 86401}}, "rate_limit.per_seconds"),
    ({"rate_limit": {"requests": 5.5, "per_seconds": 10}}, "rate_limit.requests"),
    ({"rate_limit": {"requests": "5", "per_seconds": 10}}, "rate_limit.requests"),
    ({"rate_limit": {"requests": 5}}, "rate_limit.per_seconds"),
    ({"rate_limit": {"requests": 5, "per_seconds": 10, "burst": 3}}, "rate_limit.burst"),
    ({"rate_limit": 5}, "rate_limit"),
    ({"allowed_ips": "10.0.0.0/8"}, "allowed_ips"),
    ({"allowed_ips": ["10.0.0.0/8", "10.0.0.0/33"]}, "allowed_ips[1]"),
    ({"allowed_ips": ["10.0.0.0/8", "example.com"]}, "allowed_ips[1]"),
    ({"allowed_ips": ["fe80::1%eth0"]}, "allowed_ips[0]"),
    ({"allowed_ips": [7]}, "allowed_ips[0]"),
    ({"allowed_ips": [f"10.0.{i // 256}.{i % 256}" for i in range(101)]}, "allowed_ips"),
])
def test_bad_limits_are_400_naming_the_field(deployment, stack, body, field):
    d = deployment
    r = person(d, stack, "POST", keys_url(), json={"name": "bad limits", "permission": "read_all", **body})
    assert_error(r, 400, "validation_failed")
    assert field in [e["field"] for e in r.json()["error"]["details"]], r.text
    k = create(d, stack)
    r = patch(d, stack, k["id"], body)
    assert_error(r, 400, "validation_failed")
    assert field in [e["field"] for e in r.json()["error"]["details"]], r.text
    assert details(d, stack, k["id"])["allowed_ips"] == [], "a refused edit changes nothing"


# ---------------------------------------------------------------------------------------------
# rate limits: one budget for every process of the host


def test_budget_is_exact_across_processes(deployment, stack):
    d = deployment
    workers = warm_up(d, stack)
    k = limited_key(d, stack, 20, 10)
    window_start(10, 6)
    results = fan_out(d, 40, {"X-API-Key": k["key"]}, threads=8)
    got = statuses(results)
    assert got.count(200) == 20 and got.count(429) == 20, got
    assert len(workers) >= 2, f"the warm-up reached only {workers}"
    answered_by = {w for s, w, _ in results if s in (200, 429)}
    assert len(answered_by) >= 2, f"the requests should spread over the processes: {answered_by}"
    for s, _, body in results:
        if s == 429:
            assert body["error"]["code"] == "rate_limited"
    # every worker's writer flushes on its own schedule: wait for all 40, then count each kind
    recs = audit_until(d, stack, f"?key_id={k['id']}&action=api.request&limit=100",
                       lambda r: len(r) >= 40, "the 40 requests audited")
    assert len(recs) == 40, recs
    assert sum(x["status"] == 200 for x in recs) == 20
    assert sum(x["status"] == 429 for x in recs) == 20

    # the operator's view: the host reported its count of the key to the store
    def reported():
        rows = [line.split("\t") for line in stack.admin_ok("rate", "list").stdout.splitlines()]
        mine = [r for r in rows if r[0] == k["id"]]
        # the host's last report (every 500 ms) has all 20 (in this window, or now the previous)
        return mine if mine and int(mine[0][3]) + int(mine[0][4]) == 20 else None
    rows = wait_until(reported, 5, "looped-admin rate list to show the key's 20 requests")
    assert len(rows) == 1 and rows[0][2] == "per 10s", rows


def test_headers_count_down_and_429_says_when(deployment, stack):
    d = deployment
    k = limited_key(d, stack, 5, 10)
    window_start(10, 5)
    seen = []
    for _ in range(5):
        r = use(d, k["key"])
        assert r.status_code == 200, r.text
        assert r.headers["RateLimit-Limit"] == "5"
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 10
        seen.append(int(r.headers["RateLimit-Remaining"]))
    assert seen == [4, 3, 2, 1, 0], seen
    r = use(d, k["key"])
    assert_error(r, 429, "rate_limited")
    assert r.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(r.headers["Retry-After"]) <= 20, r.headers
    # an unlimited key has no RateLimit headers
    plain = create(d, stack)
    assert "RateLimit-Limit" not in use(d, plain["key"]).headers


def test_budget_comes_back(deployment, stack):
    d = deployment
    k = limited_key(d, stack, 3, 2)
    window_start(2, 1.5)
    assert [use(d, k["key"]).status_code for _ in range(4)] == [200, 200, 200, 429]
    r = use(d, k["key"])
    assert r.status_code == 429
    time.sleep(int(r.headers["Retry-After"]) + 0.1)
    assert use(d, k["key"]).status_code == 200, "the budget is back after Retry-After"


def test_limit_edit_takes_effect(deployment, stack):
    d = deployment
    k = create(d, stack)
    assert use(d, k["key"]).status_code == 200
    r = patch(d, stack, k["id"], {"rate_limit": {"requests": 2, "per_seconds": 30}})
    assert r.status_code == 200, r.text
    # every process forgets the key within 1 s (the key-change feed)
    time.sleep(1.1)
    window_start(30, 5)
    got = [use(d, k["key"]) for _ in range(6)]
    assert [r.status_code for r in got] == [200, 200, 429, 429, 429, 429], [r.status_code for r in got]
    assert all(r.headers["RateLimit-Limit"] == "2" for r in got)


def test_reload_or_restart_does_not_reset_the_budget(deployment, stack):
    """Pool: SIGHUP replaces every worker (the supervisor's table stays). Spawned: every
    looped-fcgi process is killed and the web server starts new ones (the file stays)."""
    d = deployment
    k = limited_key(d, stack, 20, 30)
    window_start(30, 20)
    assert statuses(fan_out(d, 10, {"X-API-Key": k["key"]}, threads=4)) == [200] * 10
    before = set(d.app_pids())
    if d.pool:
        os.kill(d.pool.pid, signal.SIGHUP)
        wait_until(lambda: not (set(d.pool.worker_pids()) & before) and len(d.pool.worker_pids()) == PROCS,
                   20, "the workers replaced after SIGHUP")
    else:
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not (set(d.app_pids()) & before) and d.get("/v1/health").status_code == 200,
                   20, "new processes after the old ones were killed")
    got = statuses(fan_out(d, 20, {"X-API-Key": k["key"]}, threads=4))
    assert got.count(200) == 10 and got.count(429) == 10, got


# ---------------------------------------------------------------------------------------------
# allow-lists (the suite's client, 127.0.0.1, is a trusted proxy: stack.py)


def test_allow_list_ipv4(deployment, stack):
    d = deployment
    inside = create(d, stack, allowed_ips=["127.0.0.0/8"])
    outside = create(d, stack, allowed_ips=["10.0.0.0/8", "192.0.2.0/24"])
    assert use(d, inside["key"]).status_code == 200
    r = use(d, outside["key"])
    assert_error(r, 403, "ip_not_allowed")
    recs = audit_until(d, stack, f"?key_id={outside['id']}&action=api.request", lambda r: r,
                       "the refusal audited")
    assert recs[0]["status"] == 403 and recs[0]["ip"] == "127.0.0.1"
    assert details(d, stack, outside["id"])["last_used_at"] is None, "a refused request is no use"


def test_allow_list_ipv6_through_a_trusted_proxy(deployment, stack):
    d = deployment
    v6 = create(d, stack, allowed_ips=["::1"])
    other = create(d, stack, allowed_ips=["2001:db8::/32"])
    assert use(d, v6["key"], headers={"X-Forwarded-For": "::1"}).status_code == 200
    assert_error(use(d, v6["key"]), 403, "ip_not_allowed")  # from 127.0.0.1 itself
    assert_error(use(d, other["key"], headers={"X-Forwarded-For": "::1"}), 403, "ip_not_allowed")
    assert use(d, other["key"], headers={"X-Forwarded-For": "2001:db8:1::5"}).status_code == 200
    recs = audit_until(d, stack, f"?key_id={other['id']}&action=api.request", lambda r: len(r) >= 2,
                       "both audited")
    assert {x["ip"] for x in recs} == {"::1", "2001:db8:1::5"}, recs


def test_forwarded_for_only_from_a_trusted_proxy(deployment, stack):
    d = deployment
    k = create(d, stack, allowed_ips=["198.51.100.0/24"])
    spoof = {"X-API-Key": k["key"], "X-Forwarded-For": "198.51.100.9"}
    # from the trusted proxy: the right-most untrusted hop is the client
    assert use(d, k["key"], headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 200
    assert use(d, k["key"], headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.9"}).status_code == 200
    assert_error(use(d, k["key"], headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}), 403,
                 "ip_not_allowed")
    # from 127.0.0.2, not a trusted proxy: the header is ignored
    try:
        status, body = from_addr(d, "127.0.0.2", "/v1/key", spoof)
    except OSError as e:
        pytest.skip(f"cannot send from 127.0.0.2 here: {e}")
    assert status == 403 and b"ip_not_allowed" in body, body


def test_rate_limited_and_ip_restricted_key_refused_elsewhere_spends_nothing(deployment, stack):
    d = deployment
    k = limited_key(d, stack, 2, 30, allowed_ips=["10.0.0.0/8"])
    window_start(30, 5)
    for _ in range(4):
        assert_error(use(d, k["key"]), 403, "ip_not_allowed")
    ok = [use(d, k["key"], headers={"X-Forwarded-For": "10.1.1.1"}).status_code for _ in range(3)]
    assert ok == [200, 200, 429], ok


# ---------------------------------------------------------------------------------------------
# two hosts on one store


def test_two_hosts_share_one_budget(stack):
    """Two pools (two "hosts": own sockets, own web servers on own ports) on one store: a key
    limited to 100 per 10 s gets at most 110 + one second's worth of requests across both."""
    from conftest import _selected_deployments
    names = [n for n in _selected_deployments() if n in ("lighttpd-pool", "apache-proxy-fcgi")]
    if not names:
        pytest.skip("no pool deployment selected")
    a_name, b_name = names[0], names[-1]
    with running(stack, a_name) as a, running(stack, b_name) as b:
        k = limited_key(a, stack, 100, 10)
        rate_per_host, seconds = 20, 8
        window_start(10, seconds + 1)
        counts = {"a": [], "b": []}

        def drive(d, out):
            t0 = time.monotonic()
            for i in range(rate_per_host * seconds):
                delay = t0 + i / rate_per_host - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                out.append(use(d, k["key"]).status_code)

        ts = [threading.Thread(target=drive, args=(a, counts["a"])),
              threading.Thread(target=drive, args=(b, counts["b"]))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        passed = counts["a"].count(200) + counts["b"].count(200)
        bound = 110 + 2 * rate_per_host
        assert 100 <= passed <= bound, f"{passed} passed across both hosts (at most {bound})"
        assert set(counts["a"] + counts["b"]) <= {200, 429}
        assert counts["a"].count(200) < 100 and counts["b"].count(200) < 100, counts
