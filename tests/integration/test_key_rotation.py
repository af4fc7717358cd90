"""Key rotation with a grace period and expiry warnings (api.md §6.3, §6.4)."""

import re
import time

from looped_test.asserts import assert_error
from looped_test.procs import wait_until
from test_api_keys import (CHANGE_SEEN_WITHIN, create, details, fan_out, hint_of, iso, keys_url,
                           list_all, parse_time, patch, person, token, use, RAW_KEYS)

HTTP_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
SETTINGS = ("name", "permission", "scopes", "expires_at", "rate_limit", "allowed_ips")


def rotate(d, stack, key_id, body=None, user="owner"):
    kw = {"json": body} if body is not None else {}
    return person(d, stack, "POST", keys_url("acme", key_id, "/rotate"), user=user, **kw)


def sunset(r):
    v = r.headers.get("Sunset")
    assert v and HTTP_DATE.match(v), r.headers
    return time.mktime(time.strptime(v, "%a, %d %b %Y %H:%M:%S GMT")) - time.timezone


def test_rotate_both_keys_work_old_one_with_headers(deployment, stack, mongo):
    d = deployment
    _, db = mongo
    old = create(d, stack, name=f"rot {token()}", permission="restricted", scopes=["invoices:read"],
                 expires_at=iso(time.time() + 90 * 86400), rate_limit={"requests": 1000, "per_seconds": 60},
                 allowed_ips=["127.0.0.0/8", "::1/128"])
    t0 = time.time()
    r = rotate(d, stack, old["id"], {"grace_period_hours": 48})
    assert r.status_code == 201, r.text
    new = r.json()
    RAW_KEYS.append(new["key"])
    assert new["id"] != old["id"] and new["key"] != old["key"] and new["rotated_from"] == old["id"]
    assert new["rotated_to"] is None and new["status"] == "active"
    assert r.headers["Location"].endswith(keys_url("acme", new["id"]))
    for f in SETTINGS:
        assert new[f] == old[f], f
    got = details(d, stack, old["id"])
    assert got["rotated_to"] == new["id"] and got["status"] == "active"
    assert abs(parse_time(got["expires_at"]) - (t0 + 48 * 3600)) < 60, got

    time.sleep(CHANGE_SEEN_WITHIN + 0.1)
    for status, _, body in fan_out(d, 12, {"X-API-Key": old["key"]}, threads=4):
        assert status == 200, (status, body)
    r_old = use(d, old["key"])
    assert r_old.status_code == 200
    assert new["hint"] == hint_of(new["key"])
    assert r_old.headers["Looped-Key-Rotated-To"] == new["hint"].replace("\u2026", "...")
    assert abs(sunset(r_old) - parse_time(got["expires_at"])) < 1.5
    r_new = use(d, new["key"])
    assert r_new.status_code == 200
    assert "Looped-Key-Rotated-To" not in r_new.headers and "Sunset" not in r_new.headers

    # Rotated once: a second rotation is a conflict, and nothing was created for it.
    n = db.api_keys.count_documents({"rotated_from": old["id"]})
    assert_error(rotate(d, stack, old["id"], {}), 409, "conflict")
    assert db.api_keys.count_documents({"rotated_from": old["id"]}) == n == 1
    wait_until(lambda: db.audit.find_one({"key_id": old["id"], "action": "api_key.rotated"}), 5, "audit")
    rec = db.audit.find_one({"key_id": old["id"], "action": "api_key.rotated"})
    assert rec["actor"] == {"type": "user", "id": "owner"}
    assert rec["rotation"] == {"from": old["id"], "to": new["id"], "grace_period_hours": 48}
    r = person(d, stack, "GET", f"/v1/teams/acme/audit?key_id={old['id']}&action=api_key.rotated")
    assert r.status_code == 200 and r.json()["data"][0]["rotation"]["to"] == new["id"], r.text

    # The grace period ends (moved to 2 s from now through PATCH): expired on every worker.
    end = time.time() + 2.0
    r = patch(d, stack, old["id"], {"expires_at": iso(end)})
    assert r.status_code == 200, r.text
    assert_error(patch(d, stack, old["id"], {"expires_at": None}), 400, "validation_failed")
    time.sleep(max(0.0, end - time.time()) + 0.2)
    for status, _, body in fan_out(d, 12, {"X-API-Key": old["key"]}, threads=4):
        assert status == 401 and body["error"]["code"] == "expired_api_key", (status, body)
    assert details(d, stack, old["id"])["status"] == "expired"
    assert use(d, new["key"]).status_code == 200


