#!/usr/bin/env python3
"""bench.py: the benchmark of docs/bench.md (targets T1-T13), started by tests/bench/run.

One run on one machine: FerretDB (SQLite backend) in a temporary directory, two looped-fcgi
pools in the production configuration (main: audit on; "A0": LOOPED_AUDIT=0), each behind its
own instance of the web server started from deploy/ unchanged, all on loopback. Seeds 10,000
keys and an invoice, runs the variants H, H0, A0, A, R, W, S interleaved with wrk (closed loop,
same connections), latency at a fixed rate with h2load, then the correctness phases (T7 revoke
probe, T8 unknown-key flood, T9 audit soak with a SIGHUP, T12 memory), writes
var/bench/<timestamp>.json and prints the table. `bench.py --table FILE` prints it again.
"""
import argparse
import bisect
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "bench"
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from looped_test.procs import stop_process  # noqa: E402 (the integration suite's, shared)
DEPLOY = ROOT / "deploy"
IS_ROOT = os.geteuid() == 0
WEB_USER = "www-data" if IS_ROOT else ""
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TEAM = "bench"
OWNER = "bench-owner"
NKEYS = 10000
NLIMITED = 1000  # variant L's keys (fewer: every key of the run stays in the key cache)
# The store commands that read (T5 counts them all, whatever collection they read).
READS = ("find", "getMore", "aggregate", "count", "distinct")
DB = "looped_bench"

started = []  # every process this run started (stopped at exit, by pid/own session only)
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes


def popen(argv, logfile, env=None, **kw):
    out = open(logfile, "ab")
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True, **kw)
    out.close()
    started.append(p)
    return p


