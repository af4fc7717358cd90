"""The store at scale: seed a team quickly, and time the project's store queries on it.

  store_scale.py seed --uri URI [--db looped] [--team acme] --audit N --invoices N [--days D]
      inserts N audit records (spread over the last D days, as fcgi/store_audit.c writes them:
      api.request mostly, 200 keys, 50 users) and N invoices (1,000 customers, the statuses of
      schemas/invoices.json) into the team, in batches; prints what it did and how fast.
      deploy/dev seed calls this.
  store_scale.py run [--scales 10000,1000000] [--invoices 100000] [--out FILE.json]
      for each scale: a FerretDB of its own (tests/ferretdb/build, on 127.0.0.1, in
      var/bench/store-scale/), Looped's indexes (fcgi/store_index.c and the schemas'
      x-filterable fields, as looped-admin init makes them), the seed above, then p50/p99 of
      each query shape of the audit list, the page's audit view, the invoices list and the
      purge of a day, issued as fcgi/store*.c issues them (filter, sort, limit+1), and the p99 of
      key checks and writes idle and while another client pages through the whole audit (no
      store-wide stall). tests/bench/run --store-scale runs this.

Everything listens on 127.0.0.1; every loop is bounded (a fixed number of calls).
"""

import argparse
import datetime
import json
import os
import pathlib
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import bson
import pymongo

ROOT = pathlib.Path(__file__).resolve().parents[2]
UTC = datetime.timezone.utc
DAY_MS = 86400 * 1000
N_KEYS, N_USERS, N_CUSTOMERS = 200, 50, 1000


def audit_docs(team, n, days, now_ms, rng):
    """n audit records of team, oldest first, over the `days` days before now_ms."""
    span = days * DAY_MS
    start = now_ms - span
    for i in range(n):
        at = start + (i * span) // max(n, 1)
        k = rng.randrange(N_KEYS)
        by_key = rng.random() < 0.9
        doc = {"_id": bson.ObjectId(), "at": datetime.datetime.fromtimestamp(at / 1000, UTC),
               "team_id": team}
        if by_key:
            doc["actor"] = {"type": "key", "id": f"key_{k:04d}", "name": f"key {k}"}
            doc["key_id"] = f"key_{k:04d}"
            doc["key_name"] = f"key {k}"
            doc["action"] = "api.request"
        else:
            u = rng.randrange(N_USERS)
            doc["actor"] = {"type": "user", "id": f"user{u:02d}", "name": f"User {u}"}
            doc["key_id"] = None
            doc["action"] = rng.choice(["key.create", "key.update", "key.revoke", "invoices.update"])
        doc.update({"method": "GET", "path": f"/v1/teams/{team}/invoices", "status": 200,
                    "ip": "127.0.0.1", "user_agent": "store_scale/1", "request_id": f"r{i:08d}"})
        yield doc


def invoice_docs(team, n, now_ms, rng):
    for i in range(n):
        at = datetime.datetime.fromtimestamp((now_ms - rng.randrange(365 * DAY_MS)) / 1000, UTC)
        yield {"_id": f"inv_{i:08d}{rng.randrange(1 << 30):08x}", "team_id": team,
               "customer_id": f"cus_{rng.randrange(N_CUSTOMERS):05d}", "number": f"INV-{i:07d}",
               "currency": rng.choice(["EUR", "USD", "GBP"]),
               "status": rng.choice(["draft", "open", "open", "paid", "paid", "paid", "void"]),
               "issue_date": "2026-01-05", "due_date": "2026-02-04",
               "lines": [{"description": "Work", "quantity": 1, "unit_price": 1000 + i % 100}],
               "notes": "", "total": 1000 + i % 100, "created_at": at, "updated_at": at}


def insert_batches(coll, docs, batch=5000):
    n, buf = 0, []
    for d in docs:
        buf.append(d)
        if len(buf) == batch:
            coll.insert_many(buf, ordered=False)
            n += len(buf)
            buf = []
    if buf:
        coll.insert_many(buf, ordered=False)
        n += len(buf)
    return n


