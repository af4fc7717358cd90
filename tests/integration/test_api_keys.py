"""Issue 3's "Must show" list (API keys end to end), against every deployment (see conftest.py).

People use Basic auth (the web server sets REMOTE_USER); integrations send X-API-Key. The tests
that need "a pool with >= 2 workers" (revocation seen by every worker, expiry, audit after a
graceful stop) run only where looped-fcgi runs its own pool; the rest runs everywhere.

Within one deployment the tests run in file order: the graceful-stop test stops the pool, so it
comes last (and restarts the pool anyway). Every raw key made here is remembered (RAW_KEYS) so that
the database scan (every document of every collection of the test database, and every file of the
stack: logs, configs, the store's files) can look for all of them.
"""

import datetime as dt
import hashlib
import hmac
import os
import re
import signal
import threading
import time
import uuid
import zlib
from pathlib import Path

import pytest
import requests

from looped_test.asserts import JSON_CT, assert_error, needs_pool
from looped_test.procs import wait_until

KEY_RE = re.compile(r"^looped_[0-9A-Za-z]{46}$")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

KEY_FIELDS = {"id", "name", "permission", "scopes", "status", "hint", "expires_at", "created_at",
              "created_by", "updated_at", "last_used_at", "last_used_ip", "revoked_at", "revoked_by",
              "rate_limit", "allowed_ips", "rotated_from", "rotated_to",
              "policy_violations"}  # the management endpoints' key object (api.md §6.4)
AUDIT_FIELDS = {"id", "at", "team_id", "actor", "action", "method", "path", "status", "ip",
                "user_agent", "request_id"}
SCOPE_CATALOG = {"customers": "billing", "products": "billing", "invoices": "billing",
                 "projects": "projects", "tasks": "projects", "time_entries": "time"}

# Every raw key this module made (all deployments): the database and log scan looks for them.
RAW_KEYS = []

# api.md: an edit, revoke or delete reaches every process within 1 s (the key-change feed).
CHANGE_SEEN_WITHIN = 1.0


# ---------------------------------------------------------------------------------------------
# helpers


def token():
    return uuid.uuid4().hex[:12]


