"""The stack the suite runs: the store (FerretDB, or an external MongoDB), the seeded settings,
the self-managed pool and the deployments (a web server from deploy/ and its process model).

Environment:
    LOOPED_FERRETDB         a FerretDB binary (default: built and cached by tests/ferretdb/build)
(and those of settings.py)
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pymongo
import pytest
import requests

from .client import fcgi_params, fcgi_request
from .procs import children, descendants, free_port, popen, stop_process, tail, wait_until
from .settings import (ADMIN_BIN, APACHE2, ARTIFACTS, ASAN_FCGI_BIN, CRASH_RE, DB_NAME, DEPLOY,
                       EXTERNAL_URI, FCGI_BIN, IS_ROOT, LIGHTTPD, MEMBERS, POOL_THREADS, POOL_WORKERS,
                       REPO, TEAMS, WEB_MAX_BODY, WEB_USER)
from .spec import SPEC


def chown_web(path):
    if IS_ROOT:
        shutil.chown(path, WEB_USER, WEB_USER)



class Store:
    """FerretDB with its SQLite backend; stop() and start() keep the port and the data."""

    external = False

    def __init__(self, binary, datadir, log):
        self.binary, self.datadir, self.log = binary, Path(datadir), Path(log)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.frozen = False

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

    def freeze(self):
        """SIGSTOP: the port still accepts, nothing answers (a hung server, not a dead one)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


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
                "LOOPED_SCHEMA_DIR": str(REPO / "schemas"), "LOOPED_AUDIT": "1",
                # the suite's client is the proxy: X-Forwarded-For from 127.0.0.1 is honoured,
                # from any other address (127.0.0.2 in test_limits.py) not
                "LOOPED_TRUSTED_PROXIES": "127.0.0.1"}

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

    def add_web_user(self, user, memberships=(), teams=None):
        """A Looped user who can log in to the web server, made once per session (the web servers
        read htpasswd on each request): `teams` {id: name} are created first, then `memberships`
        [(team, role)]. Returns the user name."""
        if user in self.passwords:
            return user
        for tid, name in (teams or {}).items():
            self.admin_ok("team", "create", tid, "--name", name)
        self.admin_ok("user", "add", user)
        for tid, role in memberships:
            self.admin_ok("member", "add", tid, user, role)
        pw = os.urandom(12).hex()
        subprocess.run(["htpasswd", "-iB", "-C", "5", str(self.htpasswd), user], input=pw, text=True,
                       check=True, capture_output=True, timeout=30)
        os.chmod(self.htpasswd, 0o640)
        if IS_ROOT:
            shutil.chown(self.htpasswd, "root", WEB_USER)
        self.passwords[user] = pw
        return user


def ferretdb_binary():
    if os.environ.get("LOOPED_FERRETDB"):
        return os.environ["LOOPED_FERRETDB"]
    r = subprocess.run([str(REPO / "tests" / "ferretdb" / "build")], capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, f"tests/ferretdb/build failed:\n{r.stderr}"
    return r.stdout.strip().splitlines()[-1]


def copy_artifacts(base):
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


class Pool:
    """looped-fcgi --listen unix:SOCK: the self-managed pool."""

    def __init__(self, stack, sock, log, workers=POOL_WORKERS, threads=POOL_THREADS, binary=FCGI_BIN,
                 env=None):
        self.stack, self.sock, self.log = stack, Path(sock), Path(log)
        self.workers, self.threads = workers, threads
        self.binary, self.env = binary, env or {}
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
        # Where the workers' audit spools live (a crashed worker's records are sent from there).
        env.setdefault("LOOPED_STATE_DIR", str(self.sock.parent))
        env.update(self.env)
        self.proc = popen([str(self.binary), "--listen", f"unix:{self.sock}", "--workers", str(self.workers),
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

    def __init__(self, stack, name, procs=None):
        self.stack, self.name = stack, name
        self.procs = procs  # looped-fcgi processes (None: the deployment's default)
        base = name.removesuffix("-asan")
        self.asan = base != name  # the pool is the ASan+UBSan build (settings.py)
        self.server, _, self.mode = base.partition("-")
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
        # A sanitizer's report goes to a file of its own (sanitizer.PID), checked at stop.
        san = f"log_path={self.dir / 'sanitizer'}:halt_on_error=1"
        self.pool = (Pool(stack, self.sock, self.dir / "pool.log", workers=procs or POOL_WORKERS,
                          binary=ASAN_FCGI_BIN if self.asan else FCGI_BIN,
                          # (2-3x slower: a store call gets 5 s rather than 2 before its 503)
                          env={"ASAN_OPTIONS": f"{san}:detect_leaks=0",
                               "UBSAN_OPTIONS": f"{san}:print_stacktrace=1",
                               "LOOPED_DB_TIMEOUT_MS": "5000"} if self.asan else None)
                     if self.mode in ("pool", "proxy-fcgi") else None)
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
            "LOOPED_HTTPD_PROCS": str(self.procs or 2), "LOOPED_HTTPD_HTPASSWD": str(self.stack.htpasswd),
            "LOOPED_HTTPD_WWW": str(DEPLOY / "www"), "LOOPED_HTTPD_MAX_REQUEST_KB": str(WEB_MAX_BODY // 1024),
            "LOOPED_HTTPD_CONF_DIR": str(DEPLOY / "lighttpd")})
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
            "LOOPED_HTTPD_PROCS": self.procs or 4, "LOOPED_HTTPD_SOCKET": self.sock,
            "LOOPED_HTTPD_MAX_BODY": WEB_MAX_BODY,
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
        reports = sorted(self.dir.glob("sanitizer.*"))
        assert not reports, f"{self.name}: sanitizer reports:\n" + "\n".join(
            r.read_text(errors="replace")[:4000] for r in reports[:3])
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



@contextlib.contextmanager
def running(stack, name, procs=None):
    """A deployment started for the duration of the `with` block (the `deployment` fixture's body)."""
    d = Deployment(stack, name, procs)
    try:
        d.start()
        yield d
    finally:
        d.stop()