def seed(db, team, n_audit, n_invoices, days, now_ms, quiet=False):
    rng = random.Random(19)
    t0 = time.monotonic()
    a = insert_batches(db.audit, audit_docs(team, n_audit, days, now_ms, rng))
    t1 = time.monotonic()
    v = insert_batches(db.invoices, invoice_docs(team, n_invoices, now_ms, rng))
    t2 = time.monotonic()
    if not quiet:
        print(f"seeded team {team}: {a} audit records in {t1 - t0:.1f} s, {v} invoices in {t2 - t1:.1f} s",
              file=sys.stderr)
    return {"audit": a, "invoices": v, "audit_s": round(t1 - t0, 1), "invoices_s": round(t2 - t1, 1)}


def index_specs():
    """looped-admin init's indexes: fcgi/store_index.c's table, then per resource of
    schemas/*.json team_created and team_<field> per x-filterable field."""
    src = (ROOT / "fcgi" / "store_index.c").read_text()
    start = src.index("indexes[] = {")
    out = {}
    for m in re.finditer(r'\{"(\w+)", "(\w+)", \{([^}]*)\}', src[start:src.index("};", start)]):
        out.setdefault(m.group(1), []).append((m.group(2), re.findall(r'"([^"]+)"', m.group(3))))
    for f in sorted((ROOT / "schemas").glob("*.json")):
        schema = json.loads(f.read_text())
        if "x-id-prefix" not in schema:
            continue
        specs = out.setdefault(f.stem, [])
        specs.append(("team_created", ["team_id", "-created_at", "-_id"]))
        specs += [(f"team_{k}_created", ["team_id", k, "-created_at", "-_id"]) for k, v in schema["properties"].items()
                  if v.get("x-filterable")]
    return out


