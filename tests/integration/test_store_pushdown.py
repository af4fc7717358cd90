"""The FerretDB SQLite pushdown (tests/ferretdb/sqlite-pushdown.patch), against the store itself.

Differential: two FerretDB processes from the same binary, one with LOOPED_FERRETDB_PUSHDOWN=off
(upstream behaviour), hold the same random collections of 5,000 documents each: `odd` (scalars,
arrays, nested documents, missing fields, nulls, mixed types in every field) and `typed` (the
types Looped stores, with missing fields, nulls where Looped writes them and many equal
timestamps), on which the pushdown is exact and pushes sort and limit too. Every query shape the
project issues (fcgi/store*.c) gives the same answers on both, document for document: find with
sort and limit, count, update_many, delete_many; on `typed` explain says the limit was pushed,
and a document of another type written later takes that back (the field profile of the patch).

Plans: with the project's indexes (read from fcgi/store_index.c and the schemas' x-filterable
fields), `explain` (EXPLAIN QUERY PLAN on the store's SQLite file) shows SEARCH ... USING INDEX,
and no SCAN, for each of the project's shapes with its sort and limit; the lists push their limit.
"""

import concurrent.futures
import datetime
import os
import pathlib
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import bson
import pymongo
import pytest

from looped_test.procs import free_port
from looped_test.stack import ferretdb_binary

N_DOCS = 5000
UTC = datetime.timezone.utc


STORE_DIRS = {}  # "on" and "off": the SQLite directory of each store of the fixture


def _start(tmp, name, env_extra):
    d = os.path.join(tmp, name)
    STORE_DIRS[name] = d
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


def _typed(seed):
    """Documents with the types Looped writes (fcgi/store*.c): ObjectID ids, dates of this
    century (many equal), strings, key_id null for session actions, revoked_at/expires_at null
    or a date, actor a document; fields missing now and then."""
    rng = random.Random(seed)
    base = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(N_DOCS):
        at = base + datetime.timedelta(seconds=rng.randint(0, 1500) * 600)
        d = {"_id": bson.ObjectId(), "team_id": rng.choice(TEAMS), "at": at,
             "actor": {"type": rng.choice(["key", "user"]), "id": rng.choice(["u1", "u2", "u3"])},
             "key_id": rng.choice(KEYS + [None]), "action": rng.choice(ACTIONS),
             "created_at": at, "until": at, "host": rng.choice(["h1", "h2"]),
             "owner": rng.choice(["o1", "o2"]), "user": rng.choice(["u1", "u2"]),
             "status": rng.choice(["open", "paid", "draft"]),
             "customer_id": rng.choice(["c1", "c2", "c3", "c4"]),
             "revoked_at": None if rng.random() < 0.7 else at,
             "expires_at": None if rng.random() < 0.5 else at + datetime.timedelta(days=3),
             "n": i}
        for f in ("key_id", "action", "host", "owner", "user", "status", "customer_id", "revoked_at"):
            if rng.random() < 0.03:
                del d[f]
        out.append(d)
    return out


MID = datetime.datetime(2026, 1, 6, tzinfo=UTC)
LATE = datetime.datetime(2026, 1, 9, tzinfo=UTC)
PIVOT = object()  # replaced by the keyset cursor's {$or} at a document of the collection


def _after(at, _id):
    return {"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": _id}}]}


