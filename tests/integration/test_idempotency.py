"""Idempotent resource creates (api.md §6.6), against every deployment.

`Idempotency-Key` on `POST /v1/{resource}`: the first answer (status, Location, Content-Type,
body) is kept 24 hours per API key and idempotency key; the same request again gets it byte for
byte with `Idempotent-Replayed: true` and creates nothing; the same idempotency key with another
path or body is a 422 `idempotency_key_reused`; one still in progress a 409 `conflict` with
`Retry-After`. The records live in the store's `idempotency_keys` collection (`_id` is
"<key id>:<idempotency key>"); some tests write there to make a record stale or expired, which
the API cannot do in a test's time.

Not here: the hourly purge of records older than 24 hours (it runs on the audit purge's lease, an
hour apart; only its index is checked).
"""

import hashlib
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from looped_test.asserts import JSON_CT, assert_error
from looped_test.procs import wait_until


def token():
    return uuid.uuid4().hex[:12]


def customer(t=None):
    t = t or token()
    return {"name": f"Idem {t}", "email": f"idem+{t}@example.com", "tax_id": f"FR{t}"}


class Api:
    """Requests with one API key (and its id) against one deployment."""

    def __init__(self, d, key, kid):
        self.d, self.key, self.id = d, key, kid

    def post(self, path, body=None, idem=None, data=None, headers=None):
        h = {"X-API-Key": self.key}
        if idem is not None:
            h["Idempotency-Key"] = idem
        h.update(headers or {})
        if data is not None:
            h["Content-Type"] = "application/json"
            return self.d.request("POST", path, data=data, headers=h)
        return self.d.request("POST", path, json=body, headers=h)

    def named(self, resource, name, field="name"):
        """The objects of `resource` whose `field` (filterable) is `name`, a value unique to the
        test."""
        r = self.d.get(f"/v1/{resource}?{field}={quote(name)}&limit=100", headers={"X-API-Key": self.key})
        assert r.status_code == 200, r.text
        return r.json()["data"]


def new_key(d, stack, user, team, permission):
    r = d.request("POST", f"/v1/teams/{team}/api-keys", auth=stack.credentials(user),
                  json={"name": f"idempotency {permission} {token()}", "permission": permission})
    assert r.status_code == 201, r.text
    return Api(d, r.json()["key"], r.json()["id"])


@pytest.fixture(scope="module")
def keys(deployment, stack):
    d = deployment
    return {"a": new_key(d, stack, "owner", "acme", "write_all"),
            "b": new_key(d, stack, "owner", "acme", "write_all"),
            "read": new_key(d, stack, "owner", "acme", "read_all"),
            "globex": new_key(d, stack, "outsider", "globex", "write_all")}


def fingerprint(method, path, body):
    """What the server hashes (idempotency.h): method, NUL, path, NUL, compact sorted JSON."""
    text = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{method}\0{path}\0{text}".encode()).hexdigest()


def assert_replay_of(first, again):
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content, (first.content, again.content)
    assert again.headers.get("Idempotent-Replayed") == "true", again.headers
    for h in ("Location", "Content-Type"):
        assert again.headers.get(h) == first.headers.get(h), h
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]  # a request of its own


# ---------------------------------------------------------------------------------------------
# the same request again


def test_same_post_twice_creates_one(deployment, stack, keys):
    api, body, idem = keys["a"], customer(), str(uuid.uuid4())
    first = api.post("/v1/customers", body, idem)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert first.headers["Location"] == f"/v1/customers/{first.json()['id']}"
    again = api.post("/v1/customers", body, idem)
    assert_replay_of(first, again)
    assert [o["id"] for o in api.named("customers", body["name"])] == [first.json()["id"]]

    # Both are audited as the key's api.request, with the status each answer had.
    def posts():
        r = deployment.get(f"/v1/teams/acme/audit?key_id={api.id}&action=api.request&limit=100",
                           auth=stack.credentials("owner"))
        assert r.status_code == 200, r.text
        recs = [x for x in r.json()["data"] if x["method"] == "POST"]
        return recs if len(recs) >= 2 else None
    recs = wait_until(posts, 5, "two audit records of the POSTs")
    assert {x["request_id"] for x in recs} >= {first.headers["X-Request-Id"], again.headers["X-Request-Id"]}
    assert all(x["status"] == 201 and x["path"] == "/v1/customers" for x in recs), recs


