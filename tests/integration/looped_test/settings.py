"""Where things are and what the suite runs: paths, the environment's settings, the seed data.

Environment:
    LOOPED_BUILD_DIR        where looped-fcgi and looped-admin are (default var/build/release)
    LOOPED_ASAN_BUILD_DIR   the ASan+UBSan build the "-asan" deployment runs (default var/build/asan)
    LOOPED_TEST_ARTIFACTS   where logs are copied at the end (default var/test/integration)
    LOOPED_TEST_MONGODB_URI use that MongoDB instead of FerretDB (throw-away database, see below)
    LOOPED_TEST_DB          the throw-away database's name then (default: a unique one)
(LOOPED_DEPLOYMENTS and LOOPED_FERRETDB: see conftest.py and stack.py.)
"""

import os
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
BUILD = Path(os.environ.get("LOOPED_BUILD_DIR", REPO / "var" / "build" / "release")).resolve()
ARTIFACTS = Path(os.environ.get("LOOPED_TEST_ARTIFACTS", REPO / "var" / "test" / "integration"))
FCGI_BIN = BUILD / "looped-fcgi"
ASAN_FCGI_BIN = Path(os.environ.get("LOOPED_ASAN_BUILD_DIR", REPO / "var" / "build" / "asan")).resolve() / "looped-fcgi"
ADMIN_BIN = BUILD / "looped-admin"

# Debian's chromium, driven by Playwright (the browser tests; conftest.py's `browser`).
CHROMIUM = os.environ.get("LOOPED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

IS_ROOT = os.geteuid() == 0
# Started as root, the web servers drop to this user, as in production.
WEB_USER = "www-data" if IS_ROOT else ""

# "-asan": the same deployment with the pool built with AddressSanitizer and UBSan (tests/run's
# unit-test build): any report fails the module that ran it.
ALL_DEPLOYMENTS = ["lighttpd-spawned", "lighttpd-pool", "apache-fcgid", "apache-proxy-fcgi",
                   "lighttpd-pool-asan"]
# The web servers' own body limit (lighttpd server.max-request-size, Apache LimitRequestBody), as
# shipped in deploy/: well above the app's LOOPED_MAX_BODY (1 MiB), so that the app decides.
WEB_MAX_BODY = 8 * 1048576
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


def sbin(name):
    """The web servers live in /usr/sbin, which a normal user's PATH may lack."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


LIGHTTPD = sbin("lighttpd")
APACHE2 = sbin("apache2")

