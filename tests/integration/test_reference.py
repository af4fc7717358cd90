"""Issue 4's last "Must show" items: the OpenAPI document and the Scalar API reference at /.

Against every deployment: /openapi.json and /v1/openapi.json reach the application without
credentials; / and the reference's scripts are static files of deploy/www (the bundle put into
deploy/www/vendor/ by deploy/scalar/vendor, which tests/run calls). The checker of "the spec
tells the truth" (looped_test/spec.py) is shown to catch a response that lies.

In headless Chromium (Debian's `chromium` through pip `playwright`; never `playwright install`),
against one lighttpd and one Apache deployment (the first of each that LOOPED_DEPLOYMENTS
selects; static files do not depend on the process model): / renders the reference with the
resources listed and the X-API-Key scheme preselected; a key typed into its Authentication panel
goes with "Test Request" (GET /v1/customers answers 200 with the team's customer); and not one
request leaves the server.
Playwright runs in a thread of its own here: test_browser.py keeps a session-wide sync
Playwright in the main thread, and a second one cannot start beside it in the same thread.

Screenshots go to var/test/screenshots/ (or $LOOPED_TEST_SCREENSHOTS).
"""

import json
import os
import re
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from looped_test.asserts import JSON_CT, assert_error
from looped_test.settings import ALL_DEPLOYMENTS, DEPLOY, REPO
from looped_test.spec import SPEC, SpecChecker

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # tests/run installs it; without it only the browser test is skipped
    sync_playwright = None