def test_same_body_written_differently_is_the_same_request(keys):
    api, t, idem = keys["a"], token(), token()
    first = api.post("/v1/customers", idem=idem,
                     data=json.dumps({"name": f"Idem {t}", "tax_id": f"FR{t}"}))
    assert first.status_code == 201, first.text
    again = api.post("/v1/customers", idem=idem,
                     data=f'{{ "tax_id" : "FR{t}",\n  "name": "Idem {t}" }}')
    assert_replay_of(first, again)
    assert len(api.named("customers", f"Idem {t}")) == 1


def test_other_body_is_422(keys):
    api, body, idem = keys["a"], customer(), token()
    first = api.post("/v1/customers", body, idem)
    assert first.status_code == 201, first.text
    other = dict(body, name=body["name"] + " changed")
    err = assert_error(api.post("/v1/customers", other, idem), 422, "idempotency_key_reused")
    assert "Idempotency-Key" in err["message"]
    assert api.named("customers", other["name"]) == []
    # The first answer stays what the key gives for the first request.
    assert_replay_of(first, api.post("/v1/customers", body, idem))


def test_other_path_is_422(keys):
    api, idem = keys["a"], token()
    body = {"name": "Idem product", "sku": f"SKU-{token()}", "unit_price": 100, "currency": "EUR"}
    assert api.post("/v1/customers", customer(), idem).status_code == 201
    assert_error(api.post("/v1/products", body, idem), 422, "idempotency_key_reused")
    assert api.named("products", body["sku"], field="sku") == []


def test_header_ignored_elsewhere(keys):
    """Only resource creates honour it: a GET (or PATCH) with one is an ordinary request."""
    api, idem = keys["a"], token()
    obj = api.post("/v1/customers", customer(), idem).json()
    r = api.d.get(f"/v1/customers/{obj['id']}", headers={"X-API-Key": api.key, "Idempotency-Key": idem})
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers, r.text
    r = api.d.request("PATCH", f"/v1/customers/{obj['id']}", json={"phone": "+1 555 0100"},
                      headers={"X-API-Key": api.key, "Idempotency-Key": idem})
    assert r.status_code == 200 and r.json()["phone"] == "+1 555 0100", r.text


def test_error_answer_is_kept(keys):
    """A 4xx of the handler is the answer too: given again (its envelope with the replay's own
    request id), and the key is spent on that request."""
    api, idem, t = keys["a"], token(), token()
    bad = {"email": f"idem+{t}@example.com"}  # no name
    first = api.post("/v1/customers", bad, idem)
    err1 = assert_error(first, 400, "validation_failed")
    again = api.post("/v1/customers", bad, idem)
    err2 = assert_error(again, 400, "validation_failed")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert {k: v for k, v in err2.items() if k != "request_id"} == \
           {k: v for k, v in err1.items() if k != "request_id"}
    assert err2["request_id"] == again.headers["X-Request-Id"] != err1["request_id"]
    assert_error(api.post("/v1/customers", dict(bad, name=f"Idem {t}"), idem), 422,
                 "idempotency_key_reused")
    assert api.named("customers", f"Idem {t}") == []


def test_unknown_reference_is_kept(keys):
    api, idem = keys["a"], token()
    body = {"name": f"Idem {token()}", "customer_id": "cus_doesnotexist0000000"}
    first = api.post("/v1/projects", body, idem)
    assert_error(first, 422, "unknown_reference")
    again = api.post("/v1/projects", body, idem)
    assert_error(again, 422, "unknown_reference")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["error"]["details"] == first.json()["error"]["details"]


# ---------------------------------------------------------------------------------------------
# concurrency


def _race(n, fn):
    """Runs fn(i) in n threads released together; returns their results in order."""
    barrier, out = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(r is not None for r in out), "a thread did not finish"
    return out


