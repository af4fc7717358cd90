"""Runs the real stack for the integration suite: FerretDB, looped-admin, the pool, lighttpd, Apache.

One FerretDB per session (SQLite in a temporary directory, free loopback port), initialised and
seeded with looped-admin; then each test module that asks for `deployment` runs once per
deployment, each built from the files in deploy/ on a free port:

    lighttpd-spawned    lighttpd `bin-path` starts looped-fcgi        (deploy/lighttpd/…spawned)
    lighttpd-pool       lighttpd `socket` → looped-fcgi --listen      (deploy/lighttpd/…socket)
    apache-fcgid        Apache mod_fcgid starts looped-fcgi           (deploy/apache/…fcgid)
    apache-proxy-fcgi   Apache mod_proxy_fcgi → looped-fcgi --listen  (deploy/apache/…proxy-fcgi)

Environment:
    LOOPED_BUILD_DIR        where looped-fcgi and looped-admin are (default var/build/release)
    LOOPED_FERRETDB         a FerretDB binary (default: built and cached by tests/ferretdb/build)
    LOOPED_DEPLOYMENTS      comma-separated subset of the deployments above (default: all)
    LOOPED_TEST_ARTIFACTS   where logs are copied at the end (default var/test/integration)
    LOOPED_TEST_MONGODB_URI use that MongoDB instead of FerretDB (throw-away database, see below)

Every response the suite gets from the application (requests, and Deployment.fcgi) is checked
against the document served at /openapi.json: see "the spec tells the truth" below.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pymongo
import pytest
import requests

from procs import stop_process

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BUILD = Path(os.environ.get("LOOPED_BUILD_DIR", REPO / "var" / "build" / "release")).resolve()
ARTIFACTS = Path(os.environ.get("LOOPED_TEST_ARTIFACTS", REPO / "var" / "test" / "integration"))
FCGI_BIN = BUILD / "looped-fcgi"
ADMIN_BIN = BUILD / "looped-admin"

IS_ROOT = os.geteuid() == 0
# Started as root, the web servers drop to this user, as in production.
WEB_USER = "www-data" if IS_ROOT else ""

ALL_DEPLOYMENTS = ["lighttpd-spawned", "lighttpd-pool", "apache-fcgid", "apache-proxy-fcgi"]
POOL_WORKERS = 2
POOL_THREADS = 4
# LOOPED_TEST_MONGODB_URI: run against that server (e.g. a real MongoDB replica set) instead of
# starting FerretDB; the suite then uses a throw-away database (LOOPED_TEST_DB, else a unique
# name) and drops it at the end. The store-outage tests need a store they control: skipped then.
EXTERNAL_URI = os.environ.get("LOOPED_TEST_MONGODB_URI", "").strip()
if EXTERNAL_URI:
    DB_NAME = os.environ.get("LOOPED_TEST_DB") or f"looped_it_{os.getpid()}_{os.urandom(3).hex()}"
else:
    DB_NAME = "looped_it"

# Seed data (looped-admin) and the web server's htpasswd users.
TEAMS = {"acme": "Acme Inc", "globex": "Globex Corporation"}
MEMBERS = [("acme", "owner", "OWNER"), ("acme", "admin", "ADMIN"), ("acme", "member", "MEMBER"),
           ("globex", "outsider", "OWNER")]

# Lines in a web server's error log that mean an application process died or broke.
CRASH_RE = re.compile(
    r"signaled|signal \d+|SIGSEGV|SIGABRT|SIGBUS|Segmentation fault|AddressSanitizer|"
    r"runtime error:|core dumped|exit\(communication error\)|child exited|"
    r"AH01067|AH01068|AH01075|AH01073|premature end", re.I)

_started = []  # every Popen we made, for the last-resort cleanup


def _sbin(name):
    """The web servers live in /usr/sbin, which a normal user's PATH may lack."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


LIGHTTPD = _sbin("lighttpd")
APACHE2 = _sbin("apache2")


# ---------------------------------------------------------------------------------------------
# small helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, what, interval=0.1):
    """Calls fn until it returns a true value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report the last error
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def tail(path, n=40):
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-n:])
    except OSError:
        return ""


def popen(args, log, env=None, **kw):
    out = open(log, "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True, **kw)
    out.close()
    _started.append(p)
    return p


def process_table():
    """{pid: (ppid, argv0)} of every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            continue  # zombies are not running workers
        table[int(d)] = (ppid, argv0)
    return table


