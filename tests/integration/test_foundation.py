"""Issue 2's "Must show" list, against every deployment (see conftest.py).

The tests of one deployment run in file order; the SIGTERM test stops the pool, so it comes last
(and restarts the pool anyway).
"""

import json
import os
import signal
import threading
import time

import pytest
import requests

from looped_test.asserts import JSON_CT, SANE_ID, assert_error, needs_pool
from looped_test.client import Stream
from looped_test.procs import wait_until
from looped_test.settings import MEMBERS, POOL_THREADS, TEAMS


# ---------------------------------------------------------------------------------------------
# health and the store


def test_health_ok(deployment):
    r = deployment.get("/v1/health")
    assert r.status_code == 200, r.text
    assert JSON_CT.match(r.headers["Content-Type"])
    assert r.json() == {"status": "ok"}
    assert SANE_ID.match(r.headers.get("X-Request-Id", ""))


def test_store_down_then_back(deployment, stack, store_up):
    d = deployment
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")
    offset = d.log_offset()
    pids_before = d.app_pids()
    assert pids_before, "no looped-fcgi process found"
    # /v1/me touches the store too (the user's memberships).
    me_auth = stack.credentials("owner")

    stack.store.stop()
    t0 = time.monotonic()
    seen = []

    def unavailable():
        r = d.get("/v1/health")
        seen.append(r.status_code)
        assert r.status_code in (200, 503), f"health while the store is down: {r.status_code} {r.text[:200]}"
        return [r] if r.status_code == 503 else None  # (a Response is false when >= 400)
    r = wait_until(unavailable, 20, "health 503 with the store down", interval=0.2)[0]
    took = time.monotonic() - t0
    assert took < 10, f"503 only after {took:.1f}s"
    assert r.json() == {"status": "unavailable"}
    assert r.headers.get("Retry-After", "").isdigit(), r.headers
    assert SANE_ID.match(r.headers.get("X-Request-Id", ""))

    # Other store-backed requests degrade the same way: 503 unavailable, never a 500.
    for _ in range(3):
        r = d.get("/v1/me", auth=me_auth)
        assert_error(r, 503, "unavailable")
    # Requests that need no store still work.
    assert d.get("/v1/_test/hello").status_code == 200

    stack.store.start()

    def ok():
        r = d.get("/v1/health")
        seen.append(r.status_code)
        assert r.status_code in (200, 503), f"health after the store came back: {r.status_code}"
        return r.status_code == 200
    wait_until(ok, 30, "health 200 after the store came back", interval=0.3)
    assert d.get("/v1/me", auth=me_auth).status_code == 200

    # No application process died on the way.
    pids_after = d.app_pids()
    assert set(pids_before) <= set(pids_after), f"processes gone: {set(pids_before) - set(pids_after)}"
    assert d.crash_lines(offset) == []
    if d.pool:
        assert d.pool.running


# ---------------------------------------------------------------------------------------------
# routing and request checks


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/health/extra", "/v1", "/v1/", "/v1/_test/nope",
                                  "/v1/nope?x=1"])
def test_unknown_path_404(deployment, path):
    assert_error(deployment.get(path), 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "PATCH"])
def test_wrong_method_405_with_allow(deployment, method):
    r = deployment.request(method, "/v1/health")
    assert_error(r, 405, "method_not_allowed")
    allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
    assert "GET" in allow and method not in allow, r.headers


def test_wrong_method_on_authenticated_path(deployment, stack):
    r = deployment.request("DELETE", "/v1/me", auth=stack.credentials("owner"))
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("Allow", "")


def test_query_string_is_not_part_of_the_path(deployment):
    r = deployment.get("/v1/health?verbose=1&x=%2F")
    assert r.status_code in (200, 400), r.text  # 400 unknown_parameter is fine too; 404 is not
    r = deployment.get("/v1/_test/hello?a=b")
    assert r.status_code in (200, 400), r.text