def stop_all():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish cleaning up even if asked twice
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for p in reversed(started):
        try:
            stop_process(p, timeout=20)
        except Exception:  # noqa: BLE001 (the others must still be stopped)
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fn():
                return
        except Exception:  # noqa: BLE001 (not up yet)
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def children(pid):
    out = []
    for t in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in t.read_text().split()]
        except OSError:
            pass
    return sorted(out)


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ticks(pid):
    """utime + stime of a process (clock ticks), 0 if it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_ticks():
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def chown_web(path):
    if IS_ROOT:
        shutil.chown(path, WEB_USER, WEB_USER)


def loadavg():
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---------------------------------------------------------------------------------------------
# key material (fcgi/auth.c): looped_ + 40 base62 + CRC-32 of the first 47 as 6 base62 digits


def key_checksum(prefix47):
    crc = zlib.crc32(prefix47.encode())
    out = []
    for _ in range(6):
        out.append(BASE62[crc % 62])
        crc //= 62
    return "".join(reversed(out))


def key_new(rng):
    body = "looped_" + "".join(rng.choice(BASE62) for _ in range(40))
    return body + key_checksum(body)


def key_hint(key):
    return "looped_" + key[7:11] + "\u2026" + key[-4:]


# ---------------------------------------------------------------------------------------------
# the store


class Store:
    def __init__(self, run):
        self.port, self.debug_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="looped-bench-store-"))
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        binary = subprocess.run([ROOT / "tests/ferretdb/build"], capture_output=True, text=True,
                                check=True, timeout=1800).stdout.strip()
        self.proc = popen([binary, "--handler=sqlite", f"--sqlite-url=file:{self.dir}/",
                           f"--listen-addr=127.0.0.1:{self.port}", "--telemetry=disable",
                           "--state-dir=-", f"--debug-addr=127.0.0.1:{self.debug_port}",
                           "--log-level=warn"], run / "ferretdb.log")
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 0.5).close() or True,
                   30, "FerretDB")
        import pymongo
        self.client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=10000)
        self.db = self.client[DB]

    def metrics(self):
        """Command and cursor counters from FerretDB's Prometheus endpoint."""
        txt = urllib.request.urlopen(f"http://127.0.0.1:{self.debug_port}/debug/metrics",
                                     timeout=10).read().decode()
        cmds, cursors = {}, {}
        for line in txt.splitlines():
            m = re.match(r'ferretdb_client_requests_total\{command="([^"]+)"[^}]*\} (\S+)', line)
            if m:
                cmds[m[1]] = cmds.get(m[1], 0) + float(m[2])
            m = re.match(r'ferretdb_cursors_created_total\{collection="([^"]*)"[^}]*\} (\S+)', line)
            if m:
                cursors[m[1]] = cursors.get(m[1], 0) + float(m[2])
        return {"commands": cmds, "cursors": cursors}

    @staticmethod
    def delta(a, b):
        out = {}
        for part in ("commands", "cursors"):
            keys = set(a[part]) | set(b[part])
            d = {k: int(b[part].get(k, 0) - a[part].get(k, 0)) for k in keys}
            # The driver's heartbeats are not queries of the application.
            out[part] = {k: v for k, v in sorted(d.items())
                         if v and k not in ("ismaster", "isMaster", "hello", "ping", "buildInfo")}
        return out

    def count(self, coll):
        """Documents in a collection: collStats (SQLite's count, fast); count_documents would
        make FerretDB decode every document."""
        try:
            return int(self.db.command("collStats", coll)["count"])
        except Exception:  # noqa: BLE001
            return self.db[coll].count_documents({})

    def connections(self):
        """Established connections to the store port, per pid of the client end."""
        r = subprocess.run(["ss", "-tnpH", "state", "established", "( dport = :%d )" % self.port],
                           capture_output=True, text=True, timeout=10)
        per = {}
        for line in r.stdout.splitlines():
            for pid in re.findall(r"pid=(\d+)", line)[:1]:
                per[int(pid)] = per.get(int(pid), 0) + 1
        return per

    def stop(self):
        self.client.close()
        stop_process(self.proc, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the pool and the web server


class Pool:
    def __init__(self, args, run, name, env):
        self.name = name
        self.sock = run / f"{name}.sock"
        self.log = run / f"pool-{name}.log"
        self.env = env
        self.argv = [args.build / "looped-fcgi", "--listen", f"unix:{self.sock}"]
        if args.workers:
            self.argv += ["--workers", args.workers]
        if args.threads:
            self.argv += ["--threads", args.threads]
        self.nworkers = int(args.workers or env.get("LOOPED_WORKERS", 2))
        self.seen_workers = set()
        self.proc = None

    def start(self):
        self.proc = popen(self.argv, self.log, env=self.env)
        wait_until(lambda: self.sock.exists() and len(self.workers()) == self.nworkers, 30,
                   f"pool {self.name}")

    def workers(self):
        w = children(self.proc.pid)
        self.seen_workers.update(w)
        return w


class Web:
    """One instance of the web server from deploy/ (its files unchanged), in front of one pool."""

    def __init__(self, args, run, name, pool, www, htpasswd):
        self.server, self.name, self.pool = args.server, name, pool
        self.dir = run / f"{args.server}-{name}"
        self.dir.mkdir()
        (self.dir / "upload").mkdir()
        chown_web(self.dir)
        chown_web(self.dir / "upload")
        self.port = free_port()
        self.www, self.htpasswd = www, htpasswd
        self.access_log = self.dir / "access.log"
        self.proc = None

    def start(self, base_env):
        if self.server == "lighttpd":
            env = dict(base_env)
            env.update({
                "LOOPED_HTTPD_ADDR": "127.0.0.1", "LOOPED_HTTPD_PORT": str(self.port),
                "LOOPED_HTTPD_STATE_DIR": str(self.dir), "LOOPED_HTTPD_USER": WEB_USER,
                "LOOPED_HTTPD_MODE": "socket", "LOOPED_HTTPD_SOCKET": str(self.pool.sock),
                "LOOPED_HTTPD_FCGI_BIN": "", "LOOPED_HTTPD_PROCS": "1",
                "LOOPED_HTTPD_HTPASSWD": str(self.htpasswd), "LOOPED_HTTPD_WWW": str(self.www),
                "LOOPED_HTTPD_MAX_REQUEST_KB": "8192",
                "LOOPED_HTTPD_CONF_DIR": str(DEPLOY / "lighttpd")})  # its errors.lua
            conf = DEPLOY / "lighttpd" / "lighttpd.conf"
            r = subprocess.run(["lighttpd", "-tt", "-f", conf], env=env, capture_output=True,
                               text=True, timeout=30)
            if r.returncode:
                raise SystemExit(f"lighttpd -tt failed:\n{r.stdout}{r.stderr}")
            self.proc = popen(["lighttpd", "-D", "-f", conf], self.dir / "server.log", env=env)
        else:
            defines = {
                "LOOPED_HTTPD_CONF_DIR": DEPLOY / "apache",
                "LOOPED_HTTPD_LISTEN": f"127.0.0.1:{self.port}",
                "LOOPED_HTTPD_STATE_DIR": self.dir, "LOOPED_HTTPD_WWW": self.www,
                "LOOPED_HTTPD_HTPASSWD": self.htpasswd, "LOOPED_HTTPD_SOCKET": self.pool.sock}
            if not IS_ROOT:
                import grp
                import pwd
                defines["LOOPED_HTTPD_USER"] = pwd.getpwuid(os.getuid()).pw_name
                defines["LOOPED_HTTPD_GROUP"] = grp.getgrgid(os.getgid()).gr_name
            argv = ["apache2", "-f", DEPLOY / "apache" / "apache2.conf"]
            for k, v in defines.items():
                argv += ["-C", f"Define {k} {v}"]
            r = subprocess.run([str(a) for a in argv] + ["-t"], env=base_env, capture_output=True,
                               text=True, timeout=30)
            if r.returncode:
                raise SystemExit(f"apache2 -t failed:\n{r.stdout}{r.stderr}")
            self.proc = popen(argv + ["-DFOREGROUND"], self.dir / "server.log", env=base_env,
                              cwd=str(self.dir))
        wait_until(lambda: self.request("GET", "/v1/health")[0] == 200, 30, f"{self.name} health")

    def stop_graceful(self):
        # lighttpd: SIGINT = graceful (server.graceful-shutdown-timeout); Apache: SIGWINCH.
        stop_process(self.proc, signal.SIGINT if self.server == "lighttpd" else signal.SIGWINCH, 30)

    def request(self, method, path, headers=None, body=None, timeout=15):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()


# ---------------------------------------------------------------------------------------------
# load generators


def wrk(web, method, path, keyfile, duration, conns, bodyfile="", timeout="2s", offset=0):
    """Closed loop: conns connections, one thread; requests walk the key file from offset."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout}",
            "-s", HERE / "requests.lua", f"http://127.0.0.1:{web.port}{path}", "--",
            method, path, keyfile, bodyfile, offset]
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=duration + 60)
    for line in r.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            d = json.loads(line[10:])
            d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
            d["socket_errors"] = sum(v for k, v in d["errors"].items() if k != "status")
            return d
    raise RuntimeError(f"wrk failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


def h2load(web, path, key, rate, clients, duration=None, total=None, logfile=None, wall=None):
    """Fixed offered rate: `clients` HTTP/1.1 connections of rate/clients requests/s each.
    Both servers close a kept-alive connection after a number of requests and h2load does not
    reconnect: enough clients that none has to send more than that."""
    # The shipped configs allow 1000 requests per connection: lighttpd's
    # server.max-keep-alive-requests and MaxKeepAliveRequests in deploy/apache/apache2.conf
    # (Apache's default would be 100; planning for that opened ~600 clients at 9 rps each,
    # more than the MPM serves at once, and only 9% of the rate was sent).
    cap = 900
    need = total or rate * duration
    clients = max(clients, -(-int(need) // cap))
    per = max(1, round(rate / clients))
    argv = ["h2load", "--h1", "-c", clients, "--rps", per, "-H", f"X-API-Key: {key}",
            "-H", "User-Agent: looped-bench"]
    if duration:
        argv += ["-D", duration]
    else:
        argv += ["-n", total]
    if logfile:
        argv += ["--log-file", logfile]
    argv.append(f"http://127.0.0.1:{web.port}{path}")
    wall = wall or (duration or total / (per * clients)) + 120
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=wall)
    out = {"offered_rps": per * clients, "clients": clients, "argv": " ".join(map(str, argv[:12]))}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", r.stdout)
    if not m:
        raise RuntimeError(f"h2load failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    out.update(dict(zip(["total", "started", "done", "succeeded", "failed", "errored", "timeout"],
                        map(int, m.groups()))))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", r.stdout)
    out.update(dict(zip(["s2xx", "s3xx", "s4xx", "s5xx"], map(int, m.groups()))))
    m = re.search(r"finished in ([\d.]+)(m?s)", r.stdout)
    if m:
        out["elapsed_s"] = float(m[1]) / (1000 if m[2] == "ms" else 1)
    if logfile:
        lat = []
        with open(logfile) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        lat.sort()
        if lat:
            def pct(p):
                return lat[min(len(lat) - 1, int(len(lat) * p / 100))]
            out["latency_us"] = {"n": len(lat), "p50": pct(50), "p90": pct(90), "p99": pct(99),
                                 "p999": pct(99.9), "max": lat[-1]}
    return out


class ConnSampler(threading.Thread):
    """Samples store connections (ss -tnp) once a second while a round runs."""

    def __init__(self, store, pools):
        super().__init__(daemon=True)
        self.store, self.pools = store, pools
        self.halt = threading.Event()
        self.max = {p.name: 0 for p in pools}
        self.max_per_worker = {p.name: 0 for p in pools}

    def run(self):
        while not self.halt.wait(1.0):
            try:
                per = self.store.connections()
            except Exception:  # noqa: BLE001
                continue
            for p in self.pools:
                ws = p.workers()
                n = sum(per.get(w, 0) for w in ws)
                self.max[p.name] = max(self.max[p.name], n)
                self.max_per_worker[p.name] = max([self.max_per_worker[p.name]] +
                                                  [per.get(w, 0) for w in ws])

    def stop(self):
        self.halt.set()
        self.join(5)


# ---------------------------------------------------------------------------------------------
# the run


class Bench:
    def __init__(self, args):
        self.args = args
        self.ts = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = ROOT / "var" / "bench"
        self.run = self.out / f"run-{self.ts}-{args.server}"
        self.run.mkdir(parents=True)
        os.chmod(self.run, 0o755)
        self.rng = random.Random(args.seed)
        self.main_requests = 0
        self.offsets = {}
        self.audit_collections = ["audit"]
        self.rss_samples = []
        self.result = {
            "timestamp": self.ts, "server": args.server, "quick": args.quick,
            "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                        "cpu": self._cpu_model(), "loadavg_start": loadavg()},
            "store": "FerretDB 1.24.2, SQLite backend (embedded), loopback TCP",
            "settings": {}, "rounds": [], "latency": [], "checks": {}}

    @staticmethod
    def _cpu_model():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
        return platform.machine()

    # -- setup

    def setup(self):
        a = self.args
        self.base_env = {k: v for k, v in os.environ.items()
                         if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        log(f"store: FerretDB (SQLite) ...")
        self.store = Store(self.run)
        secrets = self.run / "secrets"
        secrets.mkdir(mode=0o700)
        self.pepper_file = secrets / "pepper"
        uri = self.store.uri + (f"?{a.uri_options}" if a.uri_options else "")
        self.app_env = dict(self.base_env, LOOPED_MONGODB_URI=uri, LOOPED_DB=DB,
                            LOOPED_PEPPER_FILE=str(self.pepper_file),
                            LOOPED_SCHEMA_DIR=str(ROOT / "schemas"), LOOPED_TEST_ROUTES="1")
        if IS_ROOT:
            self.app_env["LOOPED_SOCKET_GROUP"] = WEB_USER
        for kv in a.env:  # experiments: --env LOOPED_KEY_CACHE_TTL_MS=60000
            k, _, v = kv.partition("=")
            self.app_env[k] = v
        self.result["settings"]["env"] = a.env
        admin = [a.build / "looped-admin"]
        for cmd in (["init"], ["team", "create", TEAM, "--name", "Bench"], ["user", "add", OWNER],
                    ["member", "add", TEAM, OWNER, "OWNER"]):
            subprocess.run([str(x) for x in admin + cmd], env=self.app_env, check=True,
                           capture_output=True, timeout=60)
        self.pepper = self.pepper_file.read_bytes()
        # People authenticate at the web server (Basic): the revoke probe acts as the owner.
        self.password = "".join(self.rng.choice(BASE62) for _ in range(20))
        self.htpasswd = self.run / "htpasswd"
        subprocess.run(["htpasswd", "-cbB", "-C", "5", self.htpasswd, OWNER, self.password],
                       check=True, capture_output=True, timeout=60)
        if IS_ROOT:
            shutil.chown(self.htpasswd, "root", WEB_USER)
            os.chmod(self.htpasswd, 0o640)

        self.pools = {
            "main": Pool(a, self.run, "main", dict(self.app_env)),
            "a0": Pool(a, self.run, "a0", dict(self.app_env, LOOPED_AUDIT="0")),
        }
        self.www = self.run / "www"
        shutil.copytree(DEPLOY / "www", self.www)
        self.webs = {n: Web(a, self.run, n, p, self.www, self.htpasswd)
                     for n, p in self.pools.items()}
        for p in self.pools.values():
            p.start()
        for w in self.webs.values():
            w.start(self.base_env)
        self.main, self.a0 = self.webs["main"], self.webs["a0"]
        self.result["settings"] = {  # (env was noted above)
            "workers": self.pools["main"].nworkers,
            "threads": int(a.threads or 4),
            "pool_argv": " ".join(map(str, self.pools["main"].argv[1:])),
            "connections": a.conns, "rounds": a.rounds, "round_s": a.duration,
            "zipf_s": a.zipf, "keys": NKEYS, "env": a.env, "build": str(a.build),
            "uri_options": a.uri_options, "negative_ttl_ms": 5000,
            "key_cache_ttl_ms": int(self.app_env.get("LOOPED_KEY_CACHE_TTL_MS", 300000)),
            "a0_setup": "a second pool with LOOPED_AUDIT=0 behind a second instance of the same "
                        "web-server configuration; T1 compares A0 with H0 = H on that stack"}
        log(f"up: {a.server} main :{self.main.port}, a0 :{self.a0.port}, store :{self.store.port}")
        self.seed()

    def seed(self):
        """10,000 keys inserted directly (the fields of store_key_insert), plus one created
        through the API to check that both look the same, an invoice for R."""
        st, code, body = self.api_owner("POST", f"/v1/teams/{TEAM}/api-keys",
                                        {"name": "bench-api", "permission": "write_all"})
        if st != 201:
            raise SystemExit(f"creating a key through the API: {st} {body}")
        api_key = body["key"]
        ref = self.store.db.api_keys.find_one({"_id": body["id"]})
        now = datetime.now(timezone.utc)
        keys, docs, seen = [], [], set()
        t = time.monotonic()
        # Variant L's keys: NLIMITED more, each with a rate limit it never reaches and an
        # allow-list of 10 blocks, the load generator's address in the last (api.md §6.1-§6.2).
        limits = {"rate_limit": {"requests": 1000000, "per_seconds": 1},
                  "allowed_ips": [f"10.{b}.0.0/16" for b in range(9)] + ["127.0.0.0/8"]}
        for i in range(NKEYS + 200 + NLIMITED):
            k = key_new(self.rng)
            digest = hmac.new(self.pepper, k.encode(), hashlib.sha256).hexdigest()
            kid = "key_" + "".join(self.rng.choice(BASE62) for _ in range(20))
            docs.append({"_id": kid, "team_id": TEAM, "name": f"bench-{i:05d}",
                         "permission": "write_all", "scopes": [], "hash": digest,
                         "hash_version": 1, "hint": key_hint(k), "expires_at": None,
                         "created_at": now, "created_by": OWNER, "updated_at": now,
                         "last_used_at": None, "last_used_ip": None, "revoked_at": None,
                         "revoked_by": None, "rate_limit": None, "allowed_ips": []})
            if i >= NKEYS + 200:
                docs[-1].update(limits)
            keys.append((kid, k))
        # Each key's digest document, as store_key_insert writes it (the lookup by digest).
        digests = [{"_id": d["hash"], "key_id": d["_id"], "team_id": TEAM} for d in docs]
        ref_digest = self.store.db.api_key_digests.find_one({"key_id": body["id"]})
        if ref is None or not set(ref) <= set(docs[0]) or \
                ref_digest is None or set(ref_digest) != set(digests[0]):
            raise SystemExit(f"seeded key fields differ from the API's: {ref and sorted(ref)} vs "
                             f"{sorted(docs[0])}; {ref_digest} vs {digests[0]}")
        self.result["settings"]["api_key_fields"] = sorted(ref)
        for i in range(0, len(docs), 1000):
            self.store.db.api_key_digests.insert_many(digests[i:i + 1000], ordered=False)
            self.store.db.api_keys.insert_many(docs[i:i + 1000], ordered=False)
        log(f"seeded {len(docs)} keys in {time.monotonic() - t:.1f}s")
        self.keys = keys[:NKEYS]            # the skewed load's keys
        self.spare = keys[NKEYS:NKEYS + 200]  # revocation probe, soak
        self.limited = keys[NKEYS + 200:]   # variant L: the same load with limits
        for kid, k in self.rng.sample(self.keys, 3) + [(body["id"], api_key)]:
            st, _, b = self.main.request("GET", "/v1/key", {"X-API-Key": k})
            if st != 200:
                raise SystemExit(f"a seeded key does not authenticate: {st} {b[:200]}")
        # Data for R: a customer and an invoice, through the API.
        hdr = {"X-API-Key": api_key, "Content-Type": "application/json"}
        st, _, b = self.main.request("POST", "/v1/customers", hdr,
                                     json.dumps({"name": "Bench customer"}))
        cus = json.loads(b)["id"]
        st, _, b = self.main.request("POST", "/v1/invoices", hdr, json.dumps({
            "customer_id": cus, "currency": "EUR", "status": "open",
            "lines": [{"description": "Consulting", "quantity": 12, "unit_price": 12000}]}))
        if st != 201:
            raise SystemExit(f"creating the invoice: {st} {b[:300]}")
        self.invoice = json.loads(b)["id"]

        # Zipf(s) over the 10,000 keys: rank r has weight 1/r^s.
        s = self.args.zipf
        cum, tot = [], 0.0
        for r in range(1, NKEYS + 1):
            tot += 1.0 / r ** s
            cum.append(tot)
        ranks = [min(NKEYS - 1, bisect.bisect_left(cum, self.rng.random() * tot))
                 for _ in range(self.args.sequence)]
        seq = [self.keys[r][1] for r in ranks]
        self.keyfile = self.run / "keys-zipf.txt"
        self.keyfile.write_text("\n".join(seq) + "\n")
        self.keyfile_limited = self.run / "keys-zipf-limited.txt"
        self.keyfile_limited.write_text(
            "\n".join(self.limited[r % NLIMITED][1] for r in ranks) + "\n")
        self.distinct_keys = len(set(seq))
        top = sorted(__import__("collections").Counter(seq[:20000]).values(), reverse=True)
        self.result["settings"]["zipf_sequence"] = {
            "length": len(seq), "distinct_keys": self.distinct_keys,
            "top1_share": round(top[0] / min(len(seq), 20000), 4),
            "top100_share": round(sum(top[:100]) / min(len(seq), 20000), 4)}
        # T8: well-formed keys the store does not know, cycled uniformly.
        self.unknown = [key_new(self.rng) for _ in range(self.args.unknown_keys)]
        self.unknownfile = self.run / "keys-unknown.txt"
        self.unknownfile.write_text("\n".join(self.unknown) + "\n")
        self.bodyfile = self.run / "customer.json"
        self.bodyfile.write_text(json.dumps({"name": "Bench customer"}))

        # H answers as many bytes as A: pad the hello; S serves a file of that size.
        st, _, a_body = self.main.request("GET", "/v1/key", {"X-API-Key": self.keys[0][1]})
        _, _, h0 = self.main.request("GET", "/v1/_test/hello?bytes=0")
        pad = len(a_body) - len(h0)
        self.hello = f"/v1/_test/hello?bytes={max(pad, 0)}"
        _, _, hb = self.main.request("GET", self.hello)
        (self.www / "bench-static.json").write_bytes(b"x" * len(a_body))
        self.result["settings"]["body_bytes"] = {"A": len(a_body), "H": len(hb),
                                                 "S": len(a_body)}
        self.variants = {
            "H": (self.main, "GET", self.hello, ""),
            "H0": (self.a0, "GET", self.hello, ""),
            "A0": (self.a0, "GET", "/v1/key", ""),
            "A": (self.main, "GET", "/v1/key", ""),
            "L": (self.main, "GET", "/v1/key", ""),
            "R": (self.main, "GET", f"/v1/invoices/{self.invoice}", ""),
            "W": (self.main, "POST", "/v1/customers", str(self.bodyfile)),
            "S": (self.main, "GET", "/bench-static.json", ""),
        }

    def api_owner(self, method, path, body=None, timeout=10):
        import base64
        hdr = {"Authorization": "Basic " + base64.b64encode(
            f"{OWNER}:{self.password}".encode()).decode()}
        data = None
        if body is not None:
            data = json.dumps(body)
            hdr["Content-Type"] = "application/json"
        st, h, b = self.main.request(method, path, hdr, data, timeout=timeout)
        try:
            return st, h, json.loads(b)
        except ValueError:
            return st, h, b

    # -- throughput rounds

    def cpu(self):
        """CPU ticks of every part, and of the whole machine (the others' load shows there)."""
        out = {"store": cpu_ticks(self.store.proc.pid)}
        for n, p in self.pools.items():
            out[f"pool_{n}"] = sum(cpu_ticks(w) for w in [p.proc.pid] + p.workers())
        for n, w in self.webs.items():
            out[f"web_{n}"] = sum(cpu_ticks(x) for x in [w.proc.pid] + children(w.proc.pid))
        ru = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN)
        out["client"] = round((ru.ru_utime + ru.ru_stime) * os.sysconf("SC_CLK_TCK"))  # wrk
        out["machine_busy"], out["machine_total"] = machine_ticks()
        return out

    @staticmethod
    def cpu_share(a, b, seconds):
        """Cores used by each part between two snapshots (2.0 = both cores of this machine)."""
        hz = os.sysconf("SC_CLK_TCK")
        out = {k: round((b[k] - a[k]) / hz / seconds, 2) for k in a if not k.startswith("machine")}
        ncpu = os.cpu_count() or 1
        tot = (b["machine_total"] - a["machine_total"]) or 1
        out["machine"] = round((b["machine_busy"] - a["machine_busy"]) / tot * ncpu, 2)
        out["other"] = round(out["machine"] - sum(v for k, v in out.items() if k != "machine"), 2)
        return out

    def round_of(self, name, rnd, warm=False):
        web, method, path, bodyfile = self.variants[name]
        before = self.store.metrics()
        c0, t0 = self.cpu(), time.monotonic()
        sampler = ConnSampler(self.store, list(self.pools.values()))
        sampler.start()
        d = self.wrk(web, method, path, self.keyfile_limited if name == "L" else self.keyfile,
                     self.args.warmup if warm else self.args.duration, bodyfile)
        sampler.stop()
        cpu = self.cpu_share(c0, self.cpu(), time.monotonic() - t0)
        after = self.store.metrics()
        d.update({"variant": name, "round": rnd, "store": Store.delta(before, after),
                  "store_connections_max": sampler.max,
                  "store_connections_max_per_worker": sampler.max_per_worker,
                  "loadavg": loadavg(), "cores_used": cpu})
        return d

    def prewarm(self, max_tries=64, limit=600):
        """Every distinct key of the sequence on each stack until every worker has answered it
        (X-Worker, at most max_tries requests per key), so that each worker's key cache starts
        warm: its entries outlive the run, and a miss costs two store reads. The web server
        does not share connections evenly between the workers (with 16 tries, 672 of 17,092
        pairs stayed cold and showed up as misses in the first rounds, T5 0.0114)."""
        distinct = list(dict.fromkeys(self.keyfile.read_text().split() +
                                      self.keyfile_limited.read_text().split()))
        workers = {web.port: len(self.pools[n].workers()) for n, web in self.webs.items()}
        seen = {}  # (port, key) -> workers that answered
        work = [(web, k) for k in distinct for web in (self.main, self.a0)]
        self.rng.shuffle(work)
        lock, t0 = threading.Lock(), time.monotonic()
        statuses = {}

        def run():
            conns = {}
            while time.monotonic() - t0 < limit:
                with lock:
                    if not work:
                        break
                    web, k = work.pop()
                c = conns.get(web.port) or http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
                conns[web.port] = c
                try:
                    c.request("GET", "/v1/key", headers={"X-API-Key": k})
                    r = c.getresponse()
                    r.read()
                except (OSError, http.client.HTTPException):
                    c.close()
                    conns.pop(web.port, None)
                    continue
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    sent[web.port] = sent.get(web.port, 0) + 1
                    got = seen.setdefault((web.port, k), set())
                    got.add(r.getheader("X-Worker"))
                    tries[(web.port, k)] = tries.get((web.port, k), 0) + 1
                    if len(got) < workers[web.port] and tries[(web.port, k)] < max_tries:
                        work.insert(0, (web, k))
        sent, tries = {}, {}
        threads = [threading.Thread(target=run) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.count_main("A", sent.get(self.main.port, 0))
        partial = sum(len(w) < workers[p] for (p, _), w in seen.items())
        self.result["settings"]["prewarm"] = {"keys": len(distinct), "statuses": statuses,
                                              "requests": sum(sent.values()),
                                              "keys_not_on_every_worker": partial,
                                              "seconds": round(time.monotonic() - t0, 1)}
        log(f"prewarm: {len(distinct)} keys in {time.monotonic() - t0:.0f}s {statuses}, "
            f"{partial} (stack, key) pairs not on every worker")

    def rounds(self):
        order = ["H", "H0", "A0", "A", "L", "R", "W", "S"]
        if self.args.prewarm:
            self.prewarm()
            log(f"store idle after the prewarm's first-use writes in {self.wait_store_idle(300)}s")
        log("warm-up")
        for v in order:
            self.round_of(v, 0, warm=True)
            self.wait_idle()
            self.wait_store_idle()
        for rnd in range(1, self.args.rounds + 1):
            for v in order:
                d = self.round_of(v, rnd)
                self.result["rounds"].append(d)
                self.count_main(v, d["requests"])
                d["drain_s"] = self.wait_idle()
                d["store_drain_s"] = self.wait_store_idle()
                log(f"round {rnd} {v:2s} {d['rps']:8.0f} rps  p99 {d['latency_us']['p99'] / 1000:.1f} ms"
                    f"  status-errors {d['errors']['status']} socket-errors {d['socket_errors']}"
                    f"  drained in {d['drain_s']}s, store in {d['store_drain_s']}s  cores: " +
                    " ".join(f"{k} {v}" for k, v in d["cores_used"].items() if v >= 0.05))
                time.sleep(self.args.settle)
            self.sample_rss(f"after round {rnd}")

    def wait_idle(self, limit=10.0):
        """Waits until both pools answer hello at once again: requests that wrk left queued in
        the web server or the pool's backlog must not run into the next variant's round."""
        t0 = time.monotonic()
        for web in (self.main, self.a0):
            good = 0
            while good < 3 and time.monotonic() - t0 < limit:
                t = time.monotonic()
                try:
                    web.request("GET", self.hello, timeout=max(1.0, limit - (t - t0)))
                except OSError:
                    pass
                good = good + 1 if time.monotonic() - t < 0.05 else 0
        return round(time.monotonic() - t0, 2)

    def wait_store_idle(self, limit=60.0):
        """Waits until the store has written nothing for half a second: the writes a round
        defers (audit batches in the queue, last-used times) are charged to that round's
        drain, not to the next variant's round. Returns the seconds waited."""
        t0, last = time.monotonic(), None
        while time.monotonic() - t0 < limit:
            c = self.store.metrics()["commands"]
            n = sum(c.get(k, 0) for k in ("insert", "update", "delete"))
            if n == last:
                break
            last = n
            time.sleep(0.5)
        return round(time.monotonic() - t0, 2)

    def wrk(self, web, method, path, keyfile, duration, bodyfile=""):
        """wrk from where the previous run on this key file stopped."""
        off = self.offsets.get(keyfile, 0)
        d = wrk(web, method, path, keyfile, duration, self.args.conns, bodyfile, offset=off)
        self.offsets[keyfile] = off + d["requests"]
        return d

    def count_main(self, variant, n):
        if variant in ("H", "A", "L", "R", "W"):
            self.main_requests += n

    def sample_rss(self, when):
        s = {"when": when, "main_pool_requests": self.main_requests,
             "rss_kib": {name: {w: rss_kib(w) for w in p.workers()} for name, p in self.pools.items()}}
        self.rss_samples.append(s)
        return s

    def by_variant(self, name):
        return [r for r in self.result["rounds"] if r["variant"] == name]

    def rps_median(self, name):
        return statistics.median(r["rps"] for r in self.by_variant(name))

    # -- latency at a fixed rate (T6)

    def latency(self):
        rate = 0.5 * self.rps_median("H")
        key = self.keys[0][1]
        for rep in range(self.args.latency_reps):
            for name, path in (("H", self.hello), ("A", "/v1/key")):
                lf = self.run / f"h2load-{name}-{rep}.log"
                d = h2load(self.main, path, key, rate, self.args.conns,
                           duration=self.args.latency_s, logfile=lf)
                d["variant"] = name
                d["seconds"] = self.args.latency_s
                d["drain_s"] = self.wait_idle()
                d["store_drain_s"] = self.wait_store_idle()
                self.result["latency"].append(d)
                self.count_main(name, d["done"])
                lf.unlink()
                lu = d.get("latency_us", {"p99": -1000, "max": -1000})
                log(f"latency {name} at {d['offered_rps']} rps: {d['done']} done, p99 "
                    f"{lu['p99'] / 1000:.2f} ms, max {lu['max'] / 1000:.1f} ms")

    # -- T12: memory after many requests

    def memory(self):
        target = self.args.t12_requests
        need = target - self.main_requests
        rps = self.rps_median("A")
        secs = int(min(self.args.t12_max_s, max(0, need / max(rps, 1))))
        chunks = []
        if secs >= 2:
            log(f"T12: {need} more requests to reach {target} (about {secs}s of A)")
            step = max(2, secs // 4)
            done = 0
            while done < secs:
                d = self.wrk(self.main, "GET", "/v1/key", self.keyfile, min(step, secs - done))
                done += step
                self.count_main("A", d["requests"])
                chunks.append({k: d[k] for k in ("requests", "rps", "errors")})
                self.sample_rss(f"T12 +{done}s")
        self.result["checks"]["T12_load"] = chunks

    # -- T8: a flood of unknown keys

    def flood(self):
        before = self.store.metrics()
        d = self.wrk(self.main, "GET", "/v1/key?t8=1", self.unknownfile, self.args.flood_s)
        after = self.store.metrics()
        delta = Store.delta(before, after)
        periods = self.args.flood_s / 5.0
        workers = len(self.pools["main"].workers())
        queries = delta["cursors"].get("api_keys", 0) + delta["cursors"].get("api_key_digests", 0)
        bound = len(self.unknown) * workers * (int(periods) + 1)
        self.result["checks"]["T8"] = {
            "wrk": d, "store": delta, "distinct_keys": len(self.unknown), "workers": workers,
            "negative_ttl_s": 5, "api_keys_queries": queries, "query_bound": bound,
            # A flood of D seconds touches floor(D/5)+1 negative-cache periods of each key.
            "queries_per_key_per_period_per_worker": queries / bound}
        log(f"T8 flood: {d['rps']:.0f} rps, {queries} key queries for {len(self.unknown)} keys "
            f"(bound {bound}), statuses !=401: {d['requests'] - d['errors']['status']}")

    # -- T7: a revoked key is refused by every worker

    def revoke_probe(self):
        trials = []
        workers = set(self.pools["main"].workers())
        for trial in range(self.args.revoke_trials):
            kid, key = self.spare.pop()
            try:
                res = self._revoke_once(kid, key, workers)
            except (OSError, http.client.HTTPException) as e:
                res = {"key_id": kid, "ok": False, "error": repr(e)}
            trials.append(res)
            if len(trials) >= 2 and not any(t["ok"] for t in trials[-2:]):
                log("T7: two trials in a row failed; giving up")
                break
            log(f"T7 trial {trial + 1}: refused by all {len(workers)} workers "
                f"{res['delay_ms']:.0f} ms after the revoke answered" if res["ok"] else
                f"T7 trial {trial + 1}: FAILED {res}")
        ok = [t for t in trials if t["ok"]]
        self.result["checks"]["T7"] = {
            "trials": trials, "workers": sorted(workers),
            "worst_ms": max((t["delay_ms"] for t in ok), default=None),
            "failed_trials": len(trials) - len(ok)}

    def _revoke_once(self, kid, key, workers):
        """Threads hit the key continuously; the owner revokes it; each worker's refusal time
        is the start of its first 401 after which it never answered 200 again."""
        events, lock, halt = [], threading.Lock(), threading.Event()

        def hammer():
            c = http.client.HTTPConnection("127.0.0.1", self.main.port, timeout=10)
            while not halt.is_set():
                t = time.monotonic()
                try:
                    c.request("GET", "/v1/key", headers={"X-API-Key": key})
                    r = c.getresponse()
                    r.read()
                    w = r.getheader("X-Worker")
                    with lock:
                        events.append((t, int(w) if w else 0, r.status))
                except (OSError, http.client.HTTPException):
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", self.main.port, timeout=10)
            c.close()

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        # Every worker must have the key cached (answered 200) before the revoke.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                warm = {w for _, w, s in events if s == 200}
            if workers <= warm:
                break
            time.sleep(0.02)
        time.sleep(self.rng.uniform(0.1, 0.9))  # anywhere in the cache entries' lifetime
        t_sent = time.monotonic()
        try:
            st, _, _ = self.api_owner("POST", f"/v1/teams/{TEAM}/api-keys/{kid}/revoke")
        finally:
            t_fail = time.monotonic()
            if t_fail - t_sent > 10:
                halt.set()
        t_done = time.monotonic()
        deadline = t_done + 5
        refused_at = {}
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with lock:
                ev = [e for e in events if e[0] >= t_done]
            refused_at = {}
            for w in workers:
                mine = [e for e in ev if e[1] == w]
                last_ok = max((e[0] for e in mine if e[2] == 200), default=None)
                after = [e[0] for e in mine if e[2] == 401 and (last_ok is None or e[0] > last_ok)]
                if after:
                    refused_at[w] = min(after)
            if set(refused_at) >= workers and time.monotonic() - max(refused_at.values()) > 0.3:
                break
        halt.set()
        for t in threads:
            t.join(10)
        with lock:
            n = len(events)
            late_200 = sum(1 for e in events if e[0] > t_done + 1.0 and e[2] == 200)
            statuses = sorted({e[2] for e in events})
        ok = st == 200 and set(refused_at) >= workers
        return {"key_id": kid, "ok": ok, "revoke_status": st,
                "revoke_ms": (t_done - t_sent) * 1000,
                "delay_ms": max(0.0, (max(refused_at.values()) - t_done) * 1000) if ok else None,
                "delay_from_send_ms": (max(refused_at.values()) - t_sent) * 1000 if ok else None,
                "per_worker_ms": {str(w): round((t - t_done) * 1000, 1) for w, t in refused_at.items()},
                "requests": n, "statuses": statuses, "late_200": late_200}

    # -- T9: audit soak with a graceful reload in the middle

    def soak(self):
        kid, key = self.spare.pop()
        rate = 0.9 * self.rps_median("A")
        db = self.store.db
        # The soak's records go to a fresh collection: counting in the big one is a scan.
        try:
            db.audit.rename("audit_before_soak")
            self.audit_collections.append("audit_before_soak")
        except Exception as e:  # noqa: BLE001 (no audit yet, or no rename: count it all)
            log(f"T9: audit not renamed ({e!r:.80})")
        pool = self.pools["main"]
        gen0 = set(pool.workers())
        log(f"T9 soak: {self.args.soak_s}s at {rate:.0f} rps, SIGHUP at {self.args.soak_s / 2:.0f}s")
        timer = threading.Timer(self.args.soak_s / 2, lambda: pool.proc.send_signal(signal.SIGHUP))
        timer.start()
        # In runs of 10 s: h2load ends a client at the server's keep-alive limit, so one 60 s run
        # needs a client per 900 requests (251 at 3,765 rps), and Apache's event MPM closes
        # kept-alive connections when that many arrive at once; 10 s runs need a sixth of them.
        parts, done_s = [], 0
        while done_s < self.args.soak_s:
            seg = min(10, self.args.soak_s - done_s)
            parts.append(h2load(self.main, "/v1/key", key, rate, self.args.conns, duration=seg))
            done_s += seg
        timer.cancel()
        d = {k: sum(p[k] for p in parts) for k in ("total", "started", "done", "succeeded",
                                                   "failed", "errored", "timeout", "s2xx",
                                                   "s3xx", "s4xx", "s5xx")}
        d.update(offered_rps=parts[0]["offered_rps"], clients=parts[0]["clients"],
                 runs=len(parts), argv=parts[0]["argv"])
        self.count_main("A", d["done"])
        answered = d["s2xx"] + d["s4xx"]
        t = time.monotonic()
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - t < 60:  # the writers drain (the old generation's too)
            n = db.audit.count_documents({"key_id": kid})  # this key's: the audit holds others
            if n != last:
                last, stable_since = n, time.monotonic()
            if n >= answered or time.monotonic() - stable_since > 5:
                break
            time.sleep(0.5)
        last = db.audit.count_documents({"key_id": kid})
        gen1 = set(pool.workers())
        self.result["checks"]["T9"] = {
            # h2load -D drops what is in flight at the end: those were answered and audited
            # but not counted, so only a shortfall is a loss.
            "h2load": d, "answered": answered, "audited": last, "lost": max(0, answered - last),
            "drain_s": round(time.monotonic() - t, 1), "reloaded": bool(gen1 - gen0),
            "workers_before": sorted(gen0), "workers_after": sorted(gen1),
            "seconds": self.args.soak_s, "offered_rps": d["offered_rps"]}
        log(f"T9: answered {answered}, audited {last}, lost {answered - last}, "
            f"new workers after the reload: {sorted(gen1 - gen0)}")

    # -- the end: graceful drain, then audit records versus the access log

    def finish(self):
        self.sample_rss("end")
        for w in self.webs.values():
            w.stop_graceful()
        for p in self.pools.values():
            stop_process(p.proc, signal.SIGTERM, 60)
        keyed = re.compile(r'"(GET|POST) (/v1/key|/v1/invoices/\S+|/v1/customers) HTTP/1\.[01]" '
                           r'(\d{3}) ')
        answered, statuses = 0, {}
        for line in open(self.main.access_log, errors="replace"):
            m = keyed.search(line)
            if m:
                statuses[m[3]] = statuses.get(m[3], 0) + 1
                if m[3] in ("200", "201", "401", "403", "404"):
                    answered += 1
        # Every record but the management ones (the API-made key, each revoke that answered)
        # is an api.request; collStats counts without a scan.
        total = sum(self.store.count(c) for c in self.audit_collections)
        revokes = [t for t in self.result["checks"].get("T7", {}).get("trials", [])]
        mgmt = 1 + sum(1 for t in revokes if t.get("revoke_status") == 200)
        unsure = sum(1 for t in revokes if "error" in t)  # a revoke that timed out may have run
        audited = total - mgmt
        t_final = self.store.metrics()
        run_s = time.monotonic() - self.t_load_start
        updates = t_final["commands"].get("update", 0) - self.metrics_start["commands"].get("update", 0)
        nw = len(self.pools["main"].seen_workers)
        # A bound per key per worker per minute: every key requested on the main stack, every
        # worker process it ever had (the reload doubles them), one write per started minute.
        bound = (self.distinct_keys + 2 * len(self.result["checks"]["T7"]["trials"]) + 2) * nw * \
            (int(run_s // 60) + 1)
        self.result["checks"]["audit_total"] = {
            "access_log_keyed": answered, "access_log_statuses": statuses, "audited": audited,
            "audit_documents": total, "management_records": mgmt, "revokes_unsure": unsure,
            # More records than log lines: requests wrk abandoned at the end of a round were
            # still answered and audited, but the web server logged no response for them.
            "lost": max(0, answered - audited)}
        self.result["checks"]["T10"] = {
            "updates": updates, "distinct_keys": self.distinct_keys, "worker_processes": nw,
            "minutes": round(run_s / 60, 2), "bound": bound,
            "per_key_per_worker_per_minute": updates / max(1, self.distinct_keys * nw *
                                                           (int(run_s // 60) + 1))}
        log(f"audit: {audited} api.request records, {answered} keyed requests in the access log")

    # -- in-process auth check (T4)

    def authcheck(self):
        self.result["checks"]["T4"] = authcheck(self.args.build)

    def go(self):
        try:
            self.setup()
            self.metrics_start = self.store.metrics()
            self.t_load_start = time.monotonic()
            # A phase that fails is recorded and the others still run: the table says n/a.
            for name, fn in (("rounds", self.rounds), ("latency", self.latency),
                             ("T12", self.memory), ("T8", self.flood), ("T7", self.revoke_probe),
                             ("T9", self.soak), ("finish", self.finish)):
                try:
                    if name != "rounds":
                        self.result.setdefault("drain_s", {})[name] = self.wait_idle(30.0)
                    fn()
                except (Exception, subprocess.TimeoutExpired) as e:  # noqa: BLE001
                    self.result.setdefault("phase_errors", {})[name] = repr(e)[:500]
                    log(f"phase {name} failed: {e!r}"[:300])
            self.result["rss_samples"] = self.rss_samples
            self.result["main_pool_requests"] = self.main_requests
            if not self.args.skip_authcheck:
                try:
                    self.authcheck()
                except (Exception, subprocess.TimeoutExpired) as e:  # noqa: BLE001
                    self.result.setdefault("phase_errors", {})["T4"] = repr(e)[:500]
        finally:
            stop_all()
            try:
                self.store.stop()
            except Exception:  # noqa: BLE001
                pass
        if not self.args.keep:
            # The access logs were counted; they and the key lists are most of the run's bytes.
            for w in self.webs.values() if hasattr(self, "webs") else ():
                w.access_log.unlink(missing_ok=True)
            for f in self.run.glob("keys-*.txt"):
                f.unlink()
            if hasattr(self, "www"):
                shutil.rmtree(self.www, ignore_errors=True)
        self.result["machine"]["loadavg_end"] = loadavg()
        self.result["elapsed_s"] = round(time.monotonic() - T0, 1)
        out = self.out / f"{self.ts}-{self.args.server}{'-quick' if self.args.quick else ''}.json"
        self.result["table"] = table(self.result)
        out.write_text(json.dumps(self.result, indent=1, default=str))
        print_table(self.result, out)
        return 0 if all(r[4] != "FAIL" for r in self.result["table"]) else 1


# ---------------------------------------------------------------------------------------------
# T4 in-process: authcheck + callgrind


def authcheck(build, iters=200000, count=20000):
    exe = build / "authcheck"
    if not exe.exists():  # --build of an experiment: the harness's own build has it
        exe = ROOT / "var" / "bench" / "build" / "authcheck"
    r = subprocess.run([exe, "--iters", str(iters)], capture_output=True, text=True, timeout=300,
                       check=True)
    res = {"timing": json.loads(r.stdout), "callgrind_ir_per_check": {}}
    if shutil.which("valgrind"):
        for mode in ("hit", "miss", "malformed", "limited"):
            with tempfile.TemporaryDirectory() as d:
                cg = Path(d) / "cg.out"
                subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=authcheck_run",
                                f"--callgrind-out-file={cg}", exe, "--count", str(count), mode],
                               capture_output=True, text=True, timeout=600, check=True)
                m = re.search(r"^summary: (\d+)", cg.read_text(), re.M)
                res["callgrind_ir_per_check"][mode] = round(int(m[1]) / count)
    base = HERE / "baseline.json"
    if base.exists():
        b = json.loads(base.read_text())
        res["baseline"] = b
        res["ir_vs_baseline"] = {m: round(v / b["callgrind_ir_per_check"][m], 3)
                                 for m, v in res["callgrind_ir_per_check"].items()
                                 if m in b.get("callgrind_ir_per_check", {})}
    return res


# ---------------------------------------------------------------------------------------------
# the table


def ratio_rows(res, num, den):
    rounds = {}
    for r in res["rounds"]:
        rounds.setdefault(r["round"], {})[r["variant"]] = r["rps"]
    vals = [v[num] / v[den] for v in rounds.values() if num in v and den in v and v[den]]
    return vals


def fmt_range(vals, f="{:.2f}"):
    if not vals:
        return "-", "-"
    return f.format(statistics.median(vals)), f"{f.format(min(vals))}–{f.format(max(vals))}"


def table(res):
    rows = []  # (id, what, target, median, min-max, verdict)
    ck = res["checks"]

    def ratio(tid, what, num, den, target):
        vals = ratio_rows(res, num, den)
        med, rng = fmt_range(vals)
        ok = vals and statistics.median(vals) >= target
        rows.append((tid, what, f">= {target}", med, rng, "PASS" if ok else "FAIL"))

    ratio("T1", "rps(A0)/rps(H0)", "A0", "H0", 0.95)
    ratio("T2", "rps(A)/rps(H)", "A", "H", 0.85)
    ratio("T3", "rps(R)/rps(H)", "R", "H", 0.50)
    ratio("T14", "rps(L)/rps(A) (limits never reached)", "L", "A", 0.97)
    # The pool's own CPU per request, L over A, round by round: the share that carries over to
    # MongoDB. (L's sequence folds A's ranks onto NLIMITED keys, so the store writes fewer
    # last-used times in L than in A, which favours rps(L) while the store is the bottleneck.)
    per = {}
    for r in res["rounds"]:
        pool = r.get("cores_used", {}).get("pool_main")
        if r["variant"] in ("A", "L") and pool and r["rps"]:
            per.setdefault(r["round"], {})[r["variant"]] = pool * 1e6 / r["rps"]
    vals = [v["L"] / v["A"] for v in per.values() if "L" in v and "A" in v]
    med, rng = fmt_range(vals)
    us = [v[x] for v in per.values() for x in ("A", "L") if x in v]
    rows.append(("T14", "pool CPU µs/request, L/A", "<= 1.03", med,
                 f"{rng}, {min(us):.0f}-{max(us):.0f} µs" if us else rng,
                 "PASS" if vals and statistics.median(vals) <= 1.03 else "FAIL"))
    t4 = ck.get("T4")
    if t4:
        h = t4["timing"]["hit"]
        ir = t4["callgrind_ir_per_check"].get("hit")
        rows.append(("T4", "auth check, hit (ns)", "p50<=2000 p99<=10000",
                     f"p50 {h['p50_ns']} p99 {h['p99_ns']}", f"Ir/check {ir}",
                     "PASS" if h["p50_ns"] <= 2000 and h["p99_ns"] <= 10000 and
                     all(v <= 1.10 for v in t4.get("ir_vs_baseline", {}).values())  # baseline.json
                     else "FAIL"))
        lim = t4["timing"].get("limited")
        if lim:
            r = lim["p50_ns"] / max(1, h["p50_ns"])
            rows.append(("T14", "auth check with limits / hit, p50", "<= 1.15", f"{r:.2f}",
                         f"p50 {lim['p50_ns']} ns, Ir/check "
                         f"{t4['callgrind_ir_per_check'].get('limited')}",
                         "PASS" if r <= 1.15 else "FAIL"))
    else:
        rows.append(("T4", "auth check, hit", "p50<=2us p99<=10us", "-", "-", "n/a: skipped"))
    qpr = []
    for r in res["rounds"]:
        if r["variant"] in ("A", "A0"):
            # Every read the store answered in the round, both pools' key-change polls included.
            c = r["store"]["commands"]
            qpr.append(sum(c.get(k, 0) for k in READS) / max(1, r["requests"]))
    med, rng = fmt_range(qpr, "{:.4f}")
    rows.append(("T5", "store reads per request (A, A0)", "<= 0.01", med, rng,
                 "PASS" if qpr and max(qpr) <= 0.01 else "FAIL"))
    lat = {v: [x for x in res["latency"] if x["variant"] == v] for v in ("H", "A")}
    if any("latency_us" not in x for x in res["latency"]):
        rows.append(("T6", "p99(A)/p99(H) at 50% of rps(H)", "<= 1.5, max<500ms", "no answers",
                     "-", "FAIL"))
    elif lat["H"] and lat["A"]:
        ph = statistics.median(x["latency_us"]["p99"] for x in lat["H"])
        pa = [x["latency_us"]["p99"] / ph for x in lat["A"]]
        mx = max(x["latency_us"]["max"] for x in lat["A"])
        # The offered rate must have been served: a client that falls behind hides latency.
        served = min(x["done"] / max(1, x["offered_rps"] * x.get("seconds", 1)) for x in lat["A"])
        med, rng = fmt_range(pa)
        rows.append(("T6", f"p99(A)/p99(H) at {lat['A'][0]['offered_rps']} rps", "<= 1.5, max<500ms",
                     f"{med} (max {mx / 1000:.0f}ms)", f"{rng}, served {served:.0%}",
                     "PASS" if statistics.median(pa) <= 1.5 and mx < 500000 and served >= 0.95
                     else "FAIL"))
    t7 = ck.get("T7")
    if t7:
        ds = [t["delay_ms"] for t in t7["trials"] if t["ok"]]
        med, rng = fmt_range(ds, "{:.0f}")
        rows.append(("T7", f"revoke -> all workers 401 (ms, {len(t7['trials'])} trials)",
                     "worst <= 1000", f"worst {t7['worst_ms']:.0f}" if t7["worst_ms"] is not None
                     else "-", f"med {med}, {rng}",
                     "PASS" if not t7["failed_trials"] and t7["worst_ms"] is not None and
                     t7["worst_ms"] <= 1000 else "FAIL"))
    t8 = ck.get("T8")
    if t8:
        h = statistics.median(r["rps"] for r in res["rounds"] if r["variant"] == "H") or 1e-9
        rr = t8["wrk"]["rps"] / h
        q = t8["queries_per_key_per_period_per_worker"]
        rows.append(("T8", "T8 flood rps/rps(H); queries/key/5s/worker",
                     ">= 0.8; <= 1", f"{rr:.2f}; {q:.2f}", "single run",
                     "PASS" if rr >= 0.8 and q <= 1 else "FAIL"))
    t9 = ck.get("T9")
    at = ck.get("audit_total")
    if t9:
        # The soak must have run at the rate it names: 90% of rps(A), of which 90% answered.
        served = t9["answered"] / max(1, t9["offered_rps"] * t9["seconds"])
        rows.append(("T9", f"audit lost: soak {t9['seconds']}s@{t9['offered_rps']}rps+SIGHUP; whole run",
                     "0", f"{t9['lost']}; {at['lost'] if at else '-'}",
                     f"{t9['audited']}/{t9['answered']}, served {served:.0%}",
                     "PASS" if t9["lost"] <= 0 and t9["answered"] > 0 and served >= 0.9 and
                     (not at or at["lost"] <= 0) and t9["reloaded"] else "FAIL"))
    t10 = ck.get("T10")
    if t10:
        rows.append(("T10", "last-used writes/(key x worker x minute)", "<= 1",
                     f"{t10['per_key_per_worker_per_minute']:.3f}", f"{t10['updates']} writes",
                     "PASS" if t10["updates"] <= t10["bound"] else "FAIL"))
    conns = [r["store_connections_max"].get("main", 0) for r in res["rounds"]]
    conns0 = [r["store_connections_max"].get("a0", 0) for r in res["rounds"]]
    w = res["settings"].get("workers", 2)
    if conns:
        mx = max(conns + conns0)
        rows.append(("T11", f"store connections per pool ({w} workers)", f"<= {4 * w}",
                     str(int(statistics.median(conns))), f"max {mx}",
                     "PASS" if mx <= 4 * w else "FAIL"))
    rs = res.get("rss_samples") or []
    if rs:
        last = rs[-2] if len(rs) > 1 else rs[-1]  # before the graceful stop's sample
        main_last = [v for v in last["rss_kib"]["main"].values() if v]
        # growth over the second half of the requests served by the same workers
        half = [s for s in rs if s["main_pool_requests"] >= last["main_pool_requests"] / 2 and
                set(s["rss_kib"]["main"]) == set(last["rss_kib"]["main"])]
        grow = 0
        if half:
            grow = max((last["rss_kib"]["main"][w] or 0) - (half[0]["rss_kib"]["main"][w] or 0)
                       for w in last["rss_kib"]["main"])
        n = last["main_pool_requests"]
        ok = main_last and max(main_last) <= 32 * 1024 and grow <= max(1024, 0.03 * max(main_last))
        verdict = "PASS" if ok else "FAIL"
        if n < 1_000_000 and ok:
            verdict = f"PASS@{n // 1000}k"
        rows.append(("T12", f"RSS/worker after {n} requests (MiB)", "<= 32, flat",
                     f"{max(main_last) / 1024:.1f}" if main_last else "-",
                     f"+{grow} KiB 2nd half", verdict))
    bad = []
    for r in res["rounds"]:
        # A round in which nothing was answered is a stall, whatever wrk counted.
        bad.append(r["errors"]["status"] + r["socket_errors"] + (r["requests"] == 0))
    for x in res["latency"]:
        bad.append(x["failed"] + x["errored"] + x["timeout"] + x["s4xx"] + x["s5xx"])
    if t9:
        bad.append(t9["h2load"]["failed"] + t9["h2load"]["errored"] + t9["h2load"]["timeout"] +
                   t9["h2load"]["s5xx"] + t9["h2load"]["s4xx"])
    if t8:
        bad.append(t8["wrk"]["socket_errors"] + (t8["wrk"]["requests"] - t8["wrk"]["errors"]["status"]))
    rows.append(("T13", "bad statuses + socket errors + timeouts", "0", str(sum(bad)),
                 f"worst run {max(bad) if bad else 0}", "PASS" if sum(bad) == 0 else "FAIL"))
    return rows


def print_table(res, path=None):
    rps = {}
    for r in res["rounds"]:
        rps.setdefault(r["variant"], []).append(r["rps"])
    m = res["machine"]
    print(f"\nLooped benchmark {res['timestamp']}  server={res['server']}"
          f"{'  QUICK' if res['quick'] else ''}  store: {res['store']}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu']}), load {m['loadavg_start']} -> "
          f"{m.get('loadavg_end')}; pool {res['settings'].get('workers')} workers x "
          f"{res['settings'].get('threads')} threads, "
          f"wrk -t1 -c{res['settings'].get('connections')}, "
          f"{res['settings'].get('rounds')} rounds x {res['settings'].get('round_s')}s")
    print("rps median (min-max): " + "  ".join(
        f"{v} {statistics.median(x):.0f} ({min(x):.0f}-{max(x):.0f})" for v, x in rps.items()))
    cores = {}
    for r in res["rounds"]:
        for k, v in (r.get("cores_used") or {}).items():
            part = "pool" if k.startswith("pool") else "web" if k.startswith("web") else k
            if part in ("store", "pool", "web", "client", "other"):
                cores.setdefault(r["variant"], {}).setdefault(part, {}).setdefault(r["round"], 0)
                cores[r["variant"]][part][r["round"]] += v
    if cores:
        print("cores used, median (store/pool/web/wrk/rest of the machine): " + "  ".join(
            f"{v} " + "/".join(f"{statistics.median(c[p].values()):.2f}" if p in c else "0"
                               for p in ("store", "pool", "web", "client", "other"))
            for v, c in cores.items()))
    print(f"{'':4} {'what':44} {'target':>20} {'median':>18} {'min–max':>22}  verdict")
    for tid, what, target, med, rng, verdict in res["table"]:
        print(f"{tid:4} {what[:44]:44} {target:>20} {med:>18} {rng:>22}  {verdict}")
    if path:
        print(f"raw rounds: {path.relative_to(ROOT) if str(path).startswith(str(ROOT)) else path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", choices=["lighttpd", "apache"], default="lighttpd")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", type=Path, default=ROOT / "var" / "bench" / "build")
    ap.add_argument("--workers", default="", help="pool --workers (default: the pool's own)")
    ap.add_argument("--threads", default="", help="pool --threads (default: the pool's own)")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=20251129)
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=VALUE for the pools (experiments; noted in the JSON)")
    ap.add_argument("--uri-options", default="",
                    help="appended to the pools' MongoDB URI, e.g. maxPoolSize=3 (experiments)")
    ap.add_argument("--no-prewarm", dest="prewarm", action="store_false",
                    help="skip requesting every key of the sequence on both stacks before the "
                         "warm-up round (bench.md: A0 and A are measured with the cache warm)")
    ap.add_argument("--keys", type=int, default=NKEYS, help="number of keys (bench.md: 10,000)")
    ap.add_argument("--table", type=Path, help="print the table of an earlier JSON file")
    ap.add_argument("--authcheck-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep access logs and key lists")
    ap.add_argument("--skip-authcheck", action="store_true")
    a = ap.parse_args()
    if a.table:
        res = json.loads(a.table.read_text())
        res["table"] = table(res)  # with this version's rules
        print_table(res, a.table)
        return 0
    if a.authcheck_only:
        print(json.dumps(authcheck(a.build), indent=1))
        return 0
    if a.quick:
        a.rounds, a.duration, a.warmup, a.settle = 2, 3, 2, 0.3
        a.latency_s, a.latency_reps, a.flood_s, a.revoke_trials, a.soak_s = 4, 1, 4, 6, 6
        a.t12_requests, a.t12_max_s, a.sequence = 0, 0, 20000
    else:
        a.rounds, a.duration, a.warmup, a.settle = 5, 10, 5, 1.0
        a.latency_s, a.latency_reps, a.flood_s, a.revoke_trials, a.soak_s = 10, 2, 10, 20, 60
        a.t12_requests, a.t12_max_s, a.sequence = 1_000_000, 420, 100000
    a.unknown_keys = 200
    globals()["NKEYS"] = a.keys
    for tool in ("wrk", "h2load", "ss", "htpasswd", a.server if a.server == "lighttpd" else "apache2"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (tests/bench/run installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return Bench(a).go()


if __name__ == "__main__":
    sys.exit(main())