def children(pid):
    return sorted(p for p, (pp, _) in process_table().items() if pp == pid)


def descendants(pid, argv0_basename=None):
    table = process_table()
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        for p, (pp, a0) in table.items():
            if pp == cur:
                todo.append(p)
                if argv0_basename is None or os.path.basename(a0) == argv0_basename:
                    found.append(p)
    return sorted(found)


def chown_web(path):
    if IS_ROOT:
        shutil.chown(path, WEB_USER, WEB_USER)


# ---------------------------------------------------------------------------------------------
# FastCGI client (to talk to the pool without a web server)

_FCGI_BEGIN, _FCGI_END, _FCGI_PARAMS, _FCGI_STDIN, _FCGI_STDOUT, _FCGI_STDERR = 1, 3, 4, 5, 6, 7


def _fcgi_record(rtype, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def _fcgi_len(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def fcgi_request(sock_path, params, body=b"", timeout=15):
    """One FastCGI RESPONDER request. Returns (status, {lower-case header: value}, body bytes)."""
    pairs = b"".join(_fcgi_len(len(k.encode())) + _fcgi_len(len(v.encode())) + k.encode() + v.encode()
                     for k, v in params.items())
    msg = _fcgi_record(_FCGI_BEGIN, struct.pack("!HB5x", 1, 0))
    for i in range(0, len(pairs), 65535):
        msg += _fcgi_record(_FCGI_PARAMS, pairs[i:i + 65535])
    msg += _fcgi_record(_FCGI_PARAMS, b"")
    for i in range(0, len(body), 65535):
        msg += _fcgi_record(_FCGI_STDIN, body[i:i + 65535])
    msg += _fcgi_record(_FCGI_STDIN, b"")
    out = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(msg)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            done = False
            while len(buf) >= 8:
                _, rtype, _, clen, plen = struct.unpack("!BBHHBx", buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
                if rtype == _FCGI_STDOUT:
                    out += content
                elif rtype == _FCGI_END:
                    done = True
            if done:
                break
    head, _, rbody = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode(errors="replace").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, rbody


def fcgi_params(method, uri, remote_user=None, headers=None, body=b"", content_type=None):
    path, _, query = uri.partition("?")
    p = {"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "localhost",
         "SERVER_PORT": "80", "REQUEST_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1",
         "REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": "/v1",
         "PATH_INFO": path[3:], "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
         "HTTP_HOST": "localhost"}
    if content_type:
        p["CONTENT_TYPE"] = content_type
    if remote_user is not None:
        p["REMOTE_USER"] = remote_user
        p["AUTH_TYPE"] = "Basic"
    for k, v in (headers or {}).items():
        p["HTTP_" + k.upper().replace("-", "_")] = v
    return p


# ---------------------------------------------------------------------------------------------
# the store


class Store:
    """FerretDB with its SQLite backend; stop() and start() keep the port and the data."""

    external = False

    def __init__(self, binary, datadir, log):
        self.binary, self.datadir, self.log = binary, Path(datadir), Path(log)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}/"

    def _accepting(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "store already running"
        self.proc = popen([str(self.binary), "--handler=sqlite", f"--sqlite-url=file:{self.datadir}/",
                           f"--listen-addr=127.0.0.1:{self.port}", "--telemetry=disable",
                           "--state-dir=-", "--debug-addr=-", "--log-level=warn"], self.log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"FerretDB exited ({self.proc.returncode}):\n{tail(self.log)}")
            with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as c:
                c.admin.command("ping")
            return True
        wait_until(ready, 30, "FerretDB to answer ping")

    def stop(self):
        stop_process(self.proc)
        wait_until(lambda: not self._accepting(), 10, "FerretDB's port to close")

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


# ---------------------------------------------------------------------------------------------
# the stack (session)


class ExternalStore:
    """A store this suite does not run (LOOPED_TEST_MONGODB_URI): it cannot be stopped."""

    external = True
    proc = None

    def __init__(self, uri):
        self.uri = uri

    def start(self):
        def ready():
            with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=2000) as c:
                c.admin.command("ping")
            return True
        wait_until(ready, 30, f"the store at {self.uri.split('@')[-1]} to answer ping")

    def stop(self):
        pytest.skip("LOOPED_TEST_MONGODB_URI: the suite cannot stop an external store")

    @property
    def running(self):
        return True


class Stack:
    def __init__(self, base):
        self.base = Path(base)
        self.etc = self.base / "etc"
        self.etc.mkdir()
        self.pepper = self.etc / "pepper"
        self.htpasswd = self.etc / "htpasswd"
        self.config = self.etc / "looped.conf"
        self.passwords = {}
        self.store = None

    # settings shared by looped-admin and every looped-fcgi
    @property
    def app_env(self):
        return {"LOOPED_MONGODB_URI": self.store.uri, "LOOPED_DB": DB_NAME,
                "LOOPED_PEPPER_FILE": str(self.pepper), "LOOPED_TEST_ROUTES": "1",
                "LOOPED_LOG_LEVEL": "info", "LOOPED_MAX_BODY": "1048576",
                # named, so that every deployment passes them on (nothing relies on the build's
                # fallback to the source tree)
                "LOOPED_SCHEMA_DIR": str(REPO / "schemas"), "LOOPED_AUDIT": "1"}

    def base_env(self):
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS")
        return {k: v for k, v in os.environ.items() if k in keep}

    def admin(self, *args, config=True, env=None, timeout=60):
        """Runs looped-admin (with the stack's --config unless config=False)."""
        argv = [str(ADMIN_BIN)] + (["--config", str(self.config)] if config else []) + list(args)
        e = self.base_env()
        e.update(env or {})
        return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)

    def admin_ok(self, *args):
        r = self.admin(*args)
        assert r.returncode == 0, f"looped-admin {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r

    def db(self):
        client = pymongo.MongoClient(self.store.uri, serverSelectionTimeoutMS=5000)
        return client, client[DB_NAME]

    def setup(self):
        self.config.write_text(
            "# looped settings for the integration suite\n"
            f"LOOPED_MONGODB_URI={self.store.uri}\nLOOPED_DB={DB_NAME}\n"
            f"LOOPED_PEPPER_FILE={self.pepper}\n")
        self.admin_ok("init")
        for tid, name in TEAMS.items():
            self.admin_ok("team", "create", tid, "--name", name)
        for _, user, _ in MEMBERS:
            self.admin_ok("user", "add", user)
        for tid, user, role in MEMBERS:
            self.admin_ok("member", "add", tid, user, role)
        # mod_fcgid and lighttpd (spawned) run looped-fcgi as the web server user.
        chown_web(self.pepper)
        # "ghost" can log in to the web server but is no Looped user.
        for user in [u for _, u, _ in MEMBERS] + ["ghost"]:
            pw = self.passwords[user] = os.urandom(12).hex()
            flags = "-iB" if self.htpasswd.exists() else "-ciB"
            subprocess.run(["htpasswd", flags, "-C", "5", str(self.htpasswd), user], input=pw,
                           text=True, check=True, capture_output=True, timeout=30)
        os.chmod(self.htpasswd, 0o640)
        if IS_ROOT:
            shutil.chown(self.htpasswd, "root", WEB_USER)

    def credentials(self, user):
        return (user, self.passwords[user])


def _ferretdb_binary():
    if os.environ.get("LOOPED_FERRETDB"):
        return os.environ["LOOPED_FERRETDB"]
    r = subprocess.run([str(REPO / "tests" / "ferretdb" / "build")], capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, f"tests/ferretdb/build failed:\n{r.stderr}"
    return r.stdout.strip().splitlines()[-1]


def _copy_artifacts(base):
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
    for root, dirs, files in os.walk(base):
        rel = Path(root).relative_to(base)
        if rel.parts[:1] == ("store",):
            continue
        for f in files:
            src = Path(root) / f
            if not src.is_file() or src.name == "pepper":
                continue
            if EXTERNAL_URI and src.name == "looped.conf":
                continue  # holds the store's URI, perhaps with credentials
            if src.suffix in (".log", ".conf") or src.name in ("htpasswd",):
                dst = ARTIFACTS / rel / f
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(src, dst)
                except OSError:
                    pass


@pytest.fixture(scope="session")
def stack():
    for b in (FCGI_BIN, ADMIN_BIN):
        if not os.access(b, os.X_OK):
            pytest.exit(f"{b} not found: build first (tests/run, or LOOPED_BUILD_DIR)", returncode=3)
    base = Path(tempfile.mkdtemp(prefix="looped-it-"))
    os.chmod(base, 0o755)  # the web server user must reach its files in here
    st = Stack(base)
    if EXTERNAL_URI:
        st.store = ExternalStore(EXTERNAL_URI)
    else:
        st.store = Store(_ferretdb_binary(), base / "store", base / "ferretdb.log")
    try:
        st.store.start()
        st.setup()
        yield st
    finally:
        for p in _started:
            if p.poll() is None and p is not st.store.proc:
                stop_process(p)
        stop_process(st.store.proc)
        if EXTERNAL_URI:  # throw the test databases away
            try:
                with pymongo.MongoClient(EXTERNAL_URI, serverSelectionTimeoutMS=5000) as c:
                    for name in c.list_database_names():
                        if name == DB_NAME or name.startswith(DB_NAME + "_"):
                            c.drop_database(name)
            except pymongo.errors.PyMongoError:
                pass
        _copy_artifacts(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mongo(stack):
    """(client, db) on the test database; closed after the test."""
    client, db = stack.db()
    yield client, db
    client.close()


# ---------------------------------------------------------------------------------------------
# "the spec tells the truth": every response of the application is checked against openapi.json
#
# requests.Session.send is wrapped for the whole session (requests.get & co. go through it too),
# and so is Deployment.fcgi: each response to a request for one of our deployments is matched to
# the path template, method and status that the document served at /openapi.json declares (else
# "default") and its body is validated against that response's schema with `jsonschema` (Draft
# 2020-12, formats checked, "#/components/..." resolved through a referencing registry holding the
# whole document); declared response headers are validated when present. A mismatch fails the
# test (or fixture) during which the response arrived, whichever thread made the request.
#
# Not checked: /v1/_test/* (test-only routes, not in the document), responses that are not the
# application's (no X-Request-Id and no JSON body: the web server's own 401 challenge, 411/413
# pages, 502/503 while the app is down, static files), and HEAD bodies. 405s, and 4xx/5xx on
# paths the document does not have (the app's 404 for /v1/nope), are checked against the Error
# schema; a 2xx on an undocumented path or method is a mismatch.

SPEC_URI = "urn:looped:openapi.json"
APP_PATH_RE = re.compile(r"^/(v1(/|$)|openapi\.json$)")
SKIP_PATH_RE = re.compile(r"^/v1/_test(/|$)")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SpecChecker:
    """The document served at /openapi.json and the checks of responses against it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bases = set()        # "http://127.0.0.1:PORT" of every deployment
        self.spec = None
        self.registry = None
        self.templates = []       # (compiled regex, template), most specific first
        self.validators = {}      # JSON pointer -> validator
        self.pending = []         # responses that arrived before the document could be loaded
        self.problems = []        # mismatches of the current test phase
        self.checked = {}         # (method, template, status) -> count, for the summary
        self.skipped = 0
        self.not_app = {}         # (method, path, "status type") -> count: the web server's answers
        self.total_problems = 0

    # -- the document

    def load(self, spec):
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.jsonschema = jsonschema
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
        tpls = []
        for t in spec.get("paths", {}):
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"
            literal = sum(1 for seg in t.split("/") if seg and not seg.startswith("{"))
            tpls.append((-literal, -len(t), re.compile(rx), t))
        self.templates = [(rx, t) for _, _, rx, t in sorted(tpls, key=lambda x: (x[0], x[1]))]

    def _fetch(self, base):
        import json
        import urllib.request
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=10) as f:
                return json.loads(f.read())
        except Exception:  # noqa: BLE001 - retried with the next response
            return None

    def _deref(self, obj, ptr):
        """Follows OpenAPI-level {"$ref": "#/..."} (responses, headers); returns (object, pointer)."""
        for _ in range(10):
            if not (isinstance(obj, dict) and isinstance(obj.get("$ref"), str) and obj["$ref"].startswith("#/")):
                return obj, ptr
            ptr = obj["$ref"][1:]
            obj = self.spec
            for part in ptr.split("/")[1:]:
                obj = obj[part.replace("~1", "/").replace("~0", "~")]
        raise AssertionError(f"$ref loop at {ptr}")

    def _validator(self, ptr):
        v = self.validators.get(ptr)
        if v is None:
            cls = self.jsonschema.Draft202012Validator
            v = cls({"$ref": SPEC_URI + "#" + ptr}, registry=self.registry, format_checker=cls.FORMAT_CHECKER)
            self.validators[ptr] = v
        return v

    def _errors(self, ptr, instance, what):
        errs = sorted(self._validator(ptr).iter_errors(instance), key=lambda e: (len(e.path), str(e.path)))
        out = []
        for e in errs[:5]:
            where = e.json_path if what == "body" else what
            out.append(f"{where}: {e.message[:300]} (schema {ptr}{'/' if e.schema_path else ''}"
                       f"{'/'.join(str(p) for p in e.schema_path)})")
        if len(errs) > 5:
            out.append(f"... and {len(errs) - 5} more")
        return out

    # -- one response

    def owns(self, url):
        from urllib.parse import urlsplit
        u = urlsplit(url)
        return f"{u.scheme}://{u.netloc}" in self.bases

    def check(self, method, url, status, headers, body, via="http"):
        """Checks one response; returns a list of problems (empty: fine or not the app's)."""
        from urllib.parse import urlsplit
        u = urlsplit(url)
        path = u.path or "/"
        if not APP_PATH_RE.match(path) or SKIP_PATH_RE.match(path):
            return []
        h = {k.lower(): v for k, v in headers.items()}
        ctype = h.get("content-type", "").split(";")[0].strip().lower()
        if "x-request-id" not in h and ctype != "application/json" and not ctype.endswith("+json"):
            tpl = next((t for rx, t in self.templates if rx.match(path)), path)
            key = (method.upper(), tpl, f"{status} {ctype or '-'}")
            with self.lock:
                self.skipped += 1
                self.not_app[key] = self.not_app.get(key, 0) + 1
            return []  # the web server's own answer, not the application's
        base = f"{u.scheme}://{u.netloc}"
        with self.lock:
            if self.spec is None:
                spec = self._fetch(base) if via == "http" else None
                if spec is None:
                    self.pending.append((method, url, status, headers, body, via))
                    return []
                self.load(spec)
        return self._check(method.upper(), path, status, h, ctype, body)

    def _check(self, method, path, status, h, ctype, body):
        import json
        what = f"{method} {path} -> {status}"
        template = next((t for rx, t in self.templates if rx.match(path)), None)
        op_method = "get" if method == "HEAD" else method.lower()
        ops = self.spec["paths"].get(template, {}) if template else {}
        op = ops.get(op_method) if op_method in HTTP_METHODS else None
        key = (method, template or "(undocumented)", status)
        with self.lock:
            self.checked[key] = self.checked.get(key, 0) + 1
        error_ptr = "/components/schemas/Error"
        if op is None:
            if status < 400:
                return [f"{what}: {'no path template' if template is None else method + ' is not documented for ' + template}"
                        f" in openapi.json, yet the app answered {status}"]
            resp, resp_ptr = {"content": {"application/json": {"schema": {}}}}, None
        elif status == 405:
            resp, resp_ptr = {"content": {"application/json": {"schema": {}}}}, None
        else:
            responses = op.get("responses", {})
            code = str(status)
            if code not in responses:
                code = f"{status // 100}XX" if f"{status // 100}XX" in responses else "default"
            if code not in responses:
                return [f"{what}: status {status} is not declared for {method} {template} (nor a default)"]
            resp, resp_ptr = self._deref(responses[code], _pointer("paths", template, op_method, "responses", code))
        problems = []
        # declared headers, when present
        for name, hdef in (resp.get("headers") or {}).items():
            hdef, hptr = self._deref(hdef, (resp_ptr or "") + _pointer("headers", name))
            value = h.get(name.lower())
            if value is None:
                if hdef.get("required"):
                    problems.append(f"{what}: required header {name} missing")
                continue
            if "schema" in hdef and resp_ptr is not None:
                sch = hdef["schema"]
                inst = value
                if isinstance(sch, dict) and sch.get("type") == "integer" and re.fullmatch(r"-?\d+", value):
                    inst = int(value)
                problems += [f"{what}: header {p}" for p in self._errors(hptr + "/schema", inst, f"{name}: {value!r}")]
        if method == "HEAD" or body is None:
            return problems  # no body to check (HEAD, or a streamed response nobody read yet)
        content = resp.get("content")
        if not content:
            if body:
                problems.append(f"{what}: declared without a body, got {len(body)} bytes ({ctype or 'no type'})")
            return problems
        media = next((m for m in content if m.split(";")[0].strip().lower() == ctype), None)
        if media is None:
            problems.append(f"{what}: Content-Type {ctype or '(none)'} is not one of {sorted(content)}")
            return problems
        try:
            instance = json.loads(body)
        except ValueError as e:
            problems.append(f"{what}: body is not JSON ({e}): {body[:200]!r}")
            return problems
        if resp_ptr is None:
            ptr = error_ptr
        elif "schema" in content[media]:
            ptr = resp_ptr + _pointer("content", media, "schema")
        else:
            return problems
        problems += [f"{what}: body {p}" for p in self._errors(ptr, instance, "body")]
        return problems

    def record(self, problems):
        if problems:
            with self.lock:
                self.problems += problems
                self.total_problems += len(problems)

    def take(self):
        with self.lock:
            out, self.problems = self.problems, []
            if self.spec is not None and self.pending:
                pending, self.pending = self.pending, []
            else:
                pending = []
        for method, url, status, headers, body, via in pending:
            out += self.check(method, url, status, headers, body, via)
        return out


SPEC = SpecChecker()


def _checked_send(self, request, **kw):
    r = _original_send(self, request, **kw)
    if SPEC.owns(request.url):
        try:
            body = None if kw.get("stream") else r.content  # (a stream stays the caller's to read)
            SPEC.record(SPEC.check(request.method, request.url, r.status_code, r.headers, body))
        except Exception as e:  # noqa: BLE001 - a broken check must show, not pass silently
            SPEC.record([f"{request.method} {request.url}: the spec check itself failed: {e!r}"])
    return r


_original_send = requests.Session.send


@pytest.fixture(scope="session", autouse=True)
def _spec_check_requests():
    """Every requests.Session (and requests.get & co.) of the session goes through the check."""
    requests.Session.send = _checked_send
    try:
        yield SPEC
    finally:
        requests.Session.send = _original_send


def _spec_phase(item, phase):
    problems = SPEC.take()
    if not problems:
        return None
    msg = (f"the response(s) below do not match what openapi.json declares ({phase} of {item.nodeid}):\n  "
           + "\n  ".join(problems))
    return msg


def _spec_wrap(item, phase):
    """The body of the three phase wrappers below: fail the phase on a mismatch (or, when the phase
    failed anyway, add the mismatches to its report)."""
    try:
        res = yield
    except BaseException:
        msg = _spec_phase(item, phase)
        if msg:
            item.add_report_section(phase, "spec", msg)
        raise
    msg = _spec_phase(item, phase)
    if msg:
        pytest.fail(msg, pytrace=False)
    return res


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    SPEC.take()  # (whatever arrived between tests belongs to no test)
    return (yield from _spec_wrap(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _spec_wrap(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _spec_wrap(item, "teardown"))


def pytest_terminal_summary(terminalreporter):
    if not SPEC.checked and not SPEC.skipped:
        return
    n = sum(SPEC.checked.values())
    terminalreporter.write_line(
        f"spec check: {n} responses checked against openapi.json ({len(SPEC.checked)} distinct "
        f"method/path/status), {SPEC.skipped} not from the app, {SPEC.total_problems} mismatches")
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with open(ARTIFACTS / "spec-coverage.txt", "w") as f:
            f.write("# responses checked against openapi.json: method, path template, status, count\n")
            for (m, t, s), c in sorted(SPEC.checked.items(), key=lambda x: (x[0][1], x[0][0], x[0][2])):
                f.write(f"{m:7} {t:50} {s} x{c}\n")
            f.write("# not the application's (no X-Request-Id, no JSON): the web server's own answers\n")
            for (m, t, s), c in sorted(SPEC.not_app.items()):
                f.write(f"{m:7} {t:50} {s} x{c}\n")
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# the pool and the deployments


class Pool:
    """looped-fcgi --listen unix:SOCK: the self-managed pool."""

    def __init__(self, stack, sock, log, workers=POOL_WORKERS, threads=POOL_THREADS):
        self.stack, self.sock, self.log = stack, Path(sock), Path(log)
        self.workers, self.threads = workers, threads
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        return children(self.proc.pid)

    def start(self):
        env = self.stack.base_env()
        env.update(self.stack.app_env)
        if IS_ROOT:
            env["LOOPED_SOCKET_GROUP"] = WEB_USER  # the socket is 0660: the web server's group
        self.proc = popen([str(FCGI_BIN), "--listen", f"unix:{self.sock}", "--workers", str(self.workers),
                           "--threads", str(self.threads)], self.log, env=env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"looped-fcgi pool exited ({self.proc.returncode}):\n{tail(self.log)}")
            return self.sock.exists() and len(self.worker_pids()) == self.workers
        wait_until(ready, 20, f"the pool's socket {self.sock} and {self.workers} workers")

    def stop(self, timeout=20):
        return stop_process(self.proc, timeout=timeout)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Deployment:
    """One web server + process model, from the files in deploy/, on a free port."""

    def __init__(self, stack, name):
        self.stack, self.name = stack, name
        self.server, _, self.mode = name.partition("-")
        # One directory per start: each test module starts its own instance of a deployment.
        n = 1
        self.dir = stack.base / name
        while self.dir.exists():
            n += 1
            self.dir = stack.base / f"{name}-{n}"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sock = self.dir / "fcgi.sock"
        self.pool = Pool(stack, self.sock, self.dir / "pool.log") if self.mode in ("pool", "proxy-fcgi") else None
        self.proc = None
        self.error_log = self.dir / "error.log"
        self.session = requests.Session()
        SPEC.bases.add(self.url)  # its responses are checked against openapi.json

    # -- lifecycle

    def _lighttpd(self):
        env = self.stack.base_env()
        env.update(self.stack.app_env)  # copied to the spawned processes (bin-copy-environment)
        env.update({
            "LOOPED_HTTPD_ADDR": "127.0.0.1", "LOOPED_HTTPD_PORT": str(self.port),
            "LOOPED_HTTPD_STATE_DIR": str(self.dir), "LOOPED_HTTPD_USER": WEB_USER,
            "LOOPED_HTTPD_MODE": "spawned" if self.mode == "spawned" else "socket",
            "LOOPED_HTTPD_SOCKET": str(self.sock), "LOOPED_HTTPD_FCGI_BIN": str(FCGI_BIN),
            "LOOPED_HTTPD_PROCS": "2", "LOOPED_HTTPD_HTPASSWD": str(self.stack.htpasswd),
            "LOOPED_HTTPD_WWW": str(DEPLOY / "www"), "LOOPED_HTTPD_MAX_REQUEST_KB": "2048"})
        (self.dir / "upload").mkdir(exist_ok=True)
        chown_web(self.dir / "upload")  # lighttpd buffers request bodies there
        conf = str(DEPLOY / "lighttpd" / "lighttpd.conf")
        r = subprocess.run([LIGHTTPD, "-tt", "-f", conf], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"lighttpd -tt failed:\n{r.stdout}{r.stderr}"
        return [LIGHTTPD, "-D", "-f", conf], env

    def _apache(self):
        defines = {
            "LOOPED_HTTPD_CONF_DIR": DEPLOY / "apache", "LOOPED_HTTPD_LISTEN": f"127.0.0.1:{self.port}",
            "LOOPED_HTTPD_STATE_DIR": self.dir, "LOOPED_HTTPD_WWW": DEPLOY / "www",
            "LOOPED_HTTPD_HTPASSWD": self.stack.htpasswd, "LOOPED_HTTPD_FCGI_BIN": FCGI_BIN,
            "LOOPED_HTTPD_PROCS": 4, "LOOPED_HTTPD_SOCKET": self.sock,
        }
        if not IS_ROOT:
            import grp
            import pwd
            defines["LOOPED_HTTPD_USER"] = pwd.getpwuid(os.getuid()).pw_name
            defines["LOOPED_HTTPD_GROUP"] = grp.getgrgid(os.getgid()).gr_name
        defines.update(self.stack.app_env)  # FcgidInitialEnv
        argv = [APACHE2, "-f", str(DEPLOY / "apache" / "apache2.conf")]
        for k, v in defines.items():
            argv += ["-C", f"Define {k} {v}"]
        if self.mode == "fcgid":
            argv += ["-D", "LOOPED_HTTPD_FCGID"]
            (self.dir / "fcgid").mkdir(exist_ok=True)
            chown_web(self.dir / "fcgid")
        r = subprocess.run(argv + ["-t"], env=self.stack.base_env(), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"apache2 -t failed:\n{r.stdout}{r.stderr}"
        return argv + ["-DFOREGROUND"], self.stack.base_env()

    def start(self):
        chown_web(self.dir)
        if self.pool:
            self.pool.start()
        argv, env = self._lighttpd() if self.server == "lighttpd" else self._apache()
        self.proc = popen(argv, self.dir / "server.log", env=env, cwd=str(self.dir))

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n"
                                     f"{tail(self.dir / 'server.log')}{tail(self.error_log)}")
            return requests.get(self.url + "/v1/health", timeout=10).status_code == 200
        wait_until(healthy, 30, f"{self.name}: GET /v1/health = 200", interval=0.2)

    def stop(self):
        stop_process(self.proc)
        if self.pool and self.pool.running:
            self.pool.stop()
        self.session.close()

    def restart_pool(self):
        """Starts the pool again (after a test stopped it) and waits for health 200."""
        if self.pool.running:
            self.pool.stop()
        self.pool.start()
        wait_until(lambda: self.get("/v1/health").status_code == 200, 30, "health 200 after pool restart",
                   interval=0.3)

    # -- inspection

    def app_pids(self):
        """The looped-fcgi processes serving this deployment (pool: its workers)."""
        if self.pool:
            return self.pool.worker_pids()
        return descendants(self.proc.pid, FCGI_BIN.name)

    def log_offset(self):
        try:
            return self.error_log.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def crash_lines(self, offset):
        return [line for line in self.log_since(offset).splitlines() if CRASH_RE.search(line)]

    # -- HTTP

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def fcgi(self, method, uri, **kw):
        """A request straight to the pool's socket, bypassing the web server (pool modes only)."""
        body = kw.pop("body", b"")
        status, headers, rbody = fcgi_request(self.sock, fcgi_params(method, uri, body=body, **kw), body=body)
        SPEC.record(SPEC.check(method, self.url + uri, status, headers, rbody, via="fcgi"))
        return status, headers, rbody


def _selected_deployments():
    want = os.environ.get("LOOPED_DEPLOYMENTS", "").strip()
    if not want:
        return ALL_DEPLOYMENTS
    names = [n.strip() for n in want.split(",") if n.strip()]
    unknown = set(names) - set(ALL_DEPLOYMENTS)
    if unknown:
        raise pytest.UsageError(f"LOOPED_DEPLOYMENTS: unknown {sorted(unknown)}; know {ALL_DEPLOYMENTS}")
    return names


def pytest_generate_tests(metafunc):
    if "deployment" in metafunc.fixturenames:
        metafunc.parametrize("deployment", _selected_deployments(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def deployment(request, stack):
    d = Deployment(stack, request.param)
    try:
        d.start()
        yield d
    finally:
        d.stop()


@pytest.fixture
def store_up(stack):
    """Makes sure the store runs when the test ends, whatever the test did to it."""
    yield stack.store
    if not stack.store.running:
        stack.store.start()


class Stream:
    """`total` GETs of `path` from `threads` threads, each with its own connection(s)."""

    def __init__(self, deployment, path="/v1/_test/hello", total=400, threads=4):
        self.d, self.path, self.total, self.nthreads = deployment, path, total, threads
        self.results = []  # (index, status or exception text, X-Worker)
        self._lock = threading.Lock()
        self._next = 0
        self._threads = []

    def _take(self):
        with self._lock:
            i = self._next
            self._next += 1
            return i

    def _run(self):
        s = requests.Session()
        try:
            while True:
                i = self._take()
                if i >= self.total:
                    return
                try:
                    r = s.get(self.d.url + self.path, timeout=15)
                    res = (i, r.status_code, r.headers.get("X-Worker"))
                except requests.RequestException as e:
                    res = (i, f"{type(e).__name__}: {e}", None)
                    s.close()
                    s = requests.Session()
                with self._lock:
                    self.results.append(res)
        finally:
            s.close()

    def start(self):
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def done_count(self):
        with self._lock:
            return len(self.results)

    def wait_done(self, n, timeout=30):
        wait_until(lambda: self.done_count() >= n, timeout, f"{n} requests of the stream", interval=0.01)

    def join(self, timeout=120):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "request stream did not finish in time"
        return self

    def failures(self):
        return [r for r in self.results if r[1] != 200]


# ---------------------------------------------------------------------------------------------
# assertions the test files share

SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
JSON_CT = re.compile(r"^application/json\b")


def assert_error(r, status, code):
    """The error envelope of api.md §1, with request_id equal to the X-Request-Id header.
    `code` is the expected code, or a collection of acceptable ones."""
    assert r.status_code == status, f"{r.request.method} {r.url}: {r.status_code} {r.text[:400]}"
    assert JSON_CT.match(r.headers.get("Content-Type", "")), r.headers.get("Content-Type")
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    if isinstance(code, str):
        assert err["code"] == code, body
    else:
        assert err["code"] in code, body
    assert isinstance(err.get("message"), str) and err["message"], body
    rid = r.headers.get("X-Request-Id")
    assert rid and SANE_ID.match(rid), r.headers
    assert err.get("request_id") == rid, (body, rid)
    return err


def needs_pool(d):
    if d.pool is None:
        pytest.skip(f"{d.name}: no self-managed pool in this deployment")
