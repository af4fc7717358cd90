"""GET /metrics (api.md §6.9) against every deployment, each with 4 looped-fcgi processes: the
text passes `promtool check metrics`, counts are the sum over every process, a SIGKILLed
process's counts stay, and an address outside LOOPED_METRICS_ALLOW gets 404."""

import os
import re
import signal
import subprocess

import pytest

from looped_test.asserts import assert_envelope, assert_error
from looped_test.procs import wait_until
from looped_test.stack import running
from test_api_keys import create, fan_out, use
from test_limits import from_addr

PROCS = 4
SCOPES = 'looped_requests_total{route="/v1/scopes",method="GET",status="200"}'


@pytest.fixture(scope="module")
def deployment(request, stack):
    with running(stack, request.param, procs=PROCS) as d:
        yield d


def scrape(d):
    """The text of GET /metrics (retried while a process the web server replaces is not there)."""
    got = {}

    def ok():
        r = d.get("/metrics")
        got["r"] = r
        return r.status_code == 200
    wait_until(ok, 15, "GET /metrics = 200", interval=0.2)
    r = got["r"]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return r.text


def value(text, series):
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_promtool_check_metrics_is_clean(deployment, stack):
    d = deployment
    k = create(d, stack)
    assert use(d, k["key"]).status_code == 200
    assert d.get("/v1/nope").status_code == 404
    text = scrape(d)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    for family in ("looped_requests_total", "looped_request_duration_seconds", "looped_key_checks_total",
                   "looped_audit_queue_depth", "looped_audit_records_written_total",
                   "looped_audit_write_failures_total", "looped_store_up", "looped_rate_limited_total",
                   "looped_worker_restarts_total", "looped_build_info"):
        assert f"# TYPE {family} " in text, family
    assert value(text, "looped_store_up") == 1
    assert 'looped_requests_total{route="/v1/key",method="GET",status="200"}' in text
    assert 'route="unmatched",method="GET",status="404"' in text
    assert "/v1/nope" not in text, "a raw path in a label"
    # No key, key id, team or user in any label.
    for secret in (k["key"], k["id"], "acme", "owner"):
        assert secret not in text, secret


def test_requests_counted_exactly_over_every_process(deployment):
    d = deployment
    n = 64
    before = value(scrape(d), SCOPES)
    res = fan_out(d, n, {}, path="/v1/scopes")
    assert all(s == 200 for s, _, _ in res), res
    workers = {w for _, w, _ in res}
    after = value(scrape(d), SCOPES)
    assert after - before == n, (before, after, workers)
    if d.server == "lighttpd" or d.pool:
        assert len(workers) > 1, workers


def test_outside_the_allow_list_is_404(deployment):
    d = deployment
    status, body = from_addr(d, "127.0.0.2", "/metrics", {"X-Request-Id": "metrics-outside"})
    assert status == 404, body[:300]
    assert b'"not_found"' in body and b"looped_" not in body
    # Behind the trusted proxy (127.0.0.1): the client it names decides.
    r = d.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_error(r, 404, "not_found")
    # /v1/metrics is no route of its own: an API path, answered as any without a key
    r = d.get("/v1/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] in ("missing_api_key", "unauthenticated"), r.text
    assert "looped_" not in r.text, "only /metrics serves the counters"


def test_sigkilled_process_keeps_its_counts(deployment):
    d = deployment
    res = fan_out(d, 40, {}, path="/v1/scopes")
    assert all(s == 200 for s, _, _ in res), res
    text = scrape(d)
    before, restarts = value(text, SCOPES), value(text, "looped_worker_restarts_total")
    victims = [int(w) for _, w, _ in res if w]
    victim = max(set(victims), key=victims.count)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in d.app_pids(), 10, f"process {victim} gone")
    after = scrape(d)
    assert value(after, SCOPES) == before, "the killed process's counts went away"
    if d.pool:
        wait_until(lambda: value(scrape(d), "looped_worker_restarts_total") == restarts + 1, 10,
                   "the restart counted")
