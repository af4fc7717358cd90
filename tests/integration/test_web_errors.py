"""Issue 15: every error a client can see is the contract's JSON envelope with X-Request-Id,
whichever layer produced it — the application, or the web server in front of it (lighttpd:
server.error-handler → deploy/lighttpd/errors.lua; Apache: ErrorDocument → deploy/apache/error.json),
against every deployment (see conftest.py).

Where the web server refuses a request itself (lighttpd's strict URL parsing, a missing login, a
body over its own limit, a path outside /v1, the pool down) the envelope comes from the web
server; where it passes the request on (Apache passes %01 and %FF to the application) it comes
from the application. Both are checked here. And one answer of the application's that was wrong: a NUL ("\\u0000")
inside a JSON string is valid JSON, refused by validation naming the field, not invalid_json.
"""

import http.client
import uuid

import pytest

from looped_test.asserts import SANE_ID, assert_envelope, assert_error, needs_pool
from looped_test.procs import wait_until
from looped_test.settings import WEB_MAX_BODY


def new_key(d, stack, permission):
    r = d.request("POST", "/v1/teams/acme/api-keys", auth=stack.credentials("owner"),
                  json={"name": f"web errors {permission} {uuid.uuid4().hex[:8]}", "permission": permission})
    assert r.status_code == 201, r.text
    return r.json()["key"]


@pytest.fixture(scope="module")
def key(deployment, stack):
    return new_key(deployment, stack, "read_all")


@pytest.fixture(scope="module")
def write_key(deployment, stack):
    return new_key(deployment, stack, "write_all")