def test_two_at_once(keys):
    api, body, idem = keys["a"], customer(), token()
    rs = _race(2, lambda i: api.post("/v1/customers", body, idem))
    created = [r for r in rs if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(created) == 1, [(r.status_code, r.text[:200]) for r in rs]
    other = next(r for r in rs if r is not created[0])
    if other.status_code == 409:
        assert_error(other, 409, "conflict")
        assert other.headers.get("Retry-After", "").isdigit(), other.headers
    else:
        assert_replay_of(created[0], other)
    assert len(api.named("customers", body["name"])) == 1


def test_eight_retrying_at_once_create_one(keys):
    """Eight clients retry the same create until they get an answer that is not a 409: each
    gets the one object, exactly one of them made it."""
    api, body, idem = keys["a"], customer(), token()

    def client(i):
        for _ in range(100):
            r = api.post("/v1/customers", body, idem)
            if r.status_code != 409:
                return r
            assert_error(r, 409, "conflict")
            assert int(r.headers["Retry-After"]) >= 1
            time.sleep(0.05)  # (Retry-After says 1 s; the test is in a hurry)
        raise AssertionError("still 409 after 100 tries")
    rs = _race(8, client)
    assert all(r.status_code == 201 for r in rs), [(r.status_code, r.text[:200]) for r in rs]
    made = [r for r in rs if "Idempotent-Replayed" not in r.headers]
    assert len(made) == 1, [r.headers.get("Idempotent-Replayed") for r in rs]
    assert len({r.content for r in rs}) == 1
    objs = api.named("customers", body["name"])
    assert [o["id"] for o in objs] == [made[0].json()["id"]]


# ---------------------------------------------------------------------------------------------
# the header, the caller


@pytest.mark.parametrize("value", ["", "k" * 256, "a\tb"], ids=["empty", "256-chars", "tab"])
def test_bad_header_is_400(deployment, keys, value):
    api, body = keys["a"], customer()
    if value == "" and deployment.server == "lighttpd":
        # lighttpd drops a header line with an empty value: the application never sees one
        # (test_bytes_no_web_server_passes sends it to the pool's socket).
        r = api.post("/v1/customers", body, value)
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
        return
    err = assert_error(api.post("/v1/customers", body, value), 400, "validation_failed")
    assert "Idempotency-Key" in [x["field"] for x in err.get("details", [])], err
    assert api.named("customers", body["name"]) == []


def test_header_limits_accepted(keys):
    api = keys["a"]  # (each value once per key: the keys are the module's own)
    for value in ["k" * 255, "x", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|} ~"]:
        r = api.post("/v1/customers", customer(), value)
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, (value, r.text)


def test_bytes_no_web_server_passes(deployment, keys):
    """Control characters and non-ASCII, straight to the pool's socket (web servers refuse or
    rewrite some of them before the application sees them)."""
    if deployment.pool is None:
        pytest.skip(f"{deployment.name}: no socket of our own to send raw bytes to")
    api = keys["a"]
    for value in ["", "a\x01b", "a\x7fb", "caf\u00e9", "trailing\n"]:
        body = json.dumps(customer()).encode()
        status, headers, rbody = deployment.fcgi(
            "POST", "/v1/customers", body=body, content_type="application/json",
            headers={"X-API-Key": api.key, "Idempotency-Key": value})
        assert status == 400, (value, rbody[:300])
        err = json.loads(rbody)["error"]
        assert err["code"] == "validation_failed" and err["details"][0]["field"] == "Idempotency-Key"


def test_no_write_scope_is_403_and_keeps_nothing(keys, mongo):
    _, db = mongo
    api, idem = keys["read"], token()
    for _ in range(2):
        r = api.post("/v1/customers", customer(), idem)
        err = assert_error(r, 403, "insufficient_scope")
        assert err["required"] == "customers:write"
        assert "Idempotent-Replayed" not in r.headers
    assert db.idempotency_keys.find_one({"_id": f"{api.id}:{idem}"}) is None


def test_keys_are_independent(keys):
    idem, t = token(), token()
    body = customer(t)
    ra = keys["a"].post("/v1/customers", body, idem)
    rb = keys["b"].post("/v1/customers", body, idem)
    rg = keys["globex"].post("/v1/customers", body, idem)
    for r in (ra, rb, rg):
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
    assert len({ra.json()["id"], rb.json()["id"], rg.json()["id"]}) == 3
    assert len(keys["a"].named("customers", body["name"])) == 2  # acme's two keys
    assert len(keys["globex"].named("customers", body["name"])) == 1


# ---------------------------------------------------------------------------------------------
# records in the store: what is kept, stale and expired ones


def test_record_in_the_store(keys, mongo):
    _, db = mongo
    api, body, idem = keys["a"], customer(), token()
    r = api.post("/v1/customers", body, idem)
    assert r.status_code == 201
    rec = db.idempotency_keys.find_one({"_id": f"{api.id}:{idem}"})
    assert rec is not None
    assert rec["key_id"] == api.id and rec["team_id"] == "acme" and rec["state"] == "done"
    assert rec["fingerprint"] == fingerprint("POST", "/v1/customers", body)
    assert rec["status"] == 201 and rec["body"].encode() == r.content
    assert rec["headers"] == f"Location: {r.headers['Location']}\r\n"
    assert api.key not in json.dumps(rec, default=str)
    assert "at" in db.idempotency_keys.index_information()  # the purge's index (looped-admin init)


def _plant(db, api, idem, body, state, age):
    at = datetime.now(timezone.utc) - age
    db.idempotency_keys.replace_one(
        {"_id": f"{api.id}:{idem}"},
        {"_id": f"{api.id}:{idem}", "key_id": api.id, "team_id": "acme",
         "fingerprint": fingerprint("POST", "/v1/customers", body), "owner": "planted",
         "state": state, "at": at, **({"status": 201, "headers": "", "body": "{}"} if state == "done" else {})},
        upsert=True)


def test_in_progress_then_stale(keys, mongo):
    _, db = mongo
    api, body, idem = keys["a"], customer(), token()
    _plant(db, api, idem, body, "pending", timedelta(seconds=1))
    r = api.post("/v1/customers", body, idem)
    assert_error(r, 409, "conflict")
    assert r.headers.get("Retry-After", "").isdigit()
    # A pending record older than a minute was left by a request that died: taken over.
    _plant(db, api, idem, body, "pending", timedelta(seconds=90))
    r = api.post("/v1/customers", body, idem)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
    assert len(api.named("customers", body["name"])) == 1
    assert db.idempotency_keys.find_one({"_id": f"{api.id}:{idem}"})["state"] == "done"


def test_expired_record_is_forgotten(keys, mongo):
    """After 24 hours the key is free again (even before the purge removes the record)."""
    _, db = mongo
    api, body, idem = keys["a"], customer(), token()
    _plant(db, api, idem, {"other": "request"}, "done", timedelta(hours=25))
    r = api.post("/v1/customers", body, idem)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
    assert_replay_of(r, api.post("/v1/customers", body, idem))


# ---------------------------------------------------------------------------------------------
# the store down


def test_store_down_is_503(deployment, stack, keys, store_up):
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")
    api, body, idem = keys["a"], customer(), token()
    assert api.post("/v1/customers", customer(), token()).status_code == 201  # key cached
    stack.store.stop()
    try:
        r = api.post("/v1/customers", body, idem)
        assert_error(r, 503, "unavailable")
        assert r.headers.get("Retry-After", "").isdigit()
    finally:
        stack.store.start()

    # Nothing was kept: once the store is back, the same request creates the object.
    def created():
        r = api.post("/v1/customers", body, idem)
        assert r.status_code in (201, 503), r.text
        return r if r.status_code == 201 else None
    r = wait_until(created, 30, "201 once the store is back", interval=0.5)
    assert "Idempotent-Replayed" not in r.headers
    assert JSON_CT.match(r.headers["Content-Type"])
    # Another worker process may still answer 503 until its circuit closes (one probe interval
    # at most, sooner once another process's probe has seen the store); then exactly one object.
    assert len(wait_until(lambda: api.named("customers", body["name"]), 5,
                          "the list once every process sees the store")) == 1