def create_indexes(db):
    for coll, specs in index_specs().items():
        for name, keys in specs:
            db[coll].create_index([(k.lstrip("-"), -1 if k[0] == "-" else 1) for k in keys], name=name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ferretdb(directory):
    binary = subprocess.run([str(ROOT / "tests" / "ferretdb" / "build")], capture_output=True,
                            text=True, check=True, timeout=1800).stdout.strip().splitlines()[-1]
    port = free_port()
    log = open(directory / "ferretdb.log", "wb")
    proc = subprocess.Popen([binary, "--handler=sqlite", f"--sqlite-url=file:{directory}/",
                             f"--listen-addr=127.0.0.1:{port}", "--telemetry=disable",
                             "--state-dir=-", "--debug-addr=-", "--log-level=error"],
                            stdout=log, stderr=subprocess.STDOUT)
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=20000,
                                 socketTimeoutMS=600000)
    client.admin.command("ping")
    return proc, client


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def timed(fn, calls):
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return {"p50_ms": round(out[len(out) // 2], 2), "p99_ms": round(out[min(len(out) - 1, (len(out) * 99) // 100)], 2),
            "calls": calls}


LIST_SORT = [("at", -1), ("_id", -1)]
DOC_SORT = [("created_at", -1), ("_id", -1)]


def measure(db, team, now_ms, days, calls):
    """p50/p99 of the project's store queries (as fcgi/store_audit.c and store_docs.c issue them)."""
    rng = random.Random(7)
    keys = [f"key_{k:04d}" for k in range(N_KEYS)]
    users = [f"user{u:02d}" for u in range(N_USERS)]
    customers = [f"cus_{c:05d}" for c in range(N_CUSTOMERS)]

    def at(ms):
        return datetime.datetime.fromtimestamp(ms / 1000, UTC)

    def audit(flt, limit):
        return lambda: list(db.audit.find(dict({"team_id": team}, **flt)).sort(LIST_SORT).limit(limit))

    mid = db.audit.find_one({"team_id": team}, sort=LIST_SORT, skip=db.audit.estimated_document_count() // 2)
    shapes = {
        "audit, the team's newest 100 (GET /audit)": lambda: audit({}, 101)(),
        "audit by key (GET /audit?key_id=)": lambda: audit({"key_id": rng.choice(keys)}, 101)(),
        "audit by actor (GET /audit?actor=)": lambda: audit({"actor.id": rng.choice(users)}, 101)(),
        "audit by time range (since/until, 1 h)": lambda: audit(
            {"at": {"$gte": at(now_ms - rng.randrange(days * DAY_MS)),
                    "$lte": at(now_ms - rng.randrange(days * DAY_MS) + 3600 * 1000)}}, 101)(),
        "the page's audit view (key_id, limit 20)": lambda: audit({"key_id": rng.choice(keys)}, 21)(),
        "audit, a page in the middle (keyset cursor)": lambda: audit(
            {"$or": [{"at": {"$lt": mid["at"]}}, {"at": mid["at"], "_id": {"$lt": mid["_id"]}}]}, 101)(),
        "invoices?status=open&customer_id=": lambda: list(db.invoices.find(
            {"team_id": team, "status": "open", "customer_id": rng.choice(customers)}).sort(DOC_SORT).limit(21)),
    }
    out = {}
    for name, fn in shapes.items():
        fn()  # warm (the first query of a collection also reads its field profile)
        out[name] = timed(fn, calls)
        print(f"  {name}: p50 {out[name]['p50_ms']} ms, p99 {out[name]['p99_ms']} ms", file=sys.stderr)
    out["no store-wide stall"] = stall(db, team, now_ms, calls)
    # The purge of a day: the retention purge's {at < cutoff} (store_audit_purge), cutoff one day
    # after the oldest record; once (it deletes what it times).
    oldest = db.audit.find_one({}, sort=[("at", 1)])["at"]
    t = time.perf_counter()
    n = db.audit.delete_many({"at": {"$lt": oldest + datetime.timedelta(days=1)}}).deleted_count
    out["purge of a day"] = {"ms": round((time.perf_counter() - t) * 1000, 1), "deleted": n}
    print(f"  purge of a day: {out['purge of a day']}", file=sys.stderr)
    return out


def second_client(client, **options):
    """Another client (its own connections) of the store `client` talks to."""
    host, port = client.address
    return pymongo.MongoClient(f"mongodb://{host}:{port}/", **options)


def stall(db, team, now_ms, calls, page_s=90.0):
    """No store-wide stall: p99 of a key check (find by hash, store_keys.c), an audited request's
    writes (a batch of 10 records as the audit writer sends it, then the key's last-used update)
    and a resource write (an invoice update), idle and then while another client pages through the
    team's whole audit with the keyset cursor (101 a page; bounded: page_s seconds)."""
    rng = random.Random(11)
    if db.api_keys.count_documents({"team_id": team}) == 0:
        db.api_keys.insert_many([{"_id": f"key_{k:04d}", "team_id": team, "hash": f"{k:064x}",
                                  "created_at": datetime.datetime.fromtimestamp(now_ms / 1000, UTC),
                                  "revoked_at": None, "last_used_at": None} for k in range(N_KEYS)])
    invoice_ids = [d["_id"] for d in db.invoices.find({"team_id": team}, {"_id": 1}).limit(1000)]

    def key_check():
        db.api_keys.find_one({"hash": f"{rng.randrange(N_KEYS):064x}"})

    def audited():
        k = rng.randrange(N_KEYS)
        when = datetime.datetime.now(UTC)
        db.audit.insert_many([{"_id": bson.ObjectId(), "at": when, "team_id": team, "key_id": f"key_{k:04d}",
                               "actor": {"type": "key", "id": f"key_{k:04d}"}, "action": "api.request",
                               "status": 200} for _ in range(10)], ordered=False)
        db.api_keys.update_one({"_id": f"key_{k:04d}"}, {"$set": {"last_used_at": when}})

    def write():
        if invoice_ids:
            db.invoices.update_one({"_id": rng.choice(invoice_ids), "team_id": team},
                                   {"$set": {"updated_at": datetime.datetime.now(UTC)}})

    ops = {"key check": key_check, "audited request (10 records + last-used)": audited, "invoice update": write}
    idle = {name: timed(fn, calls) for name, fn in ops.items()}

    pages = [0]
    done = threading.Event()
    pager = second_client(db.client)

    def page_all():
        flt, deadline = {"team_id": team}, time.monotonic() + page_s
        while not done.is_set() and time.monotonic() < deadline:
            page = list(pager.looped.audit.find(flt).sort(LIST_SORT).limit(101))
            pages[0] += 1
            if len(page) < 101:
                break
            last = page[99]
            flt = {"team_id": team, "$or": [{"at": {"$lt": last["at"]}},
                                            {"at": last["at"], "_id": {"$lt": last["_id"]}}]}

    t = threading.Thread(target=page_all)
    t0 = time.monotonic()
    t.start()
    loaded = {name: timed(fn, calls) for name, fn in ops.items()}
    done.set()
    t.join()
    pager.close()
    elapsed = time.monotonic() - t0
    out = {"pager_pages_per_s": round(pages[0] / elapsed, 1)}
    for name in ops:
        out[name] = {"idle_p99_ms": idle[name]["p99_ms"], "paging_p99_ms": loaded[name]["p99_ms"],
                     "ratio": round(loaded[name]["p99_ms"] / max(idle[name]["p99_ms"], 0.001), 2)}
    print(f"  no store-wide stall: {out}", file=sys.stderr)
    return out


def first_queries(client, timeout_s):
    """The first lists after a start (bounded: a store still reading its field profile may answer
    from a scan), then how long until explain says the limit is pushed (the profile is known)."""
    out = {}
    quick = second_client(client, socketTimeoutMS=int(timeout_s * 1000))
    t0 = time.perf_counter()
    for name, coll, flt, sort, limit in (
            ("first audit list after start", "audit", {"team_id": "acme"}, LIST_SORT, 101),
            ("first invoices list after start", "invoices", {"team_id": "acme", "status": "open"}, DOC_SORT, 21)):
        t = time.perf_counter()
        try:
            list(quick.looped[coll].find(flt).sort(sort).limit(limit))
            out[name + "_ms"] = round((time.perf_counter() - t) * 1000, 1)
        except pymongo.errors.NetworkTimeout:
            out[name + "_ms"] = f"> {timeout_s * 1000:.0f} (timed out)"
    deadline = time.monotonic() + 1800
    for coll in ("audit", "invoices"):
        while time.monotonic() < deadline:
            e = client.looped.command("explain", {"find": coll, "filter": {"team_id": "acme"},
                                                  "sort": dict(LIST_SORT if coll == "audit" else DOC_SORT),
                                                  "limit": 21})
            if e["limitPushdown"]:
                break
            time.sleep(1)
    out["field profile known after start_s"] = round(time.perf_counter() - t0, 1)
    quick.close()
    print(f"  {out}", file=sys.stderr)
    return out


def cmd_run(args):
    results = {"when": datetime.datetime.now(UTC).isoformat(timespec="seconds"),
               "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip(),
               "scales": {}}
    base = ROOT / "var" / "bench" / "store-scale"
    for n in [int(x) for x in args.scales.split(",")]:
        d = base / str(n)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        proc, client = start_ferretdb(d)
        try:
            db = client.looped
            create_indexes(db)
            now_ms = int(time.time() * 1000)
            print(f"scale {n}:", file=sys.stderr)
            r = {"seed": seed(db, "acme", n, args.invoices, args.days, now_ms)}
            # a second team, so that "the team's" is not "the collection's"
            insert_batches(db.audit, audit_docs("other", max(n // 10, 1000), args.days, now_ms, random.Random(3)))
            stop(proc)  # from a fresh start: the field profile is read (in the background) on first use
            proc, client = start_ferretdb(d)
            db = client.looped
            r.update(first_queries(client, args.first_timeout))
            r.update(measure(db, "acme", now_ms, args.days, args.calls))
            results["scales"][str(n)] = r
        finally:
            stop(proc)
    out = pathlib.Path(args.out) if args.out else ROOT / "var" / "bench" / (
        time.strftime("%Y%m%d-%H%M%S") + "-store-scale.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written {out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--uri", required=True)
    s.add_argument("--db", default="looped")
    s.add_argument("--team", default="acme")
    s.add_argument("--audit", type=int, default=0)
    s.add_argument("--invoices", type=int, default=0)
    s.add_argument("--days", type=int, default=30)
    r = sub.add_parser("run")
    r.add_argument("--scales", default="10000,1000000")
    r.add_argument("--invoices", type=int, default=100000)
    r.add_argument("--days", type=int, default=30)
    r.add_argument("--calls", type=int, default=100)
    r.add_argument("--first-timeout", type=float, default=10.0)
    r.add_argument("--out")
    args = ap.parse_args()
    if args.cmd == "seed":
        client = pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=10000, socketTimeoutMS=600000)
        seed(client[args.db], args.team, args.audit, args.invoices, args.days, int(time.time() * 1000))
    else:
        cmd_run(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