def raw(d, method, path, headers):
    """A request whose body is declared but never sent (http.client: requests always sends the
    body it declares). Returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# control characters and invalid UTF-8 in the path and in the query


@pytest.mark.parametrize("path", ["/v1/customers/a%01b", "/v1/customers/a%FFb"])
def test_bad_bytes_in_path(deployment, key, path):
    r = deployment.get(path, headers={"X-API-Key": key})
    if deployment.server == "lighttpd":
        # lighttpd's strict URL parsing refuses them before the application sees the request.
        err = assert_error(r, 400, "validation_failed")
        assert err["details"] and err["details"][0]["field"], err
    else:
        # Apache passes the path on; no id has those bytes (the router takes [A-Za-z0-9._~-]).
        assert_error(r, 404, "not_found")


@pytest.mark.parametrize("query", ["status=%01", "status=%FF", "limit=%00", "%FF=1"])
def test_bad_bytes_in_query(deployment, key, query):
    r = deployment.get("/v1/invoices?" + query, headers={"X-API-Key": key})
    if deployment.server == "lighttpd":
        assert_error(r, 400, "validation_failed")
    else:
        # The application refuses a value outside the filter's schema, an encoded NUL, and a
        # parameter it does not know.
        assert_error(r, 400, ("validation_failed", "unknown_parameter"))


def test_bad_bytes_keep_the_callers_request_id(deployment, key):
    r = deployment.get("/v1/customers/a%01b", headers={"X-API-Key": key, "X-Request-Id": "bad-bytes-1"})
    assert assert_error(r, r.status_code, ("validation_failed", "not_found"))["request_id"] == "bad-bytes-1"


# ---------------------------------------------------------------------------------------------
# people's endpoints without a login: the web server's Basic challenge, as JSON


@pytest.mark.parametrize("path", ["/v1/me", "/v1/teams/acme/api-keys", "/settings/api-keys"])
def test_no_login_is_unauthenticated(deployment, path):
    r = deployment.get(path)
    assert_error(r, 401, "unauthenticated")
    # The challenge stays: browsers (the settings page) ask for the login because of it.
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), r.headers


def test_wrong_password_is_unauthenticated(deployment):
    assert_error(deployment.get("/v1/me", auth=("owner", "not-the-password")), 401, "unauthenticated")


# ---------------------------------------------------------------------------------------------
# bodies: the application decides up to the web server's limit; above it, the same JSON


def test_3_mib_body_is_payload_too_large(deployment):
    body = b"{" + b" " * (3 * 1048576 - 2) + b"}"
    r = deployment.request("POST", "/v1/customers", data=body, headers={"Content-Type": "application/json"})
    err = assert_error(r, 413, "payload_too_large")
    # The application's answer (under the web servers' limit): it names its own limit.
    assert "1048576" in err["message"], err
    assert deployment.get("/v1/health").status_code == 200


def test_body_over_the_web_servers_limit_is_payload_too_large(deployment):
    status, headers, body = raw(deployment, "POST", "/v1/customers", {
        "Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(WEB_MAX_BODY + 1),
        "X-Request-Id": "too-big-1"})
    err = assert_envelope("POST /v1/customers (declared over the limit)", status, headers, body, 413,
                          "payload_too_large")
    assert err["request_id"] == "too-big-1", err
    assert deployment.get("/v1/health").status_code == 200


# ---------------------------------------------------------------------------------------------
# unknown paths, in /v1 (the application) and outside it (the web server)


@pytest.mark.parametrize("path", ["/v1/nope", "/no-such-page.html", "/nope/deeper", "/settings/nope.css"])
def test_unknown_path_is_not_found(deployment, stack, path):
    r = deployment.get(path, auth=stack.credentials("owner") if path.startswith("/settings/") else None)
    err = assert_error(r, 404, "not_found")
    # The web server's sentence is the application's.
    assert err["message"] == deployment.get("/v1/nope").json()["error"]["message"], err


def test_web_server_errors_keep_or_make_request_ids(deployment):
    r = deployment.get("/no-such-page.html", headers={"X-Request-Id": "web-404.1_a"})
    assert assert_error(r, 404, "not_found")["request_id"] == "web-404.1_a"
    ids = set()
    for bad in ["has space", "x" * 65, "quote\"d", ""]:
        got = assert_error(deployment.get("/no-such-page.html", headers={"X-Request-Id": bad}), 404,
                           "not_found")["request_id"]
        assert got != bad and SANE_ID.match(got), got
        ids.add(got)
    assert len(ids) == 4, f"generated request ids repeat: {ids}"


def test_error_handler_url_itself_is_not_found(deployment):
    assert_error(deployment.get("/_looped/error"), 404, "not_found")


def test_head_of_a_missing_page_has_no_body(deployment):
    r = deployment.request("HEAD", "/no-such-page.html")
    assert r.status_code == 404 and r.content == b"", (r.status_code, r.content[:100])
    assert SANE_ID.match(r.headers.get("X-Request-Id", "")), r.headers


# ---------------------------------------------------------------------------------------------
# the pool down: the web server's 502/503, as JSON (pool deployments: the suite controls the pool)


def test_pool_down_is_unavailable(deployment):
    d = deployment
    needs_pool(d)
    d.pool.stop()
    try:
        for path in ["/v1/nope", "/v1/customers", "/openapi.json"]:
            r = d.get(path, headers={"X-Request-Id": "pool-down-1"})
            assert r.status_code in (502, 503), r.status_code
            err = assert_error(r, r.status_code, "unavailable")
            assert err["request_id"] == "pool-down-1", err
            assert r.headers.get("Retry-After", "").isdigit(), r.headers
        # Health keeps its own body (api.md §5), for load balancers.
        r = d.get("/v1/health", headers={"X-Request-Id": "pool-down-2"})
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}, (r.status_code, r.text)
        assert r.headers.get("X-Request-Id") == "pool-down-2" and r.headers.get("Retry-After", "").isdigit()
        # What the web server answers without the pool stays as it was.
        assert_error(d.get("/no-such-page.html"), 404, "not_found")
        assert d.get("/").status_code == 200
    finally:
        d.restart_pool()
    wait_until(lambda: d.get("/v1/health").status_code == 200, 30, "health 200 after the pool is back",
               interval=0.3)


# ---------------------------------------------------------------------------------------------
# NUL inside a JSON string: valid JSON, but no field takes it (fcgi/http.c body_check)


NUL_BODY = b'{"name": "Acme\\u0000 Inc", "address": {"city": "Par\\u0000is"}}'


def test_nul_in_a_string_is_valid_json_refused_by_validation(deployment, write_key):
    h = {"X-API-Key": write_key, "Content-Type": "application/json"}
    r = deployment.request("POST", "/v1/customers", data=NUL_BODY, headers=h)
    err = assert_error(r, 400, "validation_failed")
    assert {d["field"] for d in err["details"]} == {"name", "address.city"}, err
    # The same in a merge patch: the object stays as it was.
    r = deployment.request("POST", "/v1/customers", json={"name": "Before NUL"}, headers={"X-API-Key": write_key})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = deployment.request("PATCH", f"/v1/customers/{cid}", data=b'{"name": "\\u0000"}', headers=h)
    assert [d["field"] for d in assert_error(r, 400, "validation_failed")["details"]] == ["name"]
    assert deployment.get(f"/v1/customers/{cid}", headers={"X-API-Key": write_key}).json()["name"] == "Before NUL"


def test_nul_in_a_key_name_is_refused(deployment, stack):
    r = deployment.request("POST", "/v1/teams/acme/api-keys", auth=stack.credentials("owner"),
                           data=b'{"name": "leak\\u0000", "permission": "read_all"}',
                           headers={"Content-Type": "application/json"})
    err = assert_error(r, 400, "validation_failed")
    assert [d["field"] for d in err["details"]] == ["name"], err
