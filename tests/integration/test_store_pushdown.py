"""The FerretDB SQLite pushdown (tests/ferretdb/sqlite-pushdown.patch), against the store itself.

Differential: two FerretDB processes from the same binary, one with LOOPED_FERRETDB_PUSHDOWN=off
(upstream behaviour), hold the same random collection (scalars, arrays, nested documents, missing
fields, nulls, mixed types; 5,000 documents); every query shape the project issues
(fcgi/store*.c) gives the same answers on both, document for document: find with sort and limit,
count, update_many, delete_many.

Plans: with the project's indexes, `explain` (EXPLAIN QUERY PLAN on the store's SQLite file)
shows SEARCH ... USING INDEX, and no SCAN, for each pushed shape.
"""

import datetime
import os
import random
import shutil
import subprocess
import tempfile
import time

import pymongo
import pytest

from looped_test.procs import free_port
from looped_test.stack import ferretdb_binary

N_DOCS = 5000
UTC = datetime.timezone.utc


def _start(tmp, name, env_extra):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    port = free_port()
    env = dict(os.environ, **env_extra)
    log = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen(
        [ferretdb_binary(), "--handler=sqlite", f"--sqlite-url=file:{d}/",
         f"--listen-addr=127.0.0.1:{port}", "--telemetry=disable", "--state-dir=-",
         "--debug-addr=-", "--log-level=error"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    c = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000)
    deadline = time.time() + 20
    while True:
        try:
            c.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                raise
            time.sleep(0.2)
    return p, c


@pytest.fixture(scope="module")
def stores():
    tmp = tempfile.mkdtemp(prefix="looped-pushdown-")
    procs = []
    try:
        p_on, on = _start(tmp, "on", {})
        procs.append(p_on)
        p_off, off = _start(tmp, "off", {"LOOPED_FERRETDB_PUSHDOWN": "off"})
        procs.append(p_off)
        yield on, off
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


TEAMS = ["acme", "beta", "gamma"]
KEYS = ["k1", "k2", "k3", "k4"]
ACTIONS = ["api.request", "key.create", "key.revoke"]


def _odd(rng, pool):
    """A value of the field: mostly one of pool, sometimes an array, a nested document, a
    missing field (None is returned as _MISSING), null, another type or an awkward string."""
    r = rng.random()
    if r < 0.70:
        return rng.choice(pool)
    if r < 0.76:
        return [rng.choice(pool), rng.choice(pool + ["zz"])]
    if r < 0.79:
        return [{"id": rng.choice(pool)}]  # an array of documents: does not match {f: v}
    if r < 0.82:
        return {"id": rng.choice(pool)}
    if r < 0.86:
        return _MISSING
    if r < 0.89:
        return None
    if r < 0.92:
        return rng.randint(-5, 5)
    if r < 0.94:
        return rng.choice(pool) + " "
    if r < 0.96:
        return 'a"b\\c<é\u2028'
    if r < 0.98:
        return []
    return True


_MISSING = object()


def _docs(seed):
    rng = random.Random(seed)
    base = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(N_DOCS):
        d = {"_id": f"d{i:05d}"}
        for f, pool in (("team_id", TEAMS), ("key_id", KEYS), ("action", ACTIONS),
                        ("host", ["h1", "h2"]), ("owner", ["o1", "o2"]), ("user", ["u1", "u2"])):
            v = _odd(rng, pool)
            if v is not _MISSING:
                d[f] = v
        a = _odd(rng, ["u1", "u2"])
        if a is not _MISSING:
            d["actor"] = {"id": a} if rng.random() < 0.8 else a
        at = base + datetime.timedelta(milliseconds=rng.randint(0, 10**9))
        r = rng.random()
        d["at"] = at if r < 0.85 else ([at, base] if r < 0.9 else (rng.randint(0, 9) if r < 0.95 else None))
        d["created_at"] = d["at"] if not isinstance(d["at"], list) else base
        d["until"] = at
        d["revoked_at"] = None if rng.random() < 0.7 else at
        d["n"] = i
        out.append(d)
    return out


MID = datetime.datetime(2026, 1, 6, tzinfo=UTC)
LATE = datetime.datetime(2026, 1, 9, tzinfo=UTC)

# (filter, sort) of the project's finds, counts, updates and deletes (fcgi/store*.c).
SHAPES = [
    ({"team_id": "acme"}, [("at", -1), ("_id", -1)]),
    ({"team_id": "acme", "key_id": "k1"}, [("at", -1), ("_id", -1)]),
    ({"team_id": "acme", "action": "api.request"}, [("at", -1), ("_id", -1)]),
    ({"team_id": "acme", "key_id": "k2", "action": "api.request"}, [("at", -1), ("_id", -1)]),
    ({"team_id": "beta", "actor.id": "u1"}, [("at", -1), ("_id", -1)]),
    ({"team_id": "acme", "at": {"$gte": MID, "$lte": LATE}}, [("at", -1), ("_id", -1)]),
    ({"team_id": "acme", "$or": [{"at": {"$lt": MID}}, {"at": MID, "_id": {"$lt": "d02500"}}]},
     [("at", -1), ("_id", -1)]),
    ({"team_id": "gamma", "revoked_at": {"$ne": None}}, [("created_at", -1), ("_id", -1)]),
    ({"team_id": "gamma", "revoked_at": None}, [("created_at", -1), ("_id", -1)]),
    ({"team_id": "acme", "user": "u2"}, [("user", 1)]),
    ({"user": "u1"}, None),
    ({"host": {"$ne": "h1"}, "until": {"$gt": MID}}, [("key_id", 1), ("host", 1)]),
    ({"_id": "d00042", "owner": "o1"}, None),
    ({"_id": "d00043"}, None),
    ({"key_id": {"$in": ["k1", "k3"]}, "team_id": "beta"}, [("n", 1)]),
    ({"team_id": 'a"b\\c<é\u2028'}, None),
    ({"team_id": "acme "}, None),
    ({"at": {"$lt": MID}}, None),
    ({"until": {"$lte": MID}}, None),
]


def _both(stores, fn):
    on, off = stores
    return fn(on.t.c), fn(off.t.c)


@pytest.fixture(scope="module")
def loaded(stores):
    docs = _docs(19)
    for c in stores:
        c.t.c.drop()
        for i in range(0, len(docs), 1000):
            c.t.c.insert_many([dict(d) for d in docs[i:i + 1000]])
        c.t.c.create_index([("team_id", 1), ("at", -1)], name="team_at")
        c.t.c.create_index([("team_id", 1), ("key_id", 1), ("at", -1)], name="team_key_at")
        c.t.c.create_index([("user", 1)], name="user")
        c.t.c.create_index([("at", 1)], name="at")
    return stores


@pytest.mark.parametrize("i", range(len(SHAPES)))
def test_find_and_count_equal_without_pushdown(loaded, i):
    flt, sort = SHAPES[i]

    def find(c):
        cur = c.find(flt)
        if sort:
            cur = cur.sort(sort + ([("_id", 1)] if ("_id", -1) not in sort else [])).limit(100)
        else:
            cur = cur.sort("_id", 1)
        return list(cur)

    a, b = _both(loaded, find)
    assert a == b
    a, b = _both(loaded, lambda c: c.count_documents(flt))
    assert a == b


def test_update_and_delete_equal_without_pushdown(loaded):
    on, off = loaded
    part = list(on.t.c.find({"n": {"$lt": 400}}))
    for flt, _ in SHAPES:
        for c in loaded:
            c.t.u.drop()
            c.t.u.insert_many([dict(d) for d in part])
        a, b = _both(loaded, lambda c: c.database.u.update_many(flt, {"$set": {"touched": 1}}).modified_count)
        assert a == b, flt
        a, b = _both(loaded, lambda c: c.database.u.delete_many(flt).deleted_count)
        assert a == b, flt
        a, b = _both(loaded, lambda c: list(c.database.u.find().sort("_id", 1)))
        assert a == b, flt
    # the whole collection still the same on both
    a, b = _both(loaded, lambda c: list(c.find().sort("_id", 1)))
    assert a == b


# The pushed shapes with the indexes of looped-admin init (fcgi/store_index.c).
PLANS = [
    ("audit", {"team_id": "acme"}),
    ("audit", {"team_id": "acme", "key_id": "k1"}),
    ("audit", {"team_id": "acme", "action": "api.request", "actor.id": "u1"}),
    ("api_keys", {"team_id": "acme", "revoked_at": None}),
    ("memberships", {"team_id": "acme", "user": "u1"}),
    ("memberships", {"user": "u1"}),
    ("api_keys", {"hash": "abc"}),
    ("idempotency_keys", {"_id": "x", "owner": "o"}),
]


def test_plans_search_the_indexes(stores):
    on, off = stores
    db = on.plans
    # the reference really is unpushed: without the pushdown {team_id} scans
    off.plans.audit.insert_one({"_id": "seed", "team_id": "acme"})
    off.plans.audit.create_index([("team_id", 1), ("at", -1)], name="team_at")
    plan = "\n".join(off.plans.command("explain", {"find": "audit", "filter": {"team_id": "acme"}})
                      ["queryPlanner"]["Plan"])
    assert "SCAN" in plan and "USING INDEX" not in plan, plan
    ix = {
        "memberships": [("team_user", ["team_id", "user"]), ("user", ["user"])],
        "api_keys": [("hash", ["hash"]), ("team_created", ["team_id", "-created_at", "-_id"])],
        "audit": [("team_at", ["team_id", "-at"]), ("team_key_at", ["team_id", "key_id", "-at"]),
                  ("at", ["at"])],
        "idempotency_keys": [("at", ["at"])],
    }
    for coll, specs in ix.items():
        db[coll].insert_one({"_id": "seed", "team_id": "acme"})
        for name, keys in specs:
            db[coll].create_index([(k.lstrip("-"), -1 if k[0] == "-" else 1) for k in keys], name=name)
    for coll, flt in PLANS:
        plan = db.command("explain", {"find": coll, "filter": flt})["queryPlanner"]["Plan"]
        text = "\n".join(plan)
        assert "USING INDEX" in text and "SEARCH" in text, (coll, flt, text)
        assert " SCAN " not in text.replace("detail=SCAN", " SCAN "), (coll, flt, text)