def iso(t):
    """RFC 3339 UTC with milliseconds for a POSIX time."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def checksum(first47):
    """CRC-32 (zlib) of the first 47 characters as 6 base62 digits, most significant first."""
    crc = zlib.crc32(first47.encode()) & 0xFFFFFFFF
    out = ""
    for _ in range(6):
        out = BASE62[crc % 62] + out
        crc //= 62
    assert crc == 0
    return out


def hint_of(key):
    return "looped_" + key[7:11] + "\u2026" + key[-4:]


def keys_url(team="acme", key_id=None, suffix=""):
    return f"/v1/teams/{team}/api-keys" + (f"/{key_id}" if key_id else "") + suffix


def send(d, method, path, **kw):
    """d.request, once more on a kept-alive connection the web server closed while idle."""
    try:
        return d.request(method, path, **kw)
    except requests.ConnectionError:
        d.session.close()
        return d.request(method, path, **kw)


def person(d, stack, method, path, user="owner", **kw):
    return send(d, method, path, auth=stack.credentials(user), **kw)


def create(d, stack, name=None, permission="read_all", scopes=None, expires_at=None, user="owner",
           team="acme", **extra):
    """Creates a key (201 expected); returns the response body, raw key included."""
    body = {"name": name or f"it key {token()}", "permission": permission}
    if scopes is not None:
        body["scopes"] = scopes
    if expires_at is not None:
        body["expires_at"] = expires_at
    body.update(extra)
    r = person(d, stack, "POST", keys_url(team), user=user, json=body)
    assert r.status_code == 201, f"create {body}: {r.status_code} {r.text[:300]}"
    k = r.json()
    RAW_KEYS.append(k["key"])
    return k


def details(d, stack, key_id, team="acme"):
    r = person(d, stack, "GET", keys_url(team, key_id))
    assert r.status_code == 200, r.text
    return r.json()


def patch(d, stack, key_id, body, user="owner"):
    return person(d, stack, "PATCH", keys_url("acme", key_id), user=user, json=body)


def use(d, key, path="/v1/key", **kw):
    headers = kw.pop("headers", {})
    headers["X-API-Key"] = key
    return send(d, "GET", path, headers=headers, **kw)


def assert_no_secret(r, raw):
    """A management or key response that must not carry the raw key nor its random part."""
    assert raw not in r.text and raw[7:47] not in r.text, r.text[:300]


def listing(d, stack, query="", team="acme", user="owner"):
    r = person(d, stack, "GET", keys_url(team) + query, user=user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "has_more", "next_cursor"}, body
    return body


def list_all(d, stack, query):
    """Every key of the list `query` (bounded number of pages)."""
    out, cursor = [], None
    for _ in range(50):
        q = query + (("&" if "?" in query else "?") + "cursor=" + cursor if cursor else "")
        page = listing(d, stack, q)
        out += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            return out
    raise AssertionError("more than 50 pages")


def audit(d, stack, query):
    r = person(d, stack, "GET", "/v1/teams/acme/audit" + query)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "has_more", "next_cursor"}, body
    return body["data"]


def audit_until(d, stack, query, pred, what, timeout=5):
    """Polls the audit endpoint until pred(records) holds (the writer thread is asynchronous)."""
    return wait_until(lambda: (lambda recs: recs if pred(recs) else None)(audit(d, stack, query)),
                      timeout, what, interval=0.1)


def fan_out(d, n, headers, path="/v1/key", threads=8):
    """n GETs from `threads` threads with their own connections: [(status, X-Worker, json|None)]."""
    results = [None] * n
    counter = iter(range(n))
    lock = threading.Lock()

    def run():
        s = requests.Session()
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    r = s.get(d.url + path, headers=headers, timeout=15)
                    try:
                        body = r.json()
                    except ValueError:
                        body = None
                    results[i] = (r.status_code, r.headers.get("X-Worker"), body)
                except requests.RequestException as e:
                    results[i] = (f"{type(e).__name__}: {e}", None, None)
        finally:
            s.close()

    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "requests did not finish in time"
    return results


def forge(key, pos, keep_checksum=True):
    """key with the character at pos replaced by another base62 character."""
    c = key[pos]
    repl = BASE62[(BASE62.index(c) + 1) % 62]
    k = key[:pos] + repl + key[pos + 1:]
    if not keep_checksum:
        k = k[:47] + checksum(k[:47])
    return k


# ---------------------------------------------------------------------------------------------
# scope catalog (no auth)


def test_scopes_catalog(deployment):
    r = deployment.get("/v1/scopes")
    assert r.status_code == 200, r.text
    assert JSON_CT.match(r.headers["Content-Type"])
    data = r.json()["data"]
    assert len(data) == 12, data
    seen = set()
    for s in data:
        assert set(s) == {"scope", "resource", "app", "access", "description"}, s
        assert s["access"] in ("read", "write"), s
        assert s["scope"] == f"{s['resource']}:{s['access']}", s
        assert SCOPE_CATALOG.get(s["resource"]) == s["app"], s
        assert isinstance(s["description"], str) and s["description"], s
        seen.add(s["scope"])
    assert seen == {f"{res}:{a}" for res in SCOPE_CATALOG for a in ("read", "write")}


# ---------------------------------------------------------------------------------------------
# creation, the key's shape, hint, and that it is shown once


def test_create_returns_key_once(deployment, stack):
    d = deployment
    name = f"Zapier production {token()}"
    r = person(d, stack, "POST", keys_url(), json={"name": f"  {name}  ", "permission": "read_all"})
    assert r.status_code == 201, r.text
    k = r.json()
    raw = k["key"]
    RAW_KEYS.append(raw)
    assert set(k) == KEY_FIELDS | {"key"}, k
    assert KEY_RE.match(raw), raw
    assert raw[47:] == checksum(raw[:47]), raw
    assert k["hint"] == hint_of(raw), (k["hint"], raw)
    assert k["id"].startswith("key_"), k
    assert r.headers.get("Location", "").endswith(keys_url("acme", k["id"])), r.headers
    assert k["name"] == name  # trimmed
    assert (k["permission"], k["scopes"], k["status"]) == ("read_all", [], "active")
    assert k["created_by"] == "owner"
    for f in ("expires_at", "last_used_at", "last_used_ip", "revoked_at", "revoked_by"):
        assert k[f] is None, (f, k)
    for f in ("created_at", "updated_at"):
        assert RFC3339_Z.match(k[f]), (f, k[f])
    assert abs(parse_time(k["created_at"]) - time.time()) < 30

    # Details and list: the same object, never the key.
    r = person(d, stack, "GET", keys_url("acme", k["id"]))
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == KEY_FIELDS, got
    assert got == {f: v for f, v in k.items() if f != "key"}
    assert_no_secret(r, raw)
    r = person(d, stack, "GET", keys_url() + "?limit=100")
    assert r.status_code == 200
    assert_no_secret(r, raw)
    mine = [x for x in r.json()["data"] if x["id"] == k["id"]]
    assert len(mine) == 1 and "key" not in mine[0] and set(mine[0]) == KEY_FIELDS, mine

    # The key works, and what it says about itself carries no secret either.
    r = use(d, raw)
    assert r.status_code == 200, r.text
    assert_no_secret(r, raw)
    body = r.json()
    assert body["team"] == {"id": "acme"}, body
    assert body["key"]["id"] == k["id"] and body["key"]["permission"] == "read_all", body
    assert "Looped-Key-Expires-At" not in r.headers  # no expires_at


def test_key_randomness_and_checksums(deployment, stack):
    """A few fresh keys: all distinct, all well formed, hints match."""
    d = deployment
    keys = [create(d, stack)["key"] for _ in range(3)]
    assert len(set(keys)) == 3
    assert len({k[7:47] for k in keys}) == 3
    for k in keys:
        assert KEY_RE.match(k) and k[47:] == checksum(k[:47]), k


def test_missing_and_invalid_keys_401(deployment, stack):
    d = deployment
    raw = create(d, stack)["key"]
    assert use(d, raw).status_code == 200

    assert_error(send(d, "GET", "/v1/key"), 401, "missing_api_key")
    bad = [
        forge(raw, 7),                        # one random character changed: checksum fails
        forge(raw, 30),
        forge(raw, 52),                       # one checksum character changed
        forge(raw, 20, keep_checksum=False),  # well formed, checksum right, but unknown
        "Looped_" + raw[7:],                  # prefix
        raw[:-1],                             # too short
        raw + "0",                            # too long
        raw[:20] + "-" + raw[21:],            # not base62
        "looped_",
        "bearer " + raw,
    ]
    for k in bad:
        assert k != raw
        err = assert_error(use(d, k), 401, "invalid_api_key")
        assert raw not in str(err)
    # The real key still works afterwards.
    assert use(d, raw).status_code == 200


def test_api_key_does_not_authenticate_management(deployment, stack):
    d = deployment
    raw = create(d, stack, permission="write_all")["key"]
    r = send(d, "GET", keys_url(), headers={"X-API-Key": raw})
    assert r.status_code == 401, r.text
    r = send(d, "POST", keys_url(), headers={"X-API-Key": raw}, json={"name": "x", "permission": "read_all"})
    assert r.status_code == 401, r.text


# ---------------------------------------------------------------------------------------------
# roles and cross-origin rules


def _management_calls(key_id):
    return [
        ("GET", keys_url(), None),
        ("POST", keys_url(), {"name": "by someone", "permission": "read_all"}),
        ("GET", keys_url("acme", key_id), None),
        ("PATCH", keys_url("acme", key_id), {"name": "renamed by someone"}),
        ("POST", keys_url("acme", key_id, "/revoke"), None),
        ("DELETE", keys_url("acme", key_id), None),
        ("GET", "/v1/teams/acme/audit", None),
    ]


@pytest.mark.parametrize("user", ["owner", "admin"])
def test_owner_and_admin_manage(deployment, stack, user):
    d = deployment
    k = create(d, stack, user=user)
    assert k["created_by"] == user
    assert any(x["id"] == k["id"] for x in list_all(d, stack, f"?q={k['name'].split()[-1]}"))
    r = patch(d, stack, k["id"], {"name": f"renamed by {user}"}, user=user)
    assert r.status_code == 200 and r.json()["name"] == f"renamed by {user}", r.text
    r = person(d, stack, "POST", keys_url("acme", k["id"], "/revoke"), user=user)
    assert r.status_code == 200 and r.json()["revoked_by"] == user, r.text
    r = person(d, stack, "GET", "/v1/teams/acme/audit?limit=1", user=user)
    assert r.status_code == 200, r.text
    r = person(d, stack, "DELETE", keys_url("acme", k["id"]), user=user)
    assert r.status_code == 204, r.text
    assert r.content == b""


@pytest.mark.parametrize("user,status,code", [("member", 403, "forbidden"), ("outsider", 404, "not_found")])
def test_member_forbidden_outsider_not_found(deployment, stack, user, status, code):
    d = deployment
    k = create(d, stack)
    before = details(d, stack, k["id"])
    for method, path, body in _management_calls(k["id"]):
        r = person(d, stack, method, path, user=user, json=body) if body is not None else \
            person(d, stack, method, path, user=user)
        assert_error(r, status, code)
    # Nothing happened to the key.
    assert details(d, stack, k["id"]) == before
    assert use(d, k["key"]).status_code == 200


def test_other_team_key_and_unknown_team_not_found(deployment, stack):
    d = deployment
    g = create(d, stack, user="outsider", team="globex")
    assert_error(person(d, stack, "GET", keys_url("acme", g["id"])), 404, "not_found")
    assert_error(person(d, stack, "PATCH", keys_url("acme", g["id"]), json={"name": "x"}), 404, "not_found")
    assert_error(person(d, stack, "POST", keys_url("acme", g["id"], "/revoke")), 404, "not_found")
    assert_error(person(d, stack, "DELETE", keys_url("acme", g["id"])), 404, "not_found")
    assert_error(person(d, stack, "GET", keys_url("nope")), 404, "not_found")
    assert_error(person(d, stack, "GET", keys_url("acme", "key_doesnotexist000000000")), 404, "not_found")
    # The globex key belongs to globex.
    r = use(d, g["key"])
    assert r.status_code == 200 and r.json()["team"] == {"id": "globex"}, r.text
    assert not any(x["id"] == g["id"] for x in list_all(d, stack, "?limit=100"))


def test_no_credentials_401(deployment, stack):
    d = deployment
    k = create(d, stack)
    for method, path, body in _management_calls(k["id"]):
        r = send(d, method, path, json=body) if body is not None else send(d, method, path)
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text[:200]}"
    r = send(d, "GET", keys_url(), auth=("owner", "wrong password"))
    assert r.status_code == 401, r.text
    assert details(d, stack, k["id"])["status"] == "active"


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"},
                                     {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:1"},
                                     {"Sec-Fetch-Site": "cross-site"}],
                         ids=["foreign-origin", "null-origin", "other-port", "sec-fetch-site"])
def test_cross_origin_state_change_403(deployment, stack, headers):
    d = deployment
    k = create(d, stack)
    name = f"cross {token()}"
    r = person(d, stack, "POST", keys_url(), headers=headers, json={"name": name, "permission": "read_all"})
    assert_error(r, 403, "cross_origin_request")
    assert list_all(d, stack, f"?q={name.split()[-1]}") == []
    assert_error(person(d, stack, "PATCH", keys_url("acme", k["id"]), headers=headers,
                        json={"name": "x"}), 403, "cross_origin_request")
    assert_error(person(d, stack, "POST", keys_url("acme", k["id"], "/revoke"), headers=headers),
                 403, "cross_origin_request")
    assert_error(person(d, stack, "DELETE", keys_url("acme", k["id"]), headers=headers),
                 403, "cross_origin_request")
    assert details(d, stack, k["id"])["status"] == "active"
    # Reading is not a state change.
    r = person(d, stack, "GET", keys_url("acme", k["id"]), headers=headers)
    assert r.status_code == 200, r.text


def test_origin_of_the_other_scheme_403(deployment, stack):
    """https://host:port is another origin than the page of http://host:port (the scheme counts)."""
    d = deployment
    other = d.url.replace("http://", "https://", 1)
    r = person(d, stack, "POST", keys_url(), headers={"Origin": other},
               json={"name": f"other scheme {token()}", "permission": "read_all"})
    assert_error(r, 403, "cross_origin_request")
    r = person(d, stack, "POST", keys_url(), headers={"Origin": d.url.replace("http://", "HTTP://", 1)},
               json={"name": f"same origin, scheme in capitals {token()}", "permission": "read_all"})
    assert r.status_code == 201, r.text
    RAW_KEYS.append(r.json()["key"])