CHROMIUM = os.environ.get("LOOPED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("LOOPED_TEST_SCREENSHOTS", REPO / "var" / "test" / "screenshots"))
BUNDLE = DEPLOY / "www" / "vendor" / "scalar" / "api-reference.js"
RESOURCES = ["customers", "invoices", "products", "projects", "tasks", "time_entries"]


def _browser_deployments():
    want = [n.strip() for n in os.environ.get("LOOPED_DEPLOYMENTS", "").split(",") if n.strip()]
    names = want or ALL_DEPLOYMENTS
    return [n for n in (next((n for n in names if n.startswith(s + "-")), None)
                        for s in ("lighttpd", "apache")) if n]


BROWSER_DEPLOYMENTS = _browser_deployments()


# ---------------------------------------------------------------------------------------------
# routing: the document from the app, / from the static root (every deployment)


def test_openapi_json_reaches_the_app(deployment):
    docs = []
    for path in ("/openapi.json", "/v1/openapi.json"):
        r = deployment.get(path)  # no credentials: neither path is behind the web server's auth
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        assert JSON_CT.match(r.headers.get("Content-Type", "")), (path, r.headers)
        assert r.headers.get("X-Request-Id"), f"{path} was not answered by the application: {r.headers}"
        assert "WWW-Authenticate" not in r.headers, r.headers
        doc = r.json()
        assert doc["openapi"].startswith("3.1"), doc.get("openapi")
        docs.append(doc)
    assert docs[0] == docs[1]
    paths = docs[0]["paths"]
    for res in RESOURCES:
        assert f"/v1/{res}" in paths and f"/v1/{res}/{{id}}" in paths, sorted(paths)
    schemes = docs[0]["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes["ApiKey"].items(), schemes


def test_openapi_merge_patch_and_examples(deployment):
    """Issue 15: PATCH takes a nested null (merge patch) and says so, only PATCH lists
    application/merge-patch+json, and each resource's example is valid for its response schema
    (which requires the read-only fields)."""
    doc = deployment.get("/openapi.json").json()
    checker = SpecChecker()
    checker.load(doc)
    schemas = doc["components"]["schemas"]
    patch = "/components/schemas/CustomerPatch"
    assert checker._errors(patch, {"address": {"line2": None}, "email": None}, "body") == []
    assert checker._errors(patch, {"address": {"city": None, "country": "FR"}}, "body") == []
    assert checker._errors(patch, {"name": None}, "body"), "a required field may not be removed"
    assert checker._errors(patch, {"address": {"floor": 2}}, "body"), "unknown nested field accepted"
    assert "null" in schemas["CustomerPatch"]["description"] and "nested" in schemas["CustomerPatch"]["description"]
    for res in RESOURCES:
        ops = doc["paths"][f"/v1/{res}"]
        assert list(ops["post"]["requestBody"]["content"]) == ["application/json"], res
        patch_media = doc["paths"][f"/v1/{res}/{{id}}"]["patch"]["requestBody"]["content"]
        assert sorted(patch_media) == ["application/json", "application/merge-patch+json"], res
        name = ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        item = schemas[name.removesuffix("List")]
        assert item["examples"], res
        for ex in item["examples"]:
            assert checker._errors(f"/components/schemas/{name.removesuffix('List')}", ex, "body") == [], (res, ex)


def test_root_is_the_static_reference(deployment):
    r = deployment.get("/")
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Content-Type", "").startswith("text/html"), r.headers
    assert "X-Request-Id" not in r.headers, "/ must be a static file, not the application"
    html = r.text
    assert '<script src="/vendor/scalar/api-reference.js"></script>' in html, html
    assert '<script src="/reference.js"></script>' in html, html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "index.html loads something from elsewhere"

    conf = deployment.get("/reference.js")
    assert conf.status_code == 200 and "javascript" in conf.headers.get("Content-Type", ""), conf.headers
    assert '"/openapi.json"' in conf.text and "withDefaultFonts: false" in conf.text

    assert BUNDLE.is_file(), f"{BUNDLE} missing: run deploy/scalar/vendor (tests/run does)"
    js = deployment.get("/vendor/scalar/api-reference.js")
    assert js.status_code == 200, js.status_code
    assert "javascript" in js.headers.get("Content-Type", ""), js.headers
    assert js.content == BUNDLE.read_bytes()

    # A missing static file is the web server's 404, as the API's envelope (test_web_errors.py).
    assert_error(deployment.get("/no-such-page.html"), 404, "not_found")


def test_spec_checker_catches_a_lie(deployment, stack):
    """The suite's check is live (the document is loaded) and flags what openapi.json does not say.
    (A private checker with the same document: these made-up responses stay out of the tally.)"""
    d = deployment
    r = d.get("/v1/health")
    assert r.status_code == 200
    assert SPEC.spec is not None, "the spec check has no document"
    checker = SpecChecker()
    checker.load(SPEC.spec)

    def check(method, path, status, body, headers=None):
        h = {"Content-Type": "application/json", "X-Request-Id": "t1", **(headers or {})}
        return checker.check(method, d.url + path, status, h, body if isinstance(body, bytes) else json.dumps(body).encode())

    # Real objects as the app sends them pass; the same with one lie each do not.
    r = d.request("POST", "/v1/teams/acme/api-keys", auth=stack.credentials("owner"),
                  json={"name": f"spec check {uuid.uuid4().hex[:8]}", "permission": "write_all"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    calling = d.get("/v1/key", headers={"X-API-Key": key}).json()
    cust = d.request("POST", "/v1/customers", headers={"X-API-Key": key}, json={"name": "Spec check"}).json()
    assert check("GET", "/v1/key", 200, calling) == []
    assert check("GET", f"/v1/customers/{cust['id']}", 200, cust) == []
    assert check("GET", "/v1/health", 200, {"status": "ok"}) == []
    lies = {
        "not a date-time": ("GET", "/v1/key", 200, {**calling, "key": {**calling["key"], "created_at": "yesterday"}}),
        "a field the schema does not have": ("GET", f"/v1/customers/{cust['id']}", 200, {**cust, "team_id": "acme"}),
        "wrong type": ("GET", "/v1/health", 200, {"status": 5}),
        "undeclared status, not an Error": ("GET", "/v1/health", 418, {"status": "ok"}),
        "undocumented method succeeding": ("PUT", "/v1/health", 200, {}),
        "extra field in an error": ("GET", "/v1/nope", 404,
                                    {"error": {"code": "not_found", "message": "x", "request_id": "t1", "stack": "y"}}),
        "unknown error code": ("GET", "/v1/key", 401, {"error": {"code": "oops", "message": "x", "request_id": "t1"}}),
        "a body where none is declared": ("DELETE", f"/v1/customers/{cust['id']}", 204, {"deleted": True}),
        "not JSON": ("GET", "/v1/health", 200, b"ok"),
    }
    for what, (method, path, status, body) in lies.items():
        assert check(method, path, status, body), f"the spec check let this through ({what}): {method} {path} {status}"
    assert any("date-time" in p for p in check(*lies["not a date-time"])), "formats are not checked"
    # A bad header value is caught too (Retry-After is an integer).
    bad = check("GET", "/v1/health", 503, {"status": "unavailable"}, {"Retry-After": "soon"})
    assert any("Retry-After" in p for p in bad), bad
    # The web server's own pages and test-only routes are not the application's answers.
    html = {"Content-Type": "text/html"}
    assert checker.check("GET", d.url + "/v1/me", 401, html, b"<html>401</html>") == []
    assert check("GET", "/v1/_test/hello", 200, b"hello") == []


# ---------------------------------------------------------------------------------------------
# the reference in Chromium (one lighttpd and one Apache deployment)


def _in_own_thread(fn, timeout=180):
    """Runs fn() in a new thread (its own sync Playwright) and returns its result or raises its error."""
    out = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            out["error"] = e
    t = threading.Thread(target=run, name="reference-browser", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"the browser did not finish within {timeout}s")
    if "error" in out:
        raise out["error"]
    return out.get("result")


def test_reference_in_chromium(deployment, stack):
    d = deployment
    if d.name not in BROWSER_DEPLOYMENTS:
        pytest.skip(f"{d.name}: the reference is tested in the browser through "
                    f"{', '.join(BROWSER_DEPLOYMENTS)} only (static files do not depend on the process model)")
    if sync_playwright is None:
        if os.environ.get("CI"):
            raise AssertionError("pip package playwright missing (tests/run installs it)")
        pytest.skip("pip package playwright not installed (tests/run installs it)")
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            raise AssertionError(f"{CHROMIUM} not found: tests/run must apt-get install chromium")
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    assert BUNDLE.is_file(), f"{BUNDLE} missing: run deploy/scalar/vendor (tests/run does)"
    server = urlsplit(d.url).netloc

    # A key of team acme and one customer for "Test Request" to find.
    r = d.request("POST", "/v1/teams/acme/api-keys", auth=stack.credentials("owner"),
                  json={"name": f"reference {uuid.uuid4().hex[:8]}", "permission": "write_all"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    customer = f"Reference test {uuid.uuid4().hex[:10]}"
    r = d.request("POST", "/v1/customers", headers={"X-API-Key": key}, json={"name": customer})
    assert r.status_code == 201, r.text

    def browse():
        seen, sockets, console, errors, app_responses = [], [], [], [], []
        out = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                ctx = browser.new_context(base_url=d.url, viewport={"width": 1280, "height": 900}, locale="en-US")
                ctx.set_default_timeout(20000)
                ctx.on("request", lambda q: seen.append((q.method, q.url, q.headers.get("x-api-key"))))
                page = ctx.new_page()
                page.on("websocket", lambda ws: sockets.append(ws.url))
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("response", lambda resp: app_responses.append(resp)
                        if re.match(r"^/(v1/|openapi\.json)", urlsplit(resp.url).path) else None)

                page.goto("/", wait_until="load")
                page.get_by_text("Looped API", exact=True).first.wait_for()
                # The sidebar lists every resource: open the groups (apps) that start closed.
                for group in ("projects", "time"):
                    page.get_by_role("button", name=f"Open Group - {group}", exact=True).click()
                side = page.locator("[data-sidebar-id]")
                out["sidebar"] = {res: side.get_by_text(res, exact=True).count() for res in RESOURCES}
                # The Authentication panel offers the API-key header, preselected.
                out["text"] = page.inner_text("body")
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{d.name}-reference.png"))

                # Ready to use: type the key once, "Test Request" on GET /v1/customers, Send.
                page.get_by_label("Value").fill(key)
                page.get_by_role("button", name="Open Group - customers", exact=True).click()
                page.get_by_role("link", name="List customers").first.click()
                page.get_by_role("button", name=re.compile(r"^Test Request\s*\(get \/v1\/customers\)")).first.click()
                with page.expect_response(lambda resp: urlsplit(resp.url).path == "/v1/customers") as sent:
                    page.get_by_role("button", name=re.compile(r"^Send Request")).first.click()
                out["sent"] = (sent.value.status, sent.value.request.headers.get("x-api-key"), sent.value.text())
                page.get_by_text(customer).first.wait_for()
                page.screenshot(path=str(SHOTS / f"{d.name}-reference-test-request.png"))
                page.wait_for_load_state("networkidle")
                out["checked"] = [(q.request.method, q.url, q.status, q.headers, q.body()) for q in app_responses]
            finally:
                browser.close()
        out.update(seen=seen, sockets=sockets, console=console, errors=errors)
        return out

    res = _in_own_thread(browse)

    urls = [u for _, u, _ in res["seen"]] + res["sockets"]
    outside = [u for u in urls if not u.startswith(("data:", "blob:", "about:")) and urlsplit(u).netloc != server]
    assert not outside, f"the reference fetched from outside {server}: {outside}"
    paths = [urlsplit(u).path for u in urls]
    for path in ("/", "/vendor/scalar/api-reference.js", "/reference.js", "/openapi.json"):
        assert path in paths, (path, urls)
    # index.html's policy refuses other origins: an attempt would show up as a violation here.
    refused = [m for m in res["console"] if "Content Security Policy" in m or "Refused to" in m]
    assert not refused, f"the page tried to load something its policy refuses: {refused}"
    assert not res["errors"], f"script errors on the page: {res['errors']}"
    assert not [m for m in res["console"] if m.startswith("error:")], res["console"]

    missing = [name for name, n in res["sidebar"].items() if not n]
    assert not missing, f"the sidebar does not list {missing}: {res['sidebar']}"
    assert re.search(r"Authentication\s+Selected Auth Type: ApiKey[\s\S]{0,300}?Name\s*:\s*X-API-Key",
                     res["text"]), "the Authentication panel does not offer the X-API-Key header:\n" + res["text"][:2000]

    status, sent_key, body = res["sent"]
    assert sent_key == key, "Test Request did not send the key typed into the Authentication panel"
    assert status == 200, body[:300]
    assert customer in body, body[:300]

    # What the browser got from the application tells the truth too.
    assert res["checked"], "the browser got nothing from the application"
    for method, url, st, headers, rbody in res["checked"]:
        problems = SPEC.check(method, url, st, headers, rbody)
        assert not problems, problems
    # The key went nowhere but this server.
    assert all(urlsplit(u).netloc == server for _, u, k in res["seen"] if k), res["seen"]
