"""A team's key policy (api.md §6.4): GET|PATCH /v1/teams/{team}/api-key-policy, creates, edits and
rotations refused against it naming the field, older keys listed with policy_violations and
never changed. The tests use a team of their own (the policy would change what every other test
may create in acme); every deployment shares the store, so each test sets the policy it needs."""

import json
import time

import pytest

from looped_test.asserts import assert_error
from looped_test.procs import wait_until
from test_api_keys import RAW_KEYS, iso, keys_url, parse_time, person, token, use

TEAM = "policy-lab"
OWNER, ADMIN, MEMBER = "policy-owner", "policy-admin", "policy-member"
URL = f"/v1/teams/{TEAM}/api-key-policy"
DEFAULT = {"max_lifetime_days": None, "require_expiry": False, "default_rate_limit": None}
DAY = 86400


@pytest.fixture(scope="module")
def lab(stack):
    stack.add_web_user(OWNER, [(TEAM, "OWNER")], teams={TEAM: "Policy Lab"})
    stack.add_web_user(ADMIN, [(TEAM, "ADMIN")])
    stack.add_web_user(MEMBER, [(TEAM, "MEMBER")])
    return TEAM


@pytest.fixture
def policy(deployment, stack, lab):
    """Sets the policy (PATCH as the owner) and puts the default back afterwards."""
    d = deployment

    def set_(**body):
        r = person(d, stack, "PATCH", URL, user=OWNER, json=body)
        assert r.status_code == 200, r.text
        return r.json()
    set_(**DEFAULT)
    yield set_
    set_(**DEFAULT)


def make(d, stack, **body):
    body.setdefault("name", f"pol {token()}")
    body.setdefault("permission", "read_all")
    return person(d, stack, "POST", keys_url(TEAM), user=OWNER, json=body)


def made(r):
    assert r.status_code == 201, r.text
    RAW_KEYS.append(r.json()["key"])
    return r.json()


def get_key(d, stack, key_id):
    r = person(d, stack, "GET", keys_url(TEAM, key_id), user=OWNER)
    assert r.status_code == 200, r.text
    return r.json()


def test_default_read_by_admins_changed_by_owners_audited(deployment, stack, policy, mongo):
    d = deployment
    _, db = mongo
    r = person(d, stack, "GET", URL, user=ADMIN)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in DEFAULT} == DEFAULT
    assert_error(person(d, stack, "GET", URL, user=MEMBER), 403, "forbidden")
    assert_error(person(d, stack, "GET", URL, user="owner"), 404, "not_found")  # not in this team
    before = person(d, stack, "GET", URL, user=OWNER).json()
    assert_error(person(d, stack, "PATCH", URL, user=ADMIN, json={"require_expiry": True}), 403, "forbidden")
    assert person(d, stack, "GET", URL, user=OWNER).json() == before

    t0 = time.time()
    got = policy(max_lifetime_days=30, default_rate_limit={"requests": 100, "per_seconds": 60})
    assert got["max_lifetime_days"] == 30 and got["require_expiry"] is False
    assert got["default_rate_limit"] == {"requests": 100, "per_seconds": 60}
    assert got["updated_by"] == OWNER and abs(parse_time(got["updated_at"]) - t0) < 60
    assert person(d, stack, "GET", URL, user=ADMIN).json() == got
    # Only the fields given change (a merge patch).
    got = policy(require_expiry=True)
    assert got["max_lifetime_days"] == 30 and got["require_expiry"] is True
    recs = wait_until(lambda: list(db.audit.find({"team_id": TEAM, "action": "api_key_policy.updated",
                                                  "changes.require_expiry": {"$exists": True}})), 5, "audit")
    rec = recs[-1]
    assert rec["actor"] == {"type": "user", "id": OWNER}
    assert rec["changes"] == {"require_expiry": {"old": False, "new": True}}
    r = person(d, stack, "GET", f"/v1/teams/{TEAM}/audit?action=api_key_policy.updated", user=OWNER)
    assert r.status_code == 200 and r.json()["data"][0]["changes"] == rec["changes"], r.text
    # Where an operator looks: looped-admin policy show, the same object.
    out = stack.admin("policy", "show", TEAM)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == got


@pytest.mark.parametrize("body,field", [
    ({"max_lifetime_days": 0}, "max_lifetime_days"),
    ({"max_lifetime_days": 3651}, "max_lifetime_days"),
    ({"max_lifetime_days": "30"}, "max_lifetime_days"),
    ({"max_lifetime_days": 1.5}, "max_lifetime_days"),
    ({"require_expiry": "yes"}, "require_expiry"),
    ({"require_expiry": None}, "require_expiry"),
    ({"default_rate_limit": {"requests": 0, "per_seconds": 60}}, "default_rate_limit.requests"),
    ({"default_rate_limit": {"requests": 5}}, "default_rate_limit.per_seconds"),
    ({"default_rate_limit": 5}, "default_rate_limit"),
    ({"max_age": 3}, "max_age"),
])
def test_bad_policy_is_400_and_changes_nothing(deployment, stack, policy, body, field):
    d = deployment
    before = policy(max_lifetime_days=10)
    err = assert_error(person(d, stack, "PATCH", URL, user=OWNER, json=body), 400, "validation_failed")
    assert field in [x["field"] for x in err["details"]], err
    assert person(d, stack, "GET", URL, user=OWNER).json() == before