def test_unknown_parameter_cut_in_a_char(deployment):
    """The message quotes the name up to 64 bytes: cut in the middle of a character, it is not
    UTF-8, and the answer is still the envelope, with the code's own sentence."""
    err = assert_error(deployment.get("/v1/_test/hello?a" + "%C3%A9" * 40 + "=1"), 400,
                       "unknown_parameter")
    assert "details" not in err, err


def test_unknown_parameter_not_utf8(deployment):
    """A name that is not UTF-8 at all (the web servers refuse %ff themselves: straight to the
    pool)."""
    needs_pool(deployment)
    status, headers, body = deployment.fcgi("GET", "/v1/_test/hello?%ff=1",
                                            headers={"X-Request-Id": "bad-name-1"})
    assert status == 400, body
    err = json.loads(body)["error"]
    assert err["code"] == "unknown_parameter" and err["request_id"] == "bad-name-1", err
    assert err["message"] and "details" not in err, err


def test_oversize_body_413(deployment):
    body = b"{" + b" " * (1048576 - 1) + b"}"  # 1 MiB + 1 byte
    r = deployment.request("POST", "/v1/health", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    # Also before routing: an unknown path gets the same answer.
    r = deployment.request("POST", "/v1/nope", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    # The deployment still serves afterwards.
    assert deployment.get("/v1/health").status_code == 200


def test_chunked_oversize_body_is_refused(deployment):
    # No Content-Length: Apache asks for one (411, as JSON: validation_failed); lighttpd buffers
    # the body and the app sees its length (413). Never a truncated body handed to the app,
    # never a 5xx. (Bodies over the web servers' own limit: test_web_errors.py.)
    def chunks():
        for _ in range(24):
            yield b" " * 65536  # 1.5 MiB in all
    r = deployment.request("POST", "/v1/health", data=chunks(), headers={"Content-Type": "application/json"})
    if deployment.server == "apache":
        assert_error(r, 411, "validation_failed")
    else:
        assert_error(r, 413, "payload_too_large")


def test_body_at_the_limit_is_not_413(deployment):
    body = b"{" + b" " * (1048576 - 2) + b"}"  # exactly 1 MiB
    r = deployment.request("POST", "/v1/health", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 405, "method_not_allowed")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None,
                                   "application/jsonx", "multipart/form-data; boundary=x"])