def test_same_origin_state_change_allowed(deployment, stack):
    d = deployment
    for headers in ({"Origin": d.url}, {"Sec-Fetch-Site": "same-origin"}, {}):
        r = person(d, stack, "POST", keys_url(), headers=headers,
                   json={"name": f"same origin {token()}", "permission": "read_all"})
        assert r.status_code == 201, (headers, r.text)
        RAW_KEYS.append(r.json()["key"])


# ---------------------------------------------------------------------------------------------
# validation


LONG = "x" * 101

CREATE_BAD = [
    ({"name": "", "permission": "read_all"}, "name"),
    ({"name": "   \t ", "permission": "read_all"}, "name"),
    ({"name": LONG, "permission": "read_all"}, "name"),
    ({"name": 5, "permission": "read_all"}, "name"),
    ({"name": None, "permission": "read_all"}, "name"),
    ({"name": ["a"], "permission": "read_all"}, "name"),
    ({"permission": "read_all"}, "name"),
    ({"name": "ok"}, "permission"),
    ({"name": "ok", "permission": "admin"}, "permission"),
    ({"name": "ok", "permission": None}, "permission"),
    ({"name": "ok", "permission": "restricted"}, "scopes"),
    ({"name": "ok", "permission": "restricted", "scopes": []}, "scopes"),
    ({"name": "ok", "permission": "restricted", "scopes": ["nope:read"]}, "scopes"),
    ({"name": "ok", "permission": "restricted", "scopes": ["customers:delete"]}, "scopes"),
    ({"name": "ok", "permission": "restricted", "scopes": [42]}, "scopes"),
    ({"name": "ok", "permission": "restricted", "scopes": "customers:read"}, "scopes"),
    ({"name": "ok", "permission": "read_all", "scopes": ["customers:read"]}, "scopes"),
    ({"name": "ok", "permission": "write_all", "scopes": ["invoices:write"]}, "scopes"),
    ({"name": "ok", "permission": "read_all", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "ok", "permission": "read_all", "expires_at": "2030-13-01T00:00:00Z"}, "expires_at"),
    ({"name": "ok", "permission": "read_all", "expires_at": 1893456000}, "expires_at"),
    ({"name": "ok", "permission": "read_all", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "ok", "permission": "read_all", "color": "red"}, "color"),
    ({"name": "ok", "permission": "read_all", "$set": {"x": 1}}, "$set"),
    ({"name": "ok", "permission": "read_all", "key": "looped_x"}, "key"),
]


def _fields(err):
    assert isinstance(err.get("details"), list) and err["details"], err
    for det in err["details"]:
        assert set(det) == {"field", "message"} and det["message"], det
    return [det["field"] for det in err["details"]]


def _names_field(fields, field):
    return any(f == field or f.startswith(field + "[") for f in fields)


@pytest.mark.parametrize("body,field", CREATE_BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(CREATE_BAD)])
def test_create_validation(deployment, stack, body, field):
    r = person(deployment, stack, "POST", keys_url(), json=body)
    err = assert_error(r, 400, "validation_failed")
    fields = _fields(err)
    assert _names_field(fields, field), (field, err)


def test_create_validation_boundaries(deployment, stack):
    d = deployment
    # 100 characters (not bytes) is fine; trimmed whitespace does not count.
    for name in ("y" * 100, "\u00e9" * 100, "  " + "z" * 100 + "  "):
        k = create(d, stack, name=name)
        assert k["name"] == name.strip()
    k = create(d, stack, permission="restricted", scopes=["invoices:write", "customers:read"])
    assert k["permission"] == "restricted"
    assert sorted(k["scopes"]) == ["customers:read", "invoices:write"], k
    k = create(d, stack, expires_at=iso(time.time() + 86400)[:-1] + "+00:00")
    assert k["expires_at"] and RFC3339_Z.match(k["expires_at"]), k


@pytest.mark.parametrize("data", [b"[1, 2]", b'"a string"', b"42", b"null", b"true"],
                         ids=["array", "string", "number", "null", "true"])
def test_create_non_object_body(deployment, stack, data):
    r = person(deployment, stack, "POST", keys_url(), data=data, headers={"Content-Type": "application/json"})
    err = assert_error(r, 400, "validation_failed")
    _fields(err)


@pytest.mark.parametrize("data", [b"{", b"{\"name\": }", b"not json", b"{\"name\": \"a\"} trailing"],
                         ids=["open", "no-value", "text", "trailing"])