# (filter, sort, exact on `typed`) of the project's finds, counts, updates and deletes
# (fcgi/store*.c). exact: explain says the limit was pushed (filter and sort exact).
SHAPES = [
    ({"team_id": "acme"}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "key_id": "k1"}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "action": "api.request"}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "key_id": "k2", "action": "api.request"}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "beta", "actor.id": "u1"}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "at": {"$gte": MID, "$lte": LATE}}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "at": {"$gte": MID}}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "key_id": "k3", "at": {"$lte": LATE}}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "acme", PIVOT: 0}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "beta", "key_id": "k1", PIVOT: 0}, [("at", -1), ("_id", -1)], True),
    ({"team_id": "gamma", "revoked_at": {"$ne": None}}, [("created_at", -1), ("_id", -1)], True),
    ({"team_id": "gamma", "revoked_at": None}, [("created_at", -1), ("_id", -1)], True),
    ({"team_id": "gamma", "revoked_at": None, "expires_at": {"$lte": LATE}},
     [("created_at", -1), ("_id", -1)], False),  # expires_at holds nulls: no range pushed
    ({"team_id": "gamma", "revoked_at": None,
      "$and": [{"$or": [{"expires_at": None}, {"expires_at": {"$gt": MID}}]}]},
     [("created_at", -1), ("_id", -1)], False),
    ({"team_id": "acme", "status": "open", "customer_id": "c2"}, [("created_at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "status": "open"}, [("created_at", -1), ("_id", -1)], True),
    ({"team_id": "acme", "user": "u2"}, [("user", 1)], True),
    ({"user": "u1"}, None, True),
    ({"host": {"$ne": "h1"}, "until": {"$gt": MID}}, [("key_id", 1), ("host", 1)], False),  # key_id null
    ({"until": {"$gt": MID}}, [("host", 1), ("_id", 1)], True),
    ({"_id": PIVOT, "owner": "o1"}, None, True),
    ({"_id": PIVOT}, None, True),
    ({"key_id": {"$in": ["k1", "k3"]}, "team_id": "beta"}, [("n", 1)], False),  # n: an int
    ({"_id": {"$in": [PIVOT, "d00007"]}}, None, True),
    ({"team_id": 'a"b\\c<é\u2028'}, None, False),
    ({"team_id": "acme "}, None, True),
    ({"at": {"$lt": MID}}, None, True),
    ({"until": {"$lte": MID}}, None, True),
]


def _shape(c, i):
    """Shape i for collection c, with the keyset cursor and _id taken from c's documents."""
    flt, sort, exact = SHAPES[i]
    pivot = c.find_one({}, sort=[("n", 1)], skip=N_DOCS // 2)
    out = {}
    for k, v in flt.items():
        if k is PIVOT:
            out["$or"] = _after(pivot["at"] if isinstance(pivot["at"], datetime.datetime) else MID,
                                pivot["_id"])["$or"]
        elif v is PIVOT:
            out[k] = pivot["_id"]
        elif isinstance(v, dict) and "$in" in v:
            out[k] = {"$in": [pivot["_id"] if x is PIVOT else x for x in v["$in"]]}
        else:
            out[k] = v
    return out, sort, exact


_POOL = concurrent.futures.ThreadPoolExecutor(2)


def _both(stores, fn):
    """fn on both stores, at the same time (two FerretDB processes, two cores)."""
    on, off = stores
    b = _POOL.submit(fn, off)
    return fn(on), b.result()


@pytest.fixture(scope="module")
def loaded(stores):
    """Both stores with the collections odd and typed (the same documents), Looped's indexes."""
    colls = {"odd": _docs(19), "typed": _typed(23)}
    for c in stores:
        for name, docs in colls.items():
            coll = c.t[name]
            coll.drop()
            for i in range(0, len(docs), 1000):
                coll.insert_many([dict(d) for d in docs[i:i + 1000]])
            coll.create_index([("team_id", 1), ("at", -1)], name="team_at")
            coll.create_index([("team_id", 1), ("key_id", 1), ("at", -1)], name="team_key_at")
            coll.create_index([("team_id", 1), ("actor.id", 1), ("at", -1)], name="team_actor_at")
            coll.create_index([("user", 1)], name="user")
            coll.create_index([("at", 1)], name="at")
    return stores


def _find(coll, flt, sort, limit=100):
    cur = coll.find(flt)
    if sort:
        return list(cur.sort(sort + ([("_id", 1)] if not any(k == "_id" for k, _ in sort) else []))
                    .limit(limit))
    return list(cur.sort("_id", 1))


def _explain(coll, flt, sort, limit=100):
    cmd = {"find": coll.name, "filter": flt, "limit": limit}
    if sort:
        cmd["sort"] = dict(sort)
    return coll.database.command("explain", cmd)


@pytest.mark.parametrize("name", ["odd", "typed"])
@pytest.mark.parametrize("i", range(len(SHAPES)))
def test_find_and_count_equal_without_pushdown(loaded, name, i):
    on, off = loaded
    flt, sort, exact = _shape(on.t[name], i)
    assert flt == _shape(off.t[name], i)[0]
    # limit 7: a limit that cuts the keyset page and the ties of equal timestamps (typed)
    for limit in (100, 7) if sort and name == "typed" else (100,):
        a, b = _both(loaded, lambda c: _find(c.t[name], flt, sort, limit))
        assert a == b
    if name == "typed" and sort:
        assert a, "the list selects something in typed: it tests something"
    a, b = _both(loaded, lambda c: c.t[name].count_documents(flt))
    assert a == b
    if name == "typed" and sort:
        # the sort and limit are pushed exactly where filter and sort are exact
        assert _explain(on.t[name], flt, sort)["limitPushdown"] is exact, (flt, sort)
        assert _explain(off.t[name], flt, sort)["limitPushdown"] is False


@pytest.mark.parametrize("name", ["odd", "typed"])
def test_update_and_delete_equal_without_pushdown(loaded, name):
    on, off = loaded
    part = list(on.t[name].find({"n": {"$lt": 300}}))
    for i in range(len(SHAPES)):
        flt, _, _ = _shape(on.t[name], i)
        for c in loaded:
            c.t.u.drop()
            c.t.u.insert_many([dict(d) for d in part])
        a, b = _both(loaded, lambda c: c.t.u.update_many(flt, {"$set": {"touched": 1}}).modified_count)
        assert a == b, flt
        a, b = _both(loaded, lambda c: c.t.u.update_one(flt, {"$set": {"one": 1}}).modified_count)
        assert a == b, flt
        a, b = _both(loaded, lambda c: c.t.u.delete_many(flt).deleted_count)
        assert a == b, flt
        a, b = _both(loaded, lambda c: list(c.t.u.find().sort("_id", 1)))
        assert a == b, flt
    a, b = _both(loaded, lambda c: list(c.t[name].find().sort("_id", 1)))
    assert a == b


# Values that SQL would compare or order otherwise than MongoDB: each, written into a copy of
# typed, must end the exact pushdown of the shapes on its field, with the answers still equal.
LATE_WRITES = [
    ("at", 5),                                                   # an int among dates
    ("at", datetime.datetime(1990, 1, 1, tzinfo=UTC)),           # a date of 12 digits
    ("at", [MID, LATE]),                                         # an array of dates
    ("team_id", ["acme", "beta"]),                               # an array: matches {team_id: acme}
    ("key_id", bson.ObjectId("6b31000000000000000000aa")),       # an ObjectID among strings
    ("actor", [{"id": "u1"}]),                                   # an array on the dotted path
]


@pytest.mark.parametrize("field,value", LATE_WRITES, ids=[f"{f}-{type(v).__name__}" for f, v in LATE_WRITES])
def test_a_late_odd_value_ends_the_exact_pushdown(loaded, field, value):
    on, off = loaded
    docs = list(on.t.typed.find({"n": {"$lt": 1500}}))
    for c in loaded:
        c.t.late.drop()
        c.t.late.insert_many([dict(d) for d in docs])
        c.t.late.create_index([("team_id", 1), ("key_id", 1), ("at", -1)], name="team_key_at")
        c.t.late.create_index([("team_id", 1), ("actor.id", 1), ("at", -1)], name="team_actor_at")
    flt = {"team_id": "acme", "key_id": "k1", "actor.id": "u1"}
    sort = [("at", -1), ("_id", -1)]
    assert _explain(on.t.late, flt, sort)["limitPushdown"] is True
    # the newest record of the queried key and actor, but with the odd value
    newest = dict(docs[0], _id=bson.ObjectId(), team_id="acme", key_id="k1", actor={"type": "key", "id": "u1"},
                  at=LATE + datetime.timedelta(days=1))
    newest[field] = value
    for c in loaded:
        if field == "at":
            c.t.late.insert_one(dict(newest))
        else:  # through an update, the other write path
            c.t.late.insert_one(dict(newest, **{field: "k9" if field == "key_id" else "zz"}))
            c.t.late.update_one({"_id": newest["_id"]}, {"$set": {field: value}})
    assert _explain(on.t.late, flt, sort)["limitPushdown"] is False
    for limit in (1, 5, 100):
        a, b = _both(loaded, lambda c: _find(c.t.late, flt, sort, limit))
        assert a == b
    a, b = _both(loaded, lambda c: _find(c.t.late, {"team_id": "acme", "at": {"$lt": MID}}, sort, 5))
    assert a == b


def _index_specs():
    """The indexes of looped-admin init (fcgi/store_index.c and the schemas' x-filterable
    fields), as tests/bench/store_scale.py reads them for its store."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    try:
        import store_scale
    finally:
        sys.path.pop(0)
    return store_scale.index_specs()


# The plans are asked of a store holding a month of a small installation in the proportions of
# production (one team in ten, most audit records api.request, the retention purge a day, the
# rate counters of ten hosts), after the patch's ANALYZE: with statistics SQLite weighs an index
# against a scan, and a constant that selects most of a small table rightly gets a scan. So
# each shape's constants select a few per cent, as in production, and the test waits for the
# statistics instead of racing them (without them the planner guesses a million rows).
END = datetime.datetime(2026, 1, 9, tzinfo=UTC)  # "now" of the plans' store
CUT = END - datetime.timedelta(days=29)  # the audit purge: records older than this (3%)
RECENT = END - datetime.timedelta(days=1)  # a time range, a page of a key: the last day
IDEM_CUT = END - datetime.timedelta(hours=24)  # idempotency keys are kept 24 h (of 25 h)
EXPIRED = END - datetime.timedelta(minutes=55)  # rate counters: until within END +- 1 h
LIVE = END + datetime.timedelta(minutes=55)


def _after_created(at, _id):
    return {"$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": _id}}]}


OID = bson.ObjectId("6b31000000000000000000aa")

# The project's shapes as fcgi/store*.c issues them, with their sort and limit (None: none).
# limit pushed: the lists (filter and sort exact on a store of Looped's documents).
PLANS = [
    # store_audit.c: the list by key (the page's audit view: key_id, limit 20), by actor, by
    # action, by time range, a next page (the keyset cursor), the purge
    ("audit", {"team_id": "acme"}, [("at", -1), ("_id", -1)], 101),
    ("audit", {"team_id": "acme", "key_id": "k1"}, [("at", -1), ("_id", -1)], 21),
    ("audit", {"team_id": "acme", "actor.id": "u1"}, [("at", -1), ("_id", -1)], 101),
    ("audit", {"team_id": "acme", "action": "api.request"}, [("at", -1), ("_id", -1)], 101),
    ("audit", {"team_id": "acme", "at": {"$gte": RECENT, "$lte": END}}, [("at", -1), ("_id", -1)], 101),
    ("audit", {"team_id": "acme", "key_id": "k1", "at": {"$gte": RECENT}}, [("at", -1), ("_id", -1)], 101),
    ("audit", dict({"team_id": "acme", "key_id": "k1"}, **_after(RECENT, OID)), [("at", -1), ("_id", -1)], 21),
    ("audit", dict({"team_id": "acme"}, **_after(RECENT, OID)), [("at", -1), ("_id", -1)], 101),
    ("audit", {"at": {"$lt": CUT}}, None, None),
    # store_keys.c: the keys list (and its next page), lookups by hash
    ("api_keys", {"team_id": "acme"}, [("created_at", -1), ("_id", -1)], 101),
    ("api_keys", {"team_id": "acme", "revoked_at": None}, [("created_at", -1), ("_id", -1)], 101),
    ("api_keys", {"team_id": "acme", "revoked_at": {"$ne": None}}, [("created_at", -1), ("_id", -1)], 101),
    ("api_keys", dict({"team_id": "acme"}, **{"$and": [_after_created(RECENT, "key_x")]}),
     [("created_at", -1), ("_id", -1)], 101),
    ("api_keys", {"hash": "abc"}, None, 1),
    ("api_keys", {"_id": {"$in": ["k1", "k2"]}}, None, None),
    # store_docs.c: a resource list with filters (invoices?status=open&customer_id=...)
    ("invoices", {"team_id": "acme", "status": "open", "customer_id": "c1"}, [("created_at", -1), ("_id", -1)], 21),
    ("invoices", {"team_id": "acme", "status": "open"}, [("created_at", -1), ("_id", -1)], 21),
    ("invoices", dict({"team_id": "acme"}, **_after_created(RECENT, "inv_x")), [("created_at", -1), ("_id", -1)], 21),
    ("invoices", {"_id": "inv_1", "team_id": "acme"}, None, None),
    # store_people.c: memberships
    ("memberships", {"team_id": "acme", "user": "u1"}, None, 1),
    ("memberships", {"team_id": "acme"}, [("user", 1)], None),
    ("memberships", {"user": "u1"}, None, None),
    # store_idem.c, store_rate.c: the purges and the hosts' reads
    ("idempotency_keys", {"_id": "x", "owner": "o"}, None, None),
    ("idempotency_keys", {"at": {"$lt": IDEM_CUT}}, None, None),
    ("rate_counts", {"until": {"$lte": EXPIRED}}, None, None),
    ("rate_counts", {"until": {"$gt": LIVE}, "host": {"$ne": "h1"}}, None, None),
    ("rate_counts", {"until": {"$gt": LIVE}}, [("key_id", 1), ("host", 1)], 10000),
]


def _installation(rng, coll):
    """The documents of `coll` in a month of a small installation (see END above)."""
    def team():
        return "acme" if rng.random() < 0.1 else f"t{rng.randint(1, 9)}"

    def moment(span):
        return END - datetime.timedelta(seconds=rng.randint(0, int(span.total_seconds())))

    month = datetime.timedelta(days=30)
    if coll == "audit":
        return [{"_id": bson.ObjectId(), "team_id": team(), "at": moment(month),
                 "key_id": f"k{rng.randint(0, 29)}", "actor": {"type": "key", "id": f"u{rng.randint(0, 29)}"},
                 "action": "api.request" if rng.random() < 0.97 else "api_key.created",
                 "host": f"h{rng.randint(0, 9)}"} for _ in range(3000)]
    if coll == "api_keys":
        return [{"_id": f"key_{i}", "team_id": team(), "created_at": moment(month),
                 "revoked_at": None if rng.random() < 0.8 else END, "hash": f"{rng.getrandbits(128):032x}",
                 "expires_at": None} for i in range(400)]
    if coll == "memberships":
        return [{"_id": f"m{i}", "team_id": team(), "user": f"u{i % 150}"} for i in range(300)]
    if coll == "idempotency_keys":
        return [{"_id": f"i{i}", "owner": f"o{rng.randint(0, 99)}", "at": moment(datetime.timedelta(hours=25))}
                for i in range(600)]
    if coll == "rate_counts":
        return [{"_id": f"r{i}", "key_id": f"k{i % 100}", "host": f"h{i // 100}",
                 "until": END - datetime.timedelta(hours=1) + datetime.timedelta(seconds=rng.randint(0, 7200)),
                 "n": 1} for i in range(1000)]
    # a resource: the invoices and the other collections of schemas/
    return [{"_id": f"{coll}_{i}", "team_id": team(), "created_at": moment(month),
             "status": rng.choice(["draft", "open", "paid", "void"]), "customer_id": f"c{rng.randint(0, 49)}"}
            for i in range(2000 if coll == "invoices" else 50)]


def _analysed_tables(d):
    """The tables of the store's database `plans` that have statistics (sqlite_stat1)."""
    con = sqlite3.connect(f"file:{d}/plans.sqlite?mode=ro", uri=True, timeout=5)
    try:
        return {t for (t,) in con.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
    except sqlite3.OperationalError:  # no ANALYZE yet: no sqlite_stat1
        return set()
    finally:
        con.close()


def test_plans_search_the_indexes(stores):
    on, off = stores
    db = on.plans
    # the reference really is unpushed: without the pushdown {team_id} scans
    off.plans.audit.insert_one({"_id": "seed", "team_id": "acme"})
    off.plans.audit.create_index([("team_id", 1), ("at", -1)], name="team_at")
    plan = "\n".join(off.plans.command("explain", {"find": "audit", "filter": {"team_id": "acme"}})
                     ["queryPlanner"]["Plan"])
    assert "SCAN" in plan and "USING INDEX" not in plan, plan
    ix = _index_specs()
    assert ("team_actor_at", ["team_id", "actor.id", "-at"]) in ix["audit"]
    assert ("team_status_created", ["team_id", "status", "-created_at", "-_id"]) in ix["invoices"]
    rng = random.Random(19)
    for coll, specs in ix.items():
        db[coll].insert_many(_installation(rng, coll))
        for name, keys in specs:
            db[coll].create_index([(k.lstrip("-"), -1 if k[0] == "-" else 1) for k in keys], name=name)
    # the first query of a collection starts the patch's profile scan, ANALYZE follows it
    queried = {coll for coll, _, _, _ in PLANS}
    for coll in queried:
        db.command("explain", {"find": coll, "filter": next(f for c, f, _, _ in PLANS if c == coll)})
    deadline = time.time() + 60
    while len(_analysed_tables(STORE_DIRS["on"])) < len(queried):
        assert time.time() < deadline, ("no statistics after 60 s", _analysed_tables(STORE_DIRS["on"]))
        time.sleep(0.2)
    for coll, flt, sort, limit in PLANS:
        cmd = {"find": coll, "filter": flt}
        if sort:
            cmd["sort"] = dict(sort)
        if limit:
            cmd["limit"] = limit
        res = db.command("explain", cmd)
        text = "\n".join(res["queryPlanner"]["Plan"])
        assert "USING INDEX" in text and "SEARCH" in text, (coll, flt, text)
        assert " SCAN " not in text.replace("detail=SCAN", " SCAN "), (coll, flt, text)
        if sort and limit:
            assert res["limitPushdown"] is True, (coll, flt, sort, text)


def test_a_purge_deletes_more_ids_than_a_statement_holds(stores):
    """The retention purge of a day at a million records deletes tens of thousands of
    documents with one filter: more ids than SQLite takes in one statement (32,766), which
    upstream's DeleteAll sends; the patch deletes them 10,000 at a time in one transaction."""
    on, _ = stores
    c = on.purge.audit
    old = END - datetime.timedelta(days=40)
    c.insert_many([{"_id": bson.ObjectId(), "team_id": "acme", "at": old + datetime.timedelta(seconds=i)}
                   for i in range(33000)])
    c.insert_many([{"_id": bson.ObjectId(), "team_id": "acme", "at": END} for _ in range(10)])
    c.create_index([("at", -1)], name="at")
    assert c.delete_many({"at": {"$lt": CUT}}).deleted_count == 33000
    assert c.count_documents({}) == 10