def test_non_json_body_415(deployment, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = deployment.request("POST", "/v1/health", data=b"hello=world", headers=headers)
    assert_error(r, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_json(deployment):
    r = deployment.request("POST", "/v1/health", data=b"{}",
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert_error(r, 405, "method_not_allowed")


# ---------------------------------------------------------------------------------------------
# X-Request-Id


@pytest.mark.parametrize("rid", ["abc", "req-1.2_3", "A" * 64, "0", "x" * 63 + "-"])
def test_request_id_echoed_when_sane(deployment, rid):
    r = deployment.get("/v1/health", headers={"X-Request-Id": rid})
    assert r.headers.get("X-Request-Id") == rid
    r = deployment.get("/v1/nope", headers={"X-Request-Id": rid})
    assert assert_error(r, 404, "not_found")["request_id"] == rid


@pytest.mark.parametrize("rid", ["A" * 65, "has space", "semi;colon", "slash/ed", "quote\"d", "%41%42",
                                 "ümlaut", "tab\there", "", "a,b"])
def test_request_id_generated_when_not_sane(deployment, rid):
    r1 = deployment.get("/v1/nope", headers={"X-Request-Id": rid.encode("utf-8")})
    r2 = deployment.get("/v1/nope", headers={"X-Request-Id": rid.encode("utf-8")})
    got1 = assert_error(r1, 404, "not_found")["request_id"]
    got2 = assert_error(r2, 404, "not_found")["request_id"]
    assert got1 != rid and got2 != rid
    assert got1 != got2, "generated request ids must differ"


def test_request_id_generated_when_absent(deployment):
    ids = {deployment.get("/v1/health").headers.get("X-Request-Id") for _ in range(5)}
    assert len(ids) == 5 and all(i and SANE_ID.match(i) for i in ids), ids


# ---------------------------------------------------------------------------------------------
# people: /v1/me behind the web server's authentication


@pytest.mark.parametrize("user", ["owner", "admin", "member"])
def test_me_lists_acme_with_role(deployment, stack, user):
    r = deployment.get("/v1/me", auth=stack.credentials(user))
    assert r.status_code == 200, r.text
    assert JSON_CT.match(r.headers["Content-Type"])
    body = r.json()
    role = {u: role for _, u, role in MEMBERS}[user]
    assert body["user"] == user
    assert body["teams"] == [{"id": "acme", "name": TEAMS["acme"], "role": role}], body


def test_me_other_team(deployment, stack):
    body = deployment.get("/v1/me", auth=stack.credentials("outsider")).json()
    assert body["user"] == "outsider"
    assert [t["id"] for t in body["teams"]] == ["globex"], body


def test_me_without_credentials_401(deployment):
    # The web server's Basic challenge, as the envelope (test_web_errors.py has the rest).
    r = deployment.get("/v1/me")
    assert_error(r, 401, "unauthenticated")
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), r.headers


def test_me_with_wrong_password_401(deployment):
    r = deployment.get("/v1/me", auth=("owner", "not-the-password"))
    assert r.status_code == 401


@pytest.mark.parametrize("path", ["/v1/teams/acme/api-keys", "/settings/", "/settings/api-keys"])
def test_people_paths_need_credentials(deployment, path):
    assert deployment.get(path).status_code == 401


@pytest.mark.parametrize("path", ["/v1/health", "/v1/_test/hello", "/v1/nope"])
def test_rest_of_v1_needs_no_credentials(deployment, path):
    assert deployment.get(path).status_code != 401


def test_static_root(deployment):
    r = deployment.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")


def test_test_route_hello(deployment):
    r = deployment.get("/v1/_test/hello")
    assert r.status_code == 200
    body = r.json()  # {"hello": "world"} in the contract; later padded with "x" for the benchmark
    assert list(body) == ["hello"] and isinstance(body["hello"], str), body
    assert r.headers.get("X-Worker", "").isdigit()


def test_app_unauthenticated_without_remote_user(deployment, stack):
    """Straight to the pool's socket: no REMOTE_USER → the app's own 401 unauthenticated."""
    needs_pool(deployment)
    status, headers, body = deployment.fcgi("GET", "/v1/me", headers={"X-Request-Id": "direct-1"})
    assert status == 401, body
    assert b'"unauthenticated"' in body and b'"direct-1"' in body, body
    status, _, body = deployment.fcgi("GET", "/v1/me", remote_user="owner")
    assert status == 200 and b'"OWNER"' in body, body
    # A web-server user unknown to Looped has no teams (or is refused), never a 5xx.
    status, _, body = deployment.fcgi("GET", "/v1/me", remote_user="ghost")
    assert status in (200, 401, 403, 404), body


def test_ghost_user_is_not_a_server_error(deployment, stack):
    r = deployment.get("/v1/me", auth=stack.credentials("ghost"))
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert r.json()["teams"] == []


# ---------------------------------------------------------------------------------------------
# the pool's process management (self-managed pool only)


def test_pool_sigkill_worker_is_replaced(deployment):
    d = deployment
    needs_pool(d)
    before = d.pool.worker_pids()
    assert len(before) == d.pool.workers
    # Slightly slow requests, so that the victim surely holds some when it dies.
    stream = Stream(d, path="/v1/_test/sleep?ms=10", total=400, threads=4).start()
    stream.wait_done(100)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = stream.done_count()
    stream.join()

    failures = stream.failures()
    print(f"{d.name}: SIGKILL {victim}: {len(failures)} of 400 requests failed: {failures}")
    # Only the requests the killed worker held may fail (at most its thread count).
    assert len(failures) <= POOL_THREADS, failures
    assert all(i >= killed_at - 8 for i, _, _ in failures), failures
    assert len(stream.results) == 400

    def replaced():
        now = d.pool.worker_pids()
        return now if victim not in now and len(now) == d.pool.workers else None
    now = wait_until(replaced, 15, "a replacement worker")
    assert set(now) - set(before), (before, now)
    assert d.pool.running
    # The new worker serves.
    wait_until(lambda: d.get("/v1/_test/hello").status_code == 200, 10, "hello after the replacement")
    assert all(r[1] == 200 for r in stream.results[-100:]), "the stream did not recover"
    workers_seen = set()
    for _ in range(60):
        workers_seen.add(d.get("/v1/_test/hello").headers.get("X-Worker"))
    assert workers_seen <= {str(p) for p in now}, (workers_seen, now)


def test_pool_sighup_replaces_workers_without_dropping(deployment):
    d = deployment
    needs_pool(d)
    before = set(d.pool.worker_pids())
    stream = Stream(d, total=400, threads=4).start()
    stream.wait_done(100)
    os.kill(d.pool.pid, signal.SIGHUP)
    stream.join()
    assert stream.failures() == []

    def replaced():
        now = set(d.pool.worker_pids())
        return now if len(now) == d.pool.workers and not (now & before) else None
    now = wait_until(replaced, 20, "all workers replaced after SIGHUP")
    assert d.pool.running
    served_by = {w for _, _, w in stream.results[-50:]}
    assert served_by, "no X-Worker headers"
    assert all(d.get("/v1/health").status_code == 200 for _ in range(5))
    assert now


def test_pool_sigterm_one_worker_under_load_drops_nothing(deployment):
    """SIGTERM to one worker while 8 clients keep sending: it serves what it holds and what is
    queued, the others take the rest, the supervisor starts another; not one request fails."""
    d = deployment
    needs_pool(d)
    before = d.pool.worker_pids()
    stream = Stream(d, path="/v1/_test/sleep?ms=5", total=800, threads=8).start()
    stream.wait_done(100)
    os.kill(before[0], signal.SIGTERM)
    stream.join()
    assert stream.failures() == [], stream.failures()
    def replaced():
        now = d.pool.worker_pids()
        return now if before[0] not in now and len(now) == d.pool.workers else None
    now = wait_until(replaced, 15, "a replacement worker")
    assert set(now) - set(before), (before, now)


def test_pool_sigterm_under_load_answers_200_or_503(deployment):
    """Stops the pool (and starts it again) while 8 clients keep sending: every request is
    answered 200 (by a worker, the queued ones included) or 503 (by the web server, once the pool
    is gone): no 500 or 502 for a connection dropped from the backlog, no reset connection."""
    d = deployment
    needs_pool(d)
    stream = Stream(d, path="/v1/_test/sleep?ms=5", total=1200, threads=8).start()
    try:
        stream.wait_done(100)
        d.pool.proc.send_signal(signal.SIGTERM)
        stream.join()
        assert d.pool.proc.wait(timeout=20) == 0
    finally:
        d.restart_pool()
    statuses = {}
    for _, status, _ in stream.results:
        statuses[status] = statuses.get(status, 0) + 1
    print(f"{d.name}: SIGTERM under load: {statuses}")
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.get(200, 0) >= 100 and statuses.get(503, 0) > 0, statuses


def test_pool_sigterm_drains_in_flight_request(deployment):
    """Last for the deployment: stops the pool (and starts it again)."""
    d = deployment
    needs_pool(d)
    result = {}

    def slow():
        try:
            r = requests.get(d.url + "/v1/_test/sleep?ms=2000", timeout=20)
            result["status"], result["body"] = r.status_code, r.text
        except requests.RequestException as e:
            result["error"] = repr(e)

    try:
        t = threading.Thread(target=slow)
        t0 = time.monotonic()
        t.start()
        time.sleep(0.5)  # the request is in a worker by now
        d.pool.proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert not t.is_alive()
        assert result.get("status") == 200, result
        assert '"slept_ms":2000' in result["body"].replace(" ", ""), result
        assert time.monotonic() - t0 >= 2
        rc = d.pool.proc.wait(timeout=20)
        assert rc == 0, f"supervisor exit status {rc}"
        assert not d.sock.exists(), "socket not removed at exit"
        assert d.pool.worker_pids() == []
    finally:
        d.restart_pool()


def test_store_frozen_fails_fast_then_recovers(deployment, stack, store_up):
    """A hung store (SIGSTOP: connections accepted, nothing answered): the request caught in it
    gets 503 within 2.5 s, health says so within 100 ms and without a round trip, every later
    request that needs the store gets 503 within 100 ms (the circuit), and once the store
    answers again everything works within 2 s, without a restart and without a 500."""
    d = deployment
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot freeze an external store")
    if d.asan:
        pytest.skip(f"{d.name}: its timings are the sanitizers' (and its store timeout is longer)")
    auth = stack.credentials("owner")
    assert d.get("/v1/me", auth=auth).status_code == 200
    # Spawned modes: have the web server start its processes now (mod_fcgid waits about a second
    # for one when all are busy: that second is the web server's, not the application's).
    for _ in range(3):
        burst = [threading.Thread(target=lambda: requests.get(d.url + "/v1/health", timeout=15))
                 for _ in range(6)]
        for b in burst:
            b.start()
        for b in burst:
            b.join(20)
    r = d.request("POST", "/v1/teams/acme/api-keys", auth=auth,
                  json={"name": "frozen store", "permission": "read_all"})
    assert r.status_code == 201, r.text
    key = {"X-API-Key": r.json()["key"]}
    assert d.get("/v1/customers", headers=key).status_code == 200  # the key is cached now
    caught = {}

    def in_flight():
        s = time.monotonic()
        r = requests.get(d.url + "/v1/me", auth=auth, timeout=30)
        caught.update(status=r.status_code, took=time.monotonic() - s, body=r.json())

    stack.store.freeze()
    t0 = time.monotonic()
    try:
        t = threading.Thread(target=in_flight)
        t.start()
        healths = []

        def health_says_down():
            s = time.monotonic()
            r = d.get("/v1/health")
            healths.append((r.status_code, time.monotonic() - s))
            return r.status_code == 503
        wait_until(health_says_down, 2.5, "health 503 with the store frozen", interval=0.1)
        # mod_fcgid sometimes waits about a second for a free process (design.md §2): that
        # second is the web server's scheduling, not the application's answer
        fast = 1.2 if d.mode == "fcgid" else 0.1
        assert max(took for _, took in healths) < fast, healths
        assert {s for s, _ in healths} <= {200, 503}, healths
        # every process's probe has had its ping time out by now (500 ms apart, 1 s timeout)
        time.sleep(max(0.0, 1.6 - (time.monotonic() - t0)))
        # (a key-authenticated list: no Basic auth, whose password hash is the web server's time)
        for _ in range(20):
            s = time.monotonic()
            r = d.get("/v1/customers", headers=key)
            took = time.monotonic() - s
            assert_error(r, 503, "unavailable")
            assert r.headers.get("Retry-After", "").isdigit() and took < fast, (took, r.headers)
        t.join(30)
        for _ in range(5):
            s = time.monotonic()
            r = d.get("/v1/health")
            assert r.status_code == 503 and time.monotonic() - s < fast, time.monotonic() - s
        assert caught["status"] == 503 and caught["body"]["error"]["code"] == "unavailable", caught
        # (plus, under mod_fcgid, the second it may take to hand the request to a process)
        assert caught["took"] < 2.5 + (fast - 0.1), caught
    finally:
        stack.store.thaw()
    t1 = time.monotonic()
    wait_until(lambda: d.get("/v1/health").status_code == 200, 2, "health 200 within 2 s of the thaw",
               interval=0.05)
    wait_until(lambda: d.get("/v1/me", auth=auth).status_code == 200, 2, "GET /v1/me 200 after the thaw",
               interval=0.05)
    assert time.monotonic() - t1 < 2.5