def test_create_invalid_json(deployment, stack, data):
    r = person(deployment, stack, "POST", keys_url(), data=data, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


PATCH_BAD = [
    ({"name": ""}, "name"),
    ({"name": "  "}, "name"),
    ({"name": LONG}, "name"),
    ({"name": 1}, "name"),
    ({"permission": "owner"}, "permission"),
    ({"permission": "restricted"}, "scopes"),         # the key is read_all: no scopes yet
    ({"permission": "restricted", "scopes": []}, "scopes"),
    ({"permission": "restricted", "scopes": ["customers:nope"]}, "scopes"),
    ({"scopes": ["customers:read"]}, "scopes"),       # read_all takes no scopes
    ({"permission": "write_all", "scopes": ["customers:read"]}, "scopes"),
    ({"expires_at": "yesterday"}, "expires_at"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"status": "revoked"}, "status"),
    ({"hint": "looped_x"}, "hint"),
]


@pytest.fixture(scope="module")
def patch_target(deployment, stack):
    return create(deployment, stack, name=f"patch target {token()}")


@pytest.mark.parametrize("body,field", PATCH_BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(PATCH_BAD)])
def test_patch_validation(deployment, stack, patch_target, body, field):
    d = deployment
    before = details(d, stack, patch_target["id"])
    err = assert_error(patch(d, stack, patch_target["id"], body), 400, "validation_failed")
    assert _names_field(_fields(err), field), (field, err)
    assert details(d, stack, patch_target["id"]) == before  # nothing changed