def test_rotate_without_grace_revokes_at_once_everywhere(deployment, stack):
    d = deployment
    old = create(d, stack, name=f"rot0 {token()}")
    for status, _, body in fan_out(d, 12, {"X-API-Key": old["key"]}, threads=4):
        assert status == 200, (status, body)
    r = rotate(d, stack, old["id"], {"grace_period_hours": 0})
    assert r.status_code == 201, r.text
    new = r.json()
    RAW_KEYS.append(new["key"])
    # The worker that rotated forgets the key at once, the others within 1 s (the feed); the
    # next request may reach any of them.
    time.sleep(CHANGE_SEEN_WITHIN)
    res = fan_out(d, 30, {"X-API-Key": old["key"]}, threads=6)
    bad = [x for x in res if x[0] != 401 or (x[2] or {}).get("error", {}).get("code") != "revoked_api_key"]
    assert not bad, bad[:5]
    got = details(d, stack, old["id"])
    assert got["status"] == "revoked" and got["rotated_to"] == new["id"] and got["revoked_by"] == "owner"
    assert use(d, new["key"]).status_code == 200


def test_rotate_refusals(deployment, stack):
    d = deployment
    k = create(d, stack, name=f"rotr {token()}")
    for body in ({"grace_period_hours": 721}, {"grace_period_hours": -1}, {"grace_period_hours": "24"},
                 {"grace": 1}, []):
        assert_error(rotate(d, stack, k["id"], body), 400, "validation_failed")
    assert_error(rotate(d, stack, "key_doesnotexist0000", {}), 404, "not_found")
    assert_error(rotate(d, stack, k["id"], {}, user="member"), 403, "forbidden")
    assert person(d, stack, "POST", keys_url("acme", k["id"], "/revoke")).status_code == 200
    assert_error(rotate(d, stack, k["id"], {}), 409, "key_revoked")
    # No body: the default grace period of 24 hours.
    k2 = create(d, stack, name=f"rotd {token()}")
    t0 = time.time()
    r = rotate(d, stack, k2["id"])
    assert r.status_code == 201, r.text
    RAW_KEYS.append(r.json()["key"])
    assert abs(parse_time(details(d, stack, k2["id"])["expires_at"]) - (t0 + 86400)) < 60


def test_expiring_within_days_and_sunset(deployment, stack):
    d = deployment
    tok = token()
    soon = create(d, stack, name=f"exp {tok} soon", expires_at=iso(time.time() + 3 * 86400))
    later = create(d, stack, name=f"exp {tok} later", expires_at=iso(time.time() + 30 * 86400))
    never = create(d, stack, name=f"exp {tok} never")
    ids = lambda q: {x["id"] for x in list_all(d, stack, f"?q={tok}&{q}")}
    assert ids("expiring_within_days=7") == {soon["id"]}
    assert ids("expiring_within_days=31") == {soon["id"], later["id"]}
    assert ids("expiring_within_days=7&status=revoked") == set()
    for bad in ("0", "366", "x", "1.5"):
        r = person(d, stack, "GET", keys_url() + f"?expiring_within_days={bad}")
        assert_error(r, 400, "validation_failed")
    r = use(d, soon["key"])
    assert r.status_code == 200 and abs(sunset(r) - parse_time(soon["expires_at"])) < 1.5
    for k in (later, never):
        r = use(d, k["key"])
        assert r.status_code == 200 and "Sunset" not in r.headers, r.headers
    assert never["id"] not in ids("expiring_within_days=365")