def test_max_lifetime_refuses_creates_lists_older_keys_changes_nothing(deployment, stack, policy):
    d = deployment
    older = made(make(d, stack))  # before the policy: no expiry
    policy(max_lifetime_days=30)
    for body in ({}, {"expires_at": iso(time.time() + 31 * DAY)}):
        err = assert_error(make(d, stack, **body), 400, "validation_failed")
        assert err["details"][0]["field"] == "expires_at", err
    ok = made(make(d, stack, expires_at=iso(time.time() + 29 * DAY)))
    assert get_key(d, stack, ok["id"])["policy_violations"] == []

    got = get_key(d, stack, older["id"])
    assert got["expires_at"] is None and got["status"] == "active"  # never changed
    assert [v["field"] for v in got["policy_violations"]] == ["expires_at"], got
    listed = {k["id"]: k for k in person(d, stack, "GET", keys_url(TEAM) + "?limit=100", user=OWNER).json()["data"]}
    assert listed[older["id"]]["policy_violations"] == got["policy_violations"]
    assert use(d, older["key"]).status_code == 200  # and it still works

    # An edit of anything but the expiry is not refused; a new expiry must keep the policy.
    r = person(d, stack, "PATCH", keys_url(TEAM, older["id"]), user=OWNER, json={"name": "renamed"})
    assert r.status_code == 200, r.text
    err = assert_error(person(d, stack, "PATCH", keys_url(TEAM, older["id"]), user=OWNER,
                              json={"expires_at": iso(time.time() + 60 * DAY)}), 400, "validation_failed")
    assert err["details"][0]["field"] == "expires_at"
    r = person(d, stack, "PATCH", keys_url(TEAM, older["id"]), user=OWNER,
               json={"expires_at": iso(time.time() + 10 * DAY)})
    assert r.status_code == 200, r.text
    assert get_key(d, stack, older["id"])["policy_violations"] == []


def test_require_expiry_refuses_a_rotation_of_a_key_without_one(deployment, stack, policy, mongo):
    d = deployment
    _, db = mongo
    k = made(make(d, stack))
    policy(require_expiry=True)
    n = db.api_keys.count_documents({"team_id": TEAM})
    err = assert_error(person(d, stack, "POST", keys_url(TEAM, k["id"], "/rotate"), user=OWNER, json={}),
                       400, "validation_failed")
    assert err["details"][0]["field"] == "expires_at"
    assert db.api_keys.count_documents({"team_id": TEAM}) == n
    assert get_key(d, stack, k["id"])["rotated_to"] is None
    # Given an expiry, it rotates.
    assert person(d, stack, "PATCH", keys_url(TEAM, k["id"]), user=OWNER,
                  json={"expires_at": iso(time.time() + 5 * DAY)}).status_code == 200
    r = person(d, stack, "POST", keys_url(TEAM, k["id"], "/rotate"), user=OWNER, json={"grace_period_hours": 1})
    assert r.status_code == 201, r.text
    RAW_KEYS.append(r.json()["key"])


def test_default_rate_limit_for_keys_created_without_one(deployment, stack, policy):
    d = deployment
    policy(default_rate_limit={"requests": 100, "per_seconds": 60})
    k = made(make(d, stack))
    assert k["rate_limit"] == {"requests": 100, "per_seconds": 60}
    assert use(d, k["key"]).headers.get("RateLimit-Limit") == "100"
    explicit = made(make(d, stack, rate_limit={"requests": 5, "per_seconds": 1}))
    assert explicit["rate_limit"] == {"requests": 5, "per_seconds": 1}
    none = made(make(d, stack, rate_limit=None))
    assert none["rate_limit"] is None  # asked for none: no default


def test_store_down_is_503(deployment, stack, lab, store_up):
    d = deployment
    if stack.store.external:
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")
    stack.store.stop()
    assert_error(person(d, stack, "GET", URL, user=OWNER), 503, "unavailable")
    assert_error(person(d, stack, "PATCH", URL, user=OWNER, json={"require_expiry": True}), 503, "unavailable")
    stack.store.start()
    wait_until(lambda: person(d, stack, "GET", URL, user=OWNER).status_code == 200, 20, "the policy readable again")
    assert person(d, stack, "GET", URL, user=OWNER).json()["require_expiry"] is False