def test_patch_bad_bodies(deployment, stack, patch_target):
    d = deployment
    url = keys_url("acme", patch_target["id"])
    r = person(d, stack, "PATCH", url, data=b"[]", headers={"Content-Type": "application/json"})
    _fields(assert_error(r, 400, "validation_failed"))
    r = person(d, stack, "PATCH", url, data=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


@pytest.mark.parametrize("query,status,code,field", [
    ("?status=bogus", 400, "validation_failed", "status"),
    ("?status=", 400, "validation_failed", "status"),
    ("?limit=0", 400, "validation_failed", "limit"),
    ("?limit=101", 400, "validation_failed", "limit"),
    ("?limit=ten", 400, "validation_failed", "limit"),
    ("?limit=-1", 400, "validation_failed", "limit"),
    ("?sort=name", 400, "unknown_parameter", None),
    ("?Status=active", 400, "unknown_parameter", None),
    ("?cursor=garbage", 400, "invalid_cursor", None),
    ("?cursor=", 400, "invalid_cursor", None),
], ids=["status", "status-empty", "limit0", "limit101", "limit-text", "limit-neg", "unknown", "case",
        "cursor-garbage", "cursor-empty"])
def test_list_bad_queries(deployment, stack, query, status, code, field):
    err = assert_error(person(deployment, stack, "GET", keys_url() + query), status, code)
    if field:
        assert field in _fields(err), err


# ---------------------------------------------------------------------------------------------
# listing: filters and pages


def test_list_filters_status_and_q(deployment, stack):
    d = deployment
    tok = token()
    active = create(d, stack, name=f"Filter-{tok}-Active")
    revoked = create(d, stack, name=f"filter-{tok}-revoked")
    dotted = create(d, stack, name=f"dot.ted-{tok}")
    undotted = create(d, stack, name=f"dotXted-{tok}")
    r = person(d, stack, "POST", keys_url("acme", revoked["id"], "/revoke"))
    assert r.status_code == 200, r.text

    def ids(q):
        return {x["id"] for x in list_all(d, stack, q)}

    everything = {active["id"], revoked["id"], dotted["id"], undotted["id"]}
    assert ids(f"?q={tok}") == everything
    assert ids(f"?q={tok.upper()}") == everything               # case-insensitive
    assert ids(f"?q=FILTER-{tok}") == {active["id"], revoked["id"]}
    assert ids(f"?q=filter-{tok}-ACT") == {active["id"]}
    assert ids(f"?q=dot.ted-{tok}") == {dotted["id"]}           # '.' is not a wildcard
    assert ids(f"?q={tok}&status=active") == {active["id"], dotted["id"], undotted["id"]}
    assert ids(f"?q={tok}&status=revoked") == {revoked["id"]}
    assert ids(f"?q={tok}&status=expired") == set()
    assert ids("?q=%28%5B*+nothing+like+this") == set()         # regex characters are literal
    for x in list_all(d, stack, "?status=revoked&limit=100"):
        assert x["status"] == "revoked" and x["revoked_at"], x
    for x in list_all(d, stack, "?status=active&limit=100"):
        assert x["status"] == "active" and not x["revoked_at"], x


def test_list_pagination_newest_first(deployment, stack):
    d = deployment
    tok = token()
    made = [create(d, stack, name=f"page {tok} {i:02d}")["id"] for i in range(25)]
    seen, pages, cursor, first_cursor = [], 0, None, None
    for _ in range(10):
        page = listing(d, stack, f"?q={tok}&limit=7" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        assert len(page["data"]) == (7 if page["has_more"] else 25 - 21), page
        seen += page["data"]
        cursor = page["next_cursor"]
        if pages == 1:
            first_cursor = cursor
            # A key made while paging is newer than the cursor: it does not shift later pages.
            late = create(d, stack, name=f"page {tok} late")["id"]
        if not page["has_more"]:
            assert cursor is None
            break
        assert isinstance(cursor, str) and cursor
    assert pages == 4
    got = [x["id"] for x in seen]
    assert sorted(got) == sorted(made) and len(set(got)) == 25, "each key exactly once"
    assert late not in got
    order = [(x["created_at"], x["id"]) for x in seen]
    assert order == sorted(order, reverse=True), "newest first, then id"
    every = [x["id"] for x in list_all(d, stack, f"?q={tok}")]
    assert sorted(every) == sorted(made + [late])

    # A tampered cursor, or one of another list, is refused.
    r = person(d, stack, "GET", keys_url() + f"?q={tok}&limit=7&cursor={first_cursor}")
    assert r.status_code == 200, r.text
    for i in (0, len(first_cursor) // 2, len(first_cursor) - 1):
        c = first_cursor
        tampered = c[:i] + ("A" if c[i] != "A" else "B") + c[i + 1:]
        assert_error(person(d, stack, "GET", keys_url() + f"?limit=7&cursor={tampered}"), 400, "invalid_cursor")
    r = person(d, stack, "GET", "/v1/teams/acme/audit?limit=1")
    audit_cursor = r.json()["next_cursor"]
    if audit_cursor:
        assert_error(person(d, stack, "GET", keys_url() + f"?cursor={audit_cursor}"), 400, "invalid_cursor")


# ---------------------------------------------------------------------------------------------
# edit


def test_edit_keeps_key_value_with_new_permissions(deployment, stack):
    d = deployment
    k = create(d, stack, permission="restricted", scopes=["customers:read"])
    raw = k["key"]
    me = use(d, raw).json()["key"]
    assert (me["permission"], me["scopes"]) == ("restricted", ["customers:read"]), me

    new_name = f"edited {token()}"
    exp = iso(time.time() + 3600)
    r = patch(d, stack, k["id"], {"name": new_name, "scopes": ["invoices:write", "customers:read"],
                                  "expires_at": exp})
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == KEY_FIELDS
    assert_no_secret(r, raw)
    assert got["name"] == new_name and got["permission"] == "restricted"
    assert sorted(got["scopes"]) == ["customers:read", "invoices:write"]
    assert abs(parse_time(got["expires_at"]) - parse_time(exp)) < 0.002
    assert got["hint"] == k["hint"] and got["created_at"] == k["created_at"]
    assert parse_time(got["updated_at"]) >= parse_time(k["updated_at"])
    now = details(d, stack, k["id"])
    assert {f: v for f, v in now.items() if not f.startswith("last_used")} == \
        {f: v for f, v in got.items() if not f.startswith("last_used")}

    # Other processes may hold the old object until they read the key-change feed (< 1 s).
    time.sleep(CHANGE_SEEN_WITHIN + 0.1)
    for _ in range(6):
        r = use(d, raw)
        assert r.status_code == 200, r.text
        me = r.json()["key"]
        assert me["name"] == new_name and sorted(me["scopes"]) == ["customers:read", "invoices:write"], me
        assert parse_time(r.headers["Looped-Key-Expires-At"]) == parse_time(got["expires_at"]), r.headers

    first = got
    r = patch(d, stack, k["id"], {"permission": "write_all", "expires_at": None})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["permission"], got["scopes"], got["expires_at"]) == ("write_all", [], None), got
    r = patch(d, stack, k["id"], {})
    assert r.status_code == 200 and r.json()["permission"] == "write_all", r.text
    time.sleep(CHANGE_SEEN_WITHIN + 0.1)
    for _ in range(6):
        r = use(d, raw)
        assert r.status_code == 200, r.text
        assert (r.json()["key"]["permission"], r.json()["key"]["scopes"]) == ("write_all", []), r.text
        assert "Looped-Key-Expires-At" not in r.headers, r.headers

    # api_key.updated records list exactly the changed fields, old and new.
    recs = audit_until(d, stack, f"?key_id={k['id']}&action=api_key.updated",
                       lambda rs: len(rs) >= 3, "three api_key.updated records")
    assert len(recs) == 3, recs
    changes = [x.get("changes") or {} for x in recs]
    assert {"name": {"old": k["name"], "new": new_name},
            "scopes": {"old": ["customers:read"], "new": first["scopes"]},
            "expires_at": {"old": None, "new": first["expires_at"]}} in changes, changes
    assert {"permission": {"old": "restricted", "new": "write_all"},
            "scopes": {"old": first["scopes"], "new": []},
            "expires_at": {"old": first["expires_at"], "new": None}} in changes, changes
    assert {} in changes, changes  # the empty PATCH changed nothing


# ---------------------------------------------------------------------------------------------
# delete


def test_delete(deployment, stack):
    d = deployment
    k = create(d, stack, name=f"to delete {token()}")
    assert use(d, k["key"]).status_code == 200
    r = person(d, stack, "DELETE", keys_url("acme", k["id"]))
    assert r.status_code == 204, r.text
    assert_error(person(d, stack, "GET", keys_url("acme", k["id"])), 404, "not_found")
    assert_error(person(d, stack, "DELETE", keys_url("acme", k["id"])), 404, "not_found")
    assert_error(person(d, stack, "PATCH", keys_url("acme", k["id"]), json={"name": "x"}), 404, "not_found")
    assert not any(x["id"] == k["id"] for x in list_all(d, stack, f"?q={k['name'].split()[-1]}"))
    # Refused by every process within 1 s.
    time.sleep(CHANGE_SEEN_WITHIN + 0.05)
    for _ in range(6):
        assert_error(use(d, k["key"]), 401, "invalid_api_key")

    # Its audit records stay, with its id and name.
    recs = audit_until(d, stack, f"?key_id={k['id']}",
                       lambda rs: {"api_key.created", "api.request", "api_key.deleted"} <= {x["action"] for x in rs},
                       "created, api.request and deleted records of the deleted key")
    for x in recs:
        assert x["key_id"] == k["id"] and x.get("key_name") == k["name"], x
    deleted = [x for x in recs if x["action"] == "api_key.deleted"]
    assert len(deleted) == 1 and deleted[0]["status"] == 204 and deleted[0]["method"] == "DELETE", deleted
    assert deleted[0]["actor"] == {"type": "user", "id": "owner"}, deleted[0]


# ---------------------------------------------------------------------------------------------
# revoke and edit stick while the key is in use (its last-used time is written meanwhile)


def test_revoke_and_edit_stick_while_key_in_use(deployment, stack, mongo):
    """Each key's first use makes every process write last_used_at at once; a revoke or an edit
    made at that moment must not be undone by that write."""
    d = deployment
    _, db = mongo
    keys = [create(d, stack, name=f"busy {token()}") for _ in range(24)]
    errors = []

    def run(i, k):
        s = requests.Session()
        try:
            for _ in range(2):
                s.get(d.url + "/v1/key", headers={"X-API-Key": k["key"]}, timeout=15)
            url = d.url + keys_url("acme", k["id"])
            if i % 2 == 0:
                r = s.post(url + "/revoke", auth=stack.credentials("owner"), timeout=15)
            else:
                r = s.patch(url, auth=stack.credentials("owner"), timeout=15,
                            json={"permission": "restricted", "scopes": ["customers:read"]})
            if r.status_code != 200:
                errors.append((k["id"], r.status_code, r.text[:200]))
        except requests.RequestException as e:
            errors.append((k["id"], repr(e)))
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i, k), daemon=True) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    time.sleep(0.5)  # the last-used writes of the first uses are done by now (2 s at most)
    lost = []
    for i, k in enumerate(keys):
        doc = db.api_keys.find_one({"_id": k["id"]})
        if i % 2 == 0 and doc.get("revoked_at") is None:
            lost.append((k["id"], "revoke undone", doc.get("last_used_at")))
        if i % 2 == 1 and (doc.get("permission"), doc.get("scopes")) != ("restricted", ["customers:read"]):
            lost.append((k["id"], "edit undone", doc.get("permission"), doc.get("last_used_at")))
    assert not lost, f"{len(lost)} of {len(keys)} management writes were lost: {lost}"
    time.sleep(CHANGE_SEEN_WITHIN)
    for i, k in enumerate(keys[:4]):
        r = use(d, k["key"])
        if i % 2 == 0:
            assert_error(r, 401, "revoked_api_key")
        else:
            assert r.status_code == 200 and r.json()["key"]["scopes"] == ["customers:read"], r.text


# ---------------------------------------------------------------------------------------------
# last used


