"""The integration suite's fixtures and pytest hooks; the helpers are the package looped_test/.

One FerretDB per session (SQLite in a temporary directory, free loopback port), initialised and
seeded with looped-admin; then each test module that asks for `deployment` runs once per
deployment, each built from the files in deploy/ on a free port:

    lighttpd-spawned    lighttpd `bin-path` starts looped-fcgi        (deploy/lighttpd/…spawned)
    lighttpd-pool       lighttpd `socket` → looped-fcgi --listen      (deploy/lighttpd/…socket)
    apache-fcgid        Apache mod_fcgid starts looped-fcgi           (deploy/apache/…fcgid)
    apache-proxy-fcgi   Apache mod_proxy_fcgi → looped-fcgi --listen  (deploy/apache/…proxy-fcgi)
    lighttpd-pool-asan  lighttpd-pool with the ASan+UBSan build of looped-fcgi (a sanitizer's
                        report fails the module that caused it)

Environment:
    LOOPED_BUILD_DIR        where looped-fcgi and looped-admin are (default var/build/release)
    LOOPED_FERRETDB         a FerretDB binary (default: built and cached by tests/ferretdb/build)
    LOOPED_DEPLOYMENTS      comma-separated subset of the deployments above (default: all)
    LOOPED_TEST_ARTIFACTS   where logs are copied at the end (default var/test/integration)
    LOOPED_TEST_MONGODB_URI use that MongoDB instead of FerretDB (throw-away database, see
                            looped_test/settings.py)

Every response the suite gets from the application (requests, and Deployment.fcgi) is checked
against the document served at /openapi.json: see looped_test/spec.py ("the spec tells the
truth"); the hooks below fail the test phase during which a mismatch arrived.

The package:
    looped_test/settings.py  paths, environment, seed data
    looped_test/procs.py     processes, ports, waiting (also used by tests/bench/bench.py)
    looped_test/client.py    FastCGI client, Stream (HTTP GETs from threads)
    looped_test/stack.py     Store, ExternalStore, Stack, Pool, Deployment
    looped_test/spec.py      the OpenAPI response checker (SpecChecker, SPEC)
    looped_test/asserts.py   assert_error, needs_pool
"""

import os
import shutil
import tempfile
from pathlib import Path

import pymongo
import pytest

from looped_test import spec
from looped_test.procs import STARTED, stop_process
from looped_test.settings import (ADMIN_BIN, ALL_DEPLOYMENTS, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, EXTERNAL_URI,
                                  DB_NAME, FCGI_BIN)
from looped_test.spec import SPEC
from looped_test.stack import ExternalStore, Stack, Store, copy_artifacts, ferretdb_binary, running


# ---------------------------------------------------------------------------------------------
# the stack (session), the store, the deployments


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
        st.store = Store(ferretdb_binary(), base / "store", base / "ferretdb.log")
    try:
        st.store.start()
        st.setup()
        yield st
    finally:
        for p in STARTED:
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
        copy_artifacts(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mongo(stack):
    """(client, db) on the test database; closed after the test."""
    client, db = stack.db()
    yield client, db
    client.close()


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
    with running(stack, request.param) as d:
        yield d


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, through Playwright's sync API: one for the whole session, here
    rather than in test_browser.py because test_browser_rotation.py uses it too (a second session
    fixture would start a second Playwright inside the first one's event loop)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pip package playwright not installed (tests/run installs it)")
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found: tests/run must apt-get install chromium")
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def store_up(stack):
    """Makes sure the store runs when the test ends, whatever the test did to it."""
    yield stack.store
    if getattr(stack.store, "frozen", False):
        stack.store.thaw()
    if not stack.store.running:
        stack.store.start()


# ---------------------------------------------------------------------------------------------
# "the spec tells the truth" (looped_test/spec.py): every response of the application is checked


@pytest.fixture(scope="session", autouse=True)
def _spec_check_requests():
    """Every requests.Session (and requests.get & co.) of the session goes through the check."""
    spec.hook_requests()
    try:
        yield SPEC
    finally:
        spec.unhook_requests()


def _spec_wrap(item, phase):
    """The body of the three phase wrappers below: fail the phase on a mismatch (or, when the phase
    failed anyway, add the mismatches to its report)."""
    try:
        res = yield
    except BaseException:
        msg = spec.phase_problems(item.nodeid, phase)
        if msg:
            item.add_report_section(phase, "spec", msg)
        raise
    msg = spec.phase_problems(item.nodeid, phase)
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
    line = spec.summary(SPEC)
    if line is None:
        return
    terminalreporter.write_line(line)
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        spec.write_coverage(SPEC, ARTIFACTS / "spec-coverage.txt")
    except OSError:
        pass