def test_last_used_within_two_seconds(deployment, stack):
    d = deployment
    k = create(d, stack)
    assert details(d, stack, k["id"])["last_used_at"] is None
    t_wall = time.time()
    r = use(d, k["key"])
    assert r.status_code == 200, r.text
    t0 = time.monotonic()
    got = None
    while time.monotonic() < t0 + 2.0:
        got = details(d, stack, k["id"])
        if got["last_used_at"]:
            break
        time.sleep(0.05)
    assert got and got["last_used_at"], f"last_used_at not set within 2 s: {got}"
    assert got["last_used_ip"] == "127.0.0.1", got
    assert abs(parse_time(got["last_used_at"]) - t_wall) < 5, (got, t_wall)


# ---------------------------------------------------------------------------------------------
# audit records


def test_audit_records_and_filters(deployment, stack):
    d = deployment
    k = create(d, stack, name=f"audited {token()}", permission="restricted", scopes=["tasks:read"])
    kid, raw = k["id"], k["key"]
    rid = f"it-{uuid.uuid4().hex}"
    ua = f"looped-it/{token()}"
    r = use(d, raw, path="/v1/key?secret=1&x=2", headers={"X-Request-Id": rid, "User-Agent": ua})
    assert_error(r, 400, "unknown_parameter")
    r = use(d, raw, headers={"User-Agent": ua})
    assert r.status_code == 200
    r = patch(d, stack, kid, {"name": k["name"] + " v2", "scopes": ["tasks:write"]}, user="admin")
    assert r.status_code == 200, r.text
    r = person(d, stack, "POST", keys_url("acme", kid, "/revoke"))
    assert r.status_code == 200, r.text
    time.sleep(CHANGE_SEEN_WITHIN + 0.05)
    assert_error(use(d, raw, headers={"User-Agent": ua}), 401, "revoked_api_key")

    want = {"api_key.created": 1, "api_key.updated": 1, "api_key.revoked": 1, "api.request": 3}
    recs = audit_until(d, stack, f"?key_id={kid}&limit=100",
                       lambda rs: all(sum(x["action"] == a for x in rs) >= n for a, n in want.items()),
                       f"audit records {want}")
    time.sleep(0.3)  # nothing more arrives
    recs = audit(d, stack, f"?key_id={kid}&limit=100")
    assert {a: sum(x["action"] == a for x in recs) for a in want} == want, recs
    order = [(x["at"], x["id"]) for x in recs]
    assert order == sorted(order, reverse=True), "newest first"
    for x in recs:
        assert AUDIT_FIELDS <= set(x), x
        assert x["team_id"] == "acme" and RFC3339_Z.match(x["at"]), x
        assert x["ip"] == "127.0.0.1", x
        assert "?" not in x["path"], x
        assert raw not in str(x) and raw[7:47] not in str(x), x
        if x["action"] == "api.request":
            assert x["actor"]["type"] == "api_key" and x["actor"]["id"] == kid, x
            assert set(x["actor"]) == {"type", "id", "name"} and x["actor"]["name"].startswith(k["name"]), x
            assert (x["method"], x["path"]) == ("GET", "/v1/key"), x
            assert x["user_agent"] == ua, x
        else:
            assert x["actor"]["type"] == "user" and set(x["actor"]) == {"type", "id"}, x
    by_rid = [x for x in recs if x["request_id"] == rid]
    assert len(by_rid) == 1 and by_rid[0]["status"] == 400 and by_rid[0]["path"] == "/v1/key", by_rid
    statuses = sorted(x["status"] for x in recs if x["action"] == "api.request")
    assert statuses == [200, 400, 401], statuses

    created = next(x for x in recs if x["action"] == "api_key.created")
    assert created["actor"] == {"type": "user", "id": "owner"}, created
    assert (created["method"], created["path"], created["status"]) == ("POST", "/v1/teams/acme/api-keys", 201)
    updated = next(x for x in recs if x["action"] == "api_key.updated")
    assert updated["actor"] == {"type": "user", "id": "admin"}, updated
    assert (updated["method"], updated["path"]) == ("PATCH", keys_url("acme", kid)), updated
    assert updated["changes"] == {"name": {"old": k["name"], "new": k["name"] + " v2"},
                                  "scopes": {"old": ["tasks:read"], "new": ["tasks:write"]}}, updated
    revoked = next(x for x in recs if x["action"] == "api_key.revoked")
    assert revoked["actor"] == {"type": "user", "id": "owner"}, revoked
    assert (revoked["method"], revoked["path"]) == ("POST", keys_url("acme", kid, "/revoke")), revoked

    # Filters: action, actor, since/until (compared with the full list), pages.
    assert [x["id"] for x in audit(d, stack, f"?key_id={kid}&action=api_key.updated")] == [updated["id"]]
    only_req = audit(d, stack, f"?key_id={kid}&action=api.request")
    assert len(only_req) == 3 and all(x["action"] == "api.request" for x in only_req)
    assert {x["id"] for x in audit(d, stack, f"?key_id={kid}&actor=admin")} == {updated["id"]}
    assert {x["id"] for x in audit(d, stack, f"?key_id={kid}&actor={kid}")} == {x["id"] for x in only_req}
    assert audit(d, stack, f"?key_id={kid}&actor=nobody") == []
    assert audit(d, stack, "?key_id=key_nonexistent00000000000") == []
    ats = sorted({x["at"] for x in recs})
    for since, until in [(ats[1], None), (None, ats[-2]), (ats[1], ats[-2]), (updated["at"], updated["at"])]:
        q = f"?key_id={kid}" + (f"&since={since}" if since else "") + (f"&until={until}" if until else "")
        want_ids = {x["id"] for x in recs
                    if (since is None or parse_time(x["at"]) >= parse_time(since))
                    and (until is None or parse_time(x["at"]) <= parse_time(until))}
        assert {x["id"] for x in audit(d, stack, q)} == want_ids, q
    paged, cursor = [], None
    for _ in range(10):
        r = person(d, stack, "GET", f"/v1/teams/acme/audit?key_id={kid}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        paged += r.json()["data"]
        cursor = r.json()["next_cursor"]
        if not r.json()["has_more"]:
            break
    assert [x["id"] for x in paged] == [x["id"] for x in recs]

    # Bad audit queries.
    for q, code, field in [("?since=yesterday", "validation_failed", "since"),
                           ("?until=2020-02-30T00:00:00Z", "validation_failed", "until"),
                           ("?limit=0", "validation_failed", "limit"),
                           ("?limit=101", "validation_failed", "limit"),
                           ("?verbose=1", "unknown_parameter", None),
                           ("?cursor=abc.def", "invalid_cursor", None)]:
        err = assert_error(person(d, stack, "GET", "/v1/teams/acme/audit" + q), 400, code)
        if field:
            assert field in _fields(err), (q, err)


# ---------------------------------------------------------------------------------------------
# what is stored: only the HMAC, never the key (also in no log and no store file)


def _strings(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}(name)", str(k)
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, (bytes, bytearray)):
        yield path, bytes(value).decode("latin-1")
    else:
        yield path, str(value)


def test_database_holds_only_hmac(deployment, stack, mongo):
    d = deployment
    _, db = mongo
    mine = [create(d, stack, permission=p, scopes=s)
            for p, s in (("read_all", None), ("write_all", None), ("restricted", ["projects:write"]))]
    for k in mine:
        assert use(d, k["key"]).status_code == 200
    assert len(RAW_KEYS) > 10

    pepper = Path(stack.pepper).read_bytes()
    assert len(pepper) >= 32
    for k in mine:
        doc = db.api_keys.find_one({"_id": k["id"]})
        assert doc is not None, k["id"]
        assert doc["hash"] == hmac.new(pepper, k["key"].encode(), hashlib.sha256).hexdigest(), doc
        assert doc["hash_version"] == 1, doc
        assert doc["hint"] == hint_of(k["key"])
        assert "key" not in doc

    needles = set()
    for raw in RAW_KEYS:
        needles.add(raw)
        needles.add(raw[7:47])
    scanned = 0
    for cname in db.list_collection_names():
        for doc in db[cname].find({}):
            scanned += 1
            for path, s in _strings(doc):
                for n in needles:
                    assert n not in s, f"{cname} {doc.get('_id')} {path} holds a raw key"
    assert scanned > len(mine)

    # Nor in any log, config or store file of the stack (the store's files included).
    blobs = [n.encode() for n in needles]
    for root, _, files in os.walk(stack.base):
        for f in files:
            p = Path(root) / f
            try:
                if not p.is_file() or p.stat().st_size > 256 * 1048576:
                    continue
                data = p.read_bytes()
            except OSError:
                continue
            for b in blobs:
                assert b not in data, f"{p} holds a raw key"


# ---------------------------------------------------------------------------------------------
# pool with >= 2 workers: expiry, revocation across workers, audit after a graceful stop


def test_expiry_and_reactivation(deployment, stack):
    d = deployment
    needs_pool(d)
    exp_t = time.time() + 3.0
    k = create(d, stack, name=f"expiring {token()}", expires_at=iso(exp_t))
    raw = k["key"]
    assert k["status"] == "active" and k["expires_at"]
    r = use(d, raw)
    assert r.status_code == 200, r.text
    assert parse_time(r.headers["Looped-Key-Expires-At"]) == parse_time(k["expires_at"]), r.headers

    time.sleep(max(0.0, exp_t - time.time()) + 0.2)
    for status, _, body in fan_out(d, 12, {"X-API-Key": raw}, threads=4):
        assert status == 401 and body["error"]["code"] == "expired_api_key", (status, body)
    r = use(d, raw)
    assert_error(r, 401, "expired_api_key")
    assert parse_time(r.headers["Looped-Key-Expires-At"]) == parse_time(k["expires_at"]), r.headers
    assert details(d, stack, k["id"])["status"] == "expired"
    tok = k["name"].split()[-1]
    assert [x["id"] for x in list_all(d, stack, f"?q={tok}&status=expired")] == [k["id"]]
    assert list_all(d, stack, f"?q={tok}&status=active") == []
    assert all(x["status"] == "expired" for x in list_all(d, stack, "?status=expired&limit=100"))

    new_exp = iso(time.time() + 3600)
    r = patch(d, stack, k["id"], {"expires_at": new_exp})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert details(d, stack, k["id"])["status"] == "active"
    assert [x["id"] for x in list_all(d, stack, f"?q={tok}&status=active")] == [k["id"]]
    time.sleep(CHANGE_SEEN_WITHIN + 0.1)
    for status, _, body in fan_out(d, 12, {"X-API-Key": raw}, threads=4):
        assert status == 200, (status, body)
    r = use(d, raw)
    assert parse_time(r.headers["Looped-Key-Expires-At"]) == parse_time(new_exp), r.headers


def test_revoke_seen_by_every_worker(deployment, stack, mongo):
    d = deployment
    needs_pool(d)
    _, db = mongo
    k = create(d, stack, name=f"revoked {token()}")
    raw = k["key"]
    hdr = {"X-API-Key": raw}

    # Every worker caches the key as valid first.
    workers = set()
    for _ in range(5):
        res = fan_out(d, 20, hdr)
        assert all(s == 200 for s, _, _ in res), res
        workers |= {w for _, w, _ in res}
        if len(workers) >= 2:
            break
    assert len(workers) >= 2, f"only workers {workers} answered"

    r = person(d, stack, "POST", keys_url("acme", k["id"], "/revoke"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "revoked" and first["revoked_at"] and first["revoked_by"] == "owner", first
    time.sleep(1.0)
    res = fan_out(d, 50, hdr, threads=8)
    bad = [x for x in res if x[0] != 401 or (x[2] or {}).get("error", {}).get("code") != "revoked_api_key"]
    assert not bad, f"{len(bad)} of 50 not 401 revoked_api_key: {bad[:5]}"
    answered = {w for _, w, _ in res}
    assert len(answered) >= 2, f"the 50 requests reached only workers {answered}"

    r = person(d, stack, "POST", keys_url("acme", k["id"], "/revoke"), user="admin")
    assert r.status_code == 200, r.text
    assert (r.json()["revoked_at"], r.json()["revoked_by"]) == (first["revoked_at"], "owner"), r.json()
    assert_error(patch(d, stack, k["id"], {"name": "again"}), 409, "key_revoked")
    assert_error(patch(d, stack, k["id"], {"expires_at": iso(time.time() + 3600)}), 409, "key_revoked")
    assert details(d, stack, k["id"])["status"] == "revoked"

    # The refused requests were audited (the key is recognisable), the revoke once.
    wait_until(lambda: db.audit.count_documents({"key_id": k["id"], "action": "api.request", "status": 401}) >= 50,
               5, "50 refused api.request records")
    time.sleep(0.2)
    assert db.audit.count_documents({"key_id": k["id"], "action": "api.request", "status": 401}) == 50
    assert db.audit.count_documents({"key_id": k["id"], "action": "api_key.revoked"}) == 1


def test_audit_exact_across_reload(deployment, stack, mongo):
    """SIGHUP replaces the workers: the old ones drain their audit queues first."""
    d = deployment
    needs_pool(d)
    _, db = mongo
    k = create(d, stack, name=f"reloaded {token()}")
    before = set(d.pool.worker_pids())
    n = 40
    res = fan_out(d, n, {"X-API-Key": k["key"]}, threads=8)
    assert all(s == 200 for s, _, _ in res), [x for x in res if x[0] != 200][:5]
    os.kill(d.pool.pid, signal.SIGHUP)
    wait_until(lambda: not (set(d.pool.worker_pids()) & before) and len(d.pool.worker_pids()) == d.pool.workers,
               20, "the workers to be replaced after SIGHUP")
    count = lambda: db.audit.count_documents({"key_id": k["id"], "action": "api.request"})  # noqa: E731
    wait_until(lambda: count() >= n, 5, f"{n} api.request records")
    assert count() == n
    wait_until(lambda: use(d, k["key"]).status_code == 200, 10, "the key to work after the reload")


def test_audit_retention_purge(deployment, stack, mongo):
    """Records older than LOOPED_AUDIT_RETENTION_DAYS (365) go a minute after a start, in one
    purge for the whole store (the lease in meta), and nothing younger goes with them; within
    the hour of the lease no process purges again."""
    d = deployment
    needs_pool(d)
    if d.name != "lighttpd-pool":
        pytest.skip("the purge does not depend on the web server: tested on lighttpd-pool")
    _, db = mongo
    team = f"purge-{token()}"
    now = dt.datetime.now(dt.timezone.utc)
    old = {"team_id": team, "action": "api.request", "at": now - dt.timedelta(days=366)}
    kept = {"team_id": team, "action": "api.request", "at": now - dt.timedelta(days=364)}
    db.audit.insert_many([old, kept])
    db.meta.delete_one({"_id": "audit_purge"})  # as if no purge had run for an hour
    offset = d.pool.log.stat().st_size
    d.restart_pool()
    wait_until(lambda: db.audit.count_documents({"_id": old["_id"]}) == 0, 90,
               "the record older than a year to be purged", interval=1)
    assert db.audit.count_documents({"_id": kept["_id"]}) == 1
    lease = db.meta.find_one({"_id": "audit_purge"})
    assert lease and abs((lease["at"].replace(tzinfo=dt.timezone.utc) - now).total_seconds()) < 120, lease
    time.sleep(2)  # the other worker's attempt, a moment later, finds the lease taken
    with open(d.pool.log, "rb") as f:
        f.seek(offset)
        log = f.read().decode(errors="replace")
    assert "retention purge failed" not in log, log
    assert log.count("audit: purged") == 1, log

    # The lease holds for an hour: a pool started again within it purges nothing.
    late = {"team_id": team, "action": "api.request", "at": now - dt.timedelta(days=366)}
    db.audit.insert_one(late)
    try:
        d.restart_pool()
        time.sleep(70)  # past the first purge attempt, a minute after the start
        assert db.audit.count_documents({"_id": late["_id"]}) == 1, "purged again within the hour"
        assert db.meta.find_one({"_id": "audit_purge"})["at"] == lease["at"]
    finally:
        db.audit.delete_one({"_id": late["_id"]})


def test_audit_survives_a_worker_crash(deployment, stack, mongo, store_up):
    """A process killed (SIGKILL) while its audit records wait in its queue (the store frozen,
    keys answered from the cache): another process sends them from the dead one's spool once
    the store answers, so every answered request has its record, and none has two (the dead
    process's own insert, already on the wire, lands too: the records' _id refuse the copy)."""
    d = deployment
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot freeze an external store")
    _, db = mongo
    k = create(d, stack, name=f"crash {token()}")
    hdr = {"X-API-Key": k["key"]}
    count = lambda: db.audit.count_documents({"key_id": k["id"], "action": "api.request"})  # noqa: E731
    # Every process has the key cached (spawned modes: as many as the web server started).
    pids, seen, answered = {str(p) for p in d.app_pids()}, set(), 0
    while not pids <= seen and answered < 300:
        r = d.get("/v1/key", headers=hdr)
        assert r.status_code == 200, r.text
        answered += 1
        seen.add(r.headers.get("X-Worker"))
    wait_until(lambda: count() == answered, 10, f"the {answered} records of the warm-up")

    stack.store.freeze()
    try:
        # Within the key cache's 1 s grace without the key-change feed most are answered from
        # the cache (a process the web server had to start, or a slow one, answers 503).
        res = []  # (status, X-Worker, X-Request-Id)

        def send(n):
            with requests.Session() as sess:
                for _ in range(n):
                    r = sess.get(d.url + "/v1/key", headers=hdr, timeout=15)
                    res.append((r.status_code, r.headers.get("X-Worker"), r.headers["X-Request-Id"]))
        threads = [threading.Thread(target=send, args=(10,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        ok = [x for x in res if x[0] == 200]
        assert len(ok) >= 5, res
        victim = int(max({w for _, w, _ in ok}, key=[w for _, w, _ in ok].count))
        os.kill(victim, signal.SIGKILL)
    finally:
        stack.store.thaw()
    # Every request answered 200 has its record; another answer may have one (a 503 after the
    # key was recognised); no record is of a request not made, none is there twice.
    answered += len(ok)
    wait_until(lambda: count() >= answered, 20,
               f"{answered} records once the store is back (the killed process's included)")
    time.sleep(2.5)  # another look for spools: nothing is sent twice
    recs = list(db.audit.find({"key_id": k["id"], "action": "api.request"}, {"request_id": 1}))
    ids = [x["request_id"] for x in recs]
    assert len(ids) == len(set(ids)), "a record stored twice"
    during = {rid for _, _, rid in res}
    assert {rid for _, _, rid in ok} <= set(ids)
    assert len([i for i in ids if i in during]) <= len(res)
    assert len(ids) - len([i for i in ids if i in during]) == answered - len(ok)


def test_audit_exact_after_graceful_stop(deployment, stack, mongo):
    """Last: stops the pool with SIGTERM (and starts it again)."""
    d = deployment
    needs_pool(d)
    _, db = mongo
    k = create(d, stack, name=f"counted {token()}")
    n = 60
    try:
        res = fan_out(d, n, {"X-API-Key": k["key"]}, threads=8)
        assert all(s == 200 for s, _, _ in res), [x for x in res if x[0] != 200][:5]
        assert d.pool.stop() == 0
        got = db.audit.count_documents({"key_id": k["id"], "action": "api.request"})
        assert got == n, f"{got} api.request records for {n} requests"
        assert db.audit.count_documents({"actor.id": k["id"], "action": "api.request"}) == n
    finally:
        d.restart_pool()
    recs = audit(d, stack, f"?key_id={k['id']}&action=api.request&limit=100")
    assert len(recs) == n


# ---------------------------------------------------------------------------------------------
# lookup by digest document (api_key_digests) and its back-fill by looped-admin init


def test_key_found_through_its_digest_document(deployment, stack, mongo):
    d = deployment
    _, db = mongo
    k = create(d, stack)
    doc = db.api_key_digests.find_one({"key_id": k["id"]})
    assert doc and set(doc) == {"_id", "key_id", "team_id"} and doc["team_id"] == "acme", doc
    assert doc["_id"] == db.api_keys.find_one({"_id": k["id"]})["hash"]
    assert db.meta.find_one({"_id": "api_key_digests"})["complete"] is True

    # Once init has recorded that every key has one, a key without it is unknown.
    lost = create(d, stack)
    db.api_key_digests.delete_one({"key_id": lost["id"]})
    assert_error(use(d, lost["key"]), 401, "invalid_api_key")

    # init gives keys that lack one their digest document again (keys made before them).
    again = create(d, stack)
    db.api_key_digests.delete_one({"key_id": again["id"]})
    r = stack.admin_ok("init")
    assert "digest documents added for 2 keys" in r.stdout, r.stdout
    assert db.api_key_digests.find_one({"key_id": again["id"]})["team_id"] == "acme"
    r = use(d, again["key"])
    assert r.status_code == 200 and r.json()["key"]["id"] == again["id"], r.text
    assert "digest documents added" not in stack.admin_ok("init").stdout

    # Deleting a key deletes its digest document.
    assert person(d, stack, "DELETE", keys_url("acme", k["id"])).status_code == 204
    assert db.api_key_digests.find_one({"key_id": k["id"]}) is None
