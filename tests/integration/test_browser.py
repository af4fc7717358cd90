"""Issue 5's "Must show" list: the Settings → API Keys page in a real browser.

Playwright (pip `playwright`, pinned in tests/run) drives Debian's `chromium` (never
`playwright install`), headless, with the web server's Basic credentials. The page runs against
one lighttpd and one Apache deployment: the first of each that LOOPED_DEPLOYMENTS selects (by
default lighttpd-spawned and apache-fcgid); the other deployments are skipped, the page being
static files that do not depend on the process model. axe-core comes from npm
(tests/browser/package.json; `npm ci` there).

The browser is conftest.py's `browser` (one for the session: test_browser_rotation.py imports
this module's fixtures and helpers, and two Playwright sync sessions cannot run at once).
Within one deployment the tests run in file order: create → edit → revoke → delete share one key.
Screenshots go to var/test/screenshots/ (or $LOOPED_TEST_SCREENSHOTS): artifacts, not committed.

Environment:
    LOOPED_CHROMIUM            the browser (default /usr/bin/chromium)
    LOOPED_AXE                 axe.min.js (default tests/browser/node_modules/axe-core/axe.min.js)
    LOOPED_TEST_SCREENSHOTS    where screenshots are written
"""

import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path

import pytest
import requests
import urllib3

from looped_test.procs import wait_until
from looped_test.settings import ALL_DEPLOYMENTS, REPO
from looped_test.stack import running
from test_api_keys import fan_out

try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get("CI"):  # CI installs it (tests/run): a missing package is a failure there
        raise
    pytest.skip("pip package playwright not installed (tests/run installs it)", allow_module_level=True)

AXE = Path(os.environ.get("LOOPED_AXE", REPO / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"))
SHOTS = Path(os.environ.get("LOOPED_TEST_SCREENSHOTS", REPO / "var" / "test" / "screenshots"))
PAGE = "/settings/api-keys"
KEY_RE = re.compile(r"^looped_[0-9A-Za-z]{46}$")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def _browser_deployments():
    want = [n.strip() for n in os.environ.get("LOOPED_DEPLOYMENTS", "").split(",") if n.strip()]
    names = want or ALL_DEPLOYMENTS
    chosen = []
    for server in ("lighttpd", "apache"):
        first = next((n for n in names if n.startswith(server + "-")), None)
        if first:
            chosen.append(first)
    return chosen


BROWSER_DEPLOYMENTS = _browser_deployments()


@pytest.fixture(scope="module")
def deployment(request, stack):
    """conftest's deployment, started only for the deployments the browser runs against."""
    if request.param not in BROWSER_DEPLOYMENTS:
        pytest.skip(f"{request.param}: the page is tested through one lighttpd and one Apache "
                    f"deployment only ({', '.join(BROWSER_DEPLOYMENTS)}); static files do not "
                    "depend on the process model")
    with running(stack, request.param) as d:
        yield d


class Pages:
    """Opens the page as a given user; checks at the end that no script error happened."""

    def __init__(self, browser, d, stack):
        self.browser, self.d, self.stack = browser, d, stack
        self.contexts, self.errors = [], []

    def open(self, user="owner", viewport=DESKTOP, query="", ready=True):
        name, pw = self.stack.credentials(user)
        ctx = self.browser.new_context(
            base_url=self.d.url, viewport=viewport, locale="en-US",
            http_credentials={"username": name, "password": pw},
            permissions=["clipboard-read", "clipboard-write"])
        ctx.set_default_timeout(15000)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(PAGE + query)
        if ready:
            wait_ready(page)
        return page

    def close(self):
        for c in self.contexts:
            c.close()


@pytest.fixture
def pages(browser, deployment, stack):
    p = Pages(browser, deployment, stack)
    yield p
    p.close()
    assert not p.errors, f"script errors on the page: {p.errors}"


def wait_ready(page):
    """The page has asked /v1/me and shows either the keys or the not-allowed message."""
    expect(page.locator("#loading")).to_be_hidden()
    page.wait_for_function(
        "() => !document.querySelector('#keys').hidden && !document.querySelector('#keys').hasAttribute('aria-busy')"
        " || !document.querySelector('#not-allowed').hidden || !document.querySelector('#page-error').hidden")


def search(page, text):
    """Types into the name search and waits for the (debounced) list request to answer."""
    with page.expect_response(lambda r: "/api-keys?" in r.url and "q=" in r.url and r.request.method == "GET"):
        page.fill("#filter-q", text)
    page.wait_for_function("() => !document.querySelector('#keys').hasAttribute('aria-busy')")


def row(page, name):
    return page.locator("#keys-body tr").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def open_menu_item(page, name, item):
    page.get_by_role("button", name=f"Actions for {name}", exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def shot(page, d, what, full_page=False):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{d.name}-{what}.png"), full_page=full_page)


def axe_check(page, context):
    """axe-core on the page as it is now: no serious or critical violation."""
    assert AXE.is_file(), f"{AXE} missing: run `npm ci` in tests/browser"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"axe ({context}): " + json.dumps(
        [{"id": v["id"], "impact": v["impact"], "help": v["help"],
          "nodes": [n["target"] for n in v["nodes"]][:5]} for v in bad], indent=1)


def key_self(d, raw):
    return d.get("/v1/key", headers={"X-API-Key": raw})


def obeys_scopes(d, raw, allowed, denied):
    """The key reads `allowed` and is refused `denied` (403 insufficient_scope). Checked when the
    build has the resource endpoints (api.md §4); GET /v1/key shows the scopes in any case."""
    h = {"X-API-Key": raw}
    probe = d.get(f"/v1/{allowed}", headers=h)
    if probe.status_code == 404:
        return False  # no resource endpoints in this build yet
    assert probe.status_code == 200, probe.text
    for method, path in denied:
        r = d.request(method, f"/v1/{path}", headers=h, json={} if method == "POST" else None)
        assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope", (method, path, r.text)
    return True


def local_day(days):
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def people(d, stack, user="owner"):
    s = requests.Session()
    s.auth = stack.credentials(user)
    # The session outlives the web server's keep-alive idle time while the browser works: an
    # idempotent request that meets a connection the server has just closed is sent again on a
    # new one (urllib3's default methods: never POST or PATCH).
    s.mount("http://", requests.adapters.HTTPAdapter(
        max_retries=urllib3.util.Retry(total=1, connect=1, read=1, status=0, redirect=0)))
    return s


# One key per deployment travels through create → edit → revoke → delete.
FLOW = {}


# ---------------------------------------------------------------------------------------------


def test_member_sees_owners_and_admins_message(pages):
    asked = []
    page = pages.open("member", ready=False)
    page.on("request", lambda r: asked.append(r.url))
    wait_ready(page)
    expect(page.get_by_role("heading", name="Only owners and admins can manage API keys")).to_be_visible()
    expect(page.locator("#not-allowed-text")).to_contain_text("for owners and admins")
    expect(page.locator("#keys")).to_be_hidden()
    expect(page.locator("#keys-body tr")).to_have_count(0)
    expect(page.get_by_role("button", name="Create API Key")).to_be_hidden()
    page.reload()
    wait_ready(page)
    assert "/v1/me" in " ".join(asked), asked
    assert not [u for u in asked if "/v1/teams/" in u], f"the page asked for keys: {asked}"
    axe_check(page, "member")


def test_create_restricted_key_copy_and_use(pages, deployment, stack):
    d = deployment
    name = f"Zapier production {uuid.uuid4().hex[:8]}"
    page = pages.open()
    page.get_by_role("button", name="Create API Key").click()
    dialog = page.locator("#create-dialog")
    expect(dialog).to_be_visible()
    name_input = dialog.get_by_label("Name", exact=True)
    expect(name_input).to_be_focused()
    placeholder = name_input.get_attribute("placeholder")
    assert "Zapier production" in placeholder and "Reporting service" in placeholder
    for label in ("Read All", "Write All", "Restrict All"):
        expect(dialog.get_by_role("radio", name=label, exact=True)).to_be_visible()

    # Restrict All without a scope: said next to the scopes, nothing typed is lost.
    name_input.fill(name)
    dialog.get_by_role("radio", name="Restrict All", exact=True).check()
    scopes = dialog.get_by_role("group", name="Scopes", exact=True)
    expect(scopes).to_be_visible()
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(scopes.locator(".field-error")).to_contain_text("at least one resource")

    # A past expiry: the API's "must be in the future" appears next to the date field.
    customers = dialog.get_by_role("group", name="Customers", exact=True)
    customers.get_by_role("radio", name="Read", exact=True).check()
    expires = dialog.get_by_label("Expiration date")
    expires.fill(local_day(-1))
    with page.expect_response(lambda r: r.url.endswith("/api-keys") and r.request.method == "POST") as resp:
        dialog.get_by_role("button", name="Create", exact=True).click()
    assert resp.value.status == 400
    date_error = dialog.locator(f"#{expires.get_attribute('id')}-error")
    expect(date_error).to_have_text(re.compile("Expiration date must be in the future"))
    expect(expires).to_have_attribute("aria-invalid", "true")
    expect(name_input).to_have_value(name)
    expect(customers.get_by_role("radio", name="Read", exact=True)).to_be_checked()

    expires.fill(local_day(30))
    shot(page, d, "create-dialog")
    with page.expect_response(lambda r: r.url.endswith("/api-keys") and r.request.method == "POST") as resp:
        dialog.get_by_role("button", name="Create", exact=True).click()
    assert resp.value.status == 201
    body = resp.value.json()
    assert body["permission"] == "restricted" and body["scopes"] == ["customers:read"]
    assert body["expires_at"]

    # The copy screen.
    secret = page.locator("#secret-dialog")
    expect(secret).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(secret).to_contain_text("only time the key is shown")
    expect(secret).to_contain_text("cannot be shown again")
    raw = page.locator("#secret-value").inner_text().strip()
    assert KEY_RE.match(raw), raw
    assert raw == body["key"]
    shot(page, d, "copy-screen")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#secret-copied")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == raw
    page.keyboard.press("Escape")  # Escape must not lose the key by accident
    expect(secret).to_be_visible()
    page.get_by_role("button", name="I have copied it, close").click()
    expect(secret).to_be_hidden()
    expect(page.locator("#secret-value")).to_have_text("")
    expect(page.get_by_role("button", name="Create API Key")).to_be_focused()

    # The new row: never used yet.
    r = row(page, name)
    expect(r).to_have_count(1)
    expect(r.locator(".badge")).to_have_text("Active")
    expect(r).to_contain_text("Restrict All")
    expect(r).to_contain_text("Customers: read")
    expect(r).to_contain_text(body["hint"])
    expect(r.locator(".last-used")).to_have_text("Never")
    assert r.locator("td[data-label=Expires]").inner_text().strip() != "Never"
    FLOW[d.name] = {"name": name, "key": raw, "id": body["id"]}

    # The key works with X-API-Key, with exactly that scope.
    res = key_self(d, raw)
    assert res.status_code == 200, res.text
    me = res.json()["key"]
    assert res.json()["team"]["id"] == "acme"
    assert me["id"] == body["id"] and me["permission"] == "restricted"
    assert me["scopes"] == ["customers:read"]
    assert res.headers.get("Looped-Key-Expires-At") == body["expires_at"]
    obeys_scopes(d, raw, "customers", [("GET", "invoices"), ("POST", "customers")])

    # After use, "last used" is no longer "Never" (a relative time, the exact one on hover).
    def used():
        page.reload()
        wait_ready(page)
        search(page, name)
        cell = row(page, name).locator(".last-used")
        return cell.inner_text().strip() != "Never" and cell
    cell = wait_until(used, 15, "the row's last used to change from Never", interval=0.5)
    assert re.search(r"just now|ago", cell.inner_text()), cell.inner_text()
    assert cell.locator("time").get_attribute("title")
    assert cell.locator("time").get_attribute("datetime")

    page.fill("#filter-q", "")
    page.wait_for_function("() => !document.querySelector('#keys').hasAttribute('aria-busy')")
    shot(page, d, "table-new-key", full_page=True)
    phone = pages.open(viewport=PHONE)
    phone.get_by_role("button", name="Create API Key").click()
    phone.locator("#create-dialog").get_by_role("radio", name="Restrict All", exact=True).check()
    shot(phone, d, "create-dialog-375")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], \
        "the page scrolls sideways at 375 px"


def flow(d):
    if d.name not in FLOW:
        pytest.skip("the create test did not make its key")
    return FLOW[d.name]


def test_details_and_edit_name_and_scopes(pages, deployment):
    d = deployment
    f = flow(d)
    page = pages.open()
    search(page, f["name"])

    # Keyboard only: the row's ⋯ button opens its menu, arrows move, Enter picks.
    btn = page.get_by_role("button", name=f"Actions for {f['name']}", exact=True)
    assert btn.get_attribute("aria-haspopup") == "menu"
    btn.focus()
    page.keyboard.press("Enter")
    expect(btn).to_have_attribute("aria-expanded", "true")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem", name="View Details")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(btn).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="View Details")).to_be_focused()
    page.keyboard.press("End")
    expect(menu.get_by_role("menuitem", name="Delete Key")).to_be_focused()
    page.keyboard.press("Home")
    page.keyboard.press("Enter")

    details = page.locator("#details-dialog")
    expect(details).to_be_visible()
    expect(details.get_by_role("heading", name=f["name"])).to_be_visible()
    facts = details.locator("#details-facts")
    for text in (f["id"], "Restrict All", "customers:read", "owner"):
        expect(facts).to_contain_text(text)
    activity = details.locator("#activity")
    expect(activity).to_contain_text("GET /v1/key")
    expect(activity).to_contain_text("Created by owner")
    axe_check(page, "details dialog")

    details.get_by_role("button", name="Edit", exact=True).click()
    form = details.locator("#edit-form")
    expect(form).to_be_visible()
    new_name = f"Reporting service {uuid.uuid4().hex[:8]}"
    name_input = form.get_by_label("Name", exact=True)
    expect(name_input).to_have_value(f["name"])
    expect(form.get_by_role("group", name="Customers", exact=True).get_by_role("radio", name="Read", exact=True)).to_be_checked()
    name_input.fill(new_name)
    form.get_by_role("group", name="Customers", exact=True).get_by_role("radio", name="Write", exact=True).check()
    form.get_by_role("group", name="Invoices", exact=True).get_by_role("radio", name="Read", exact=True).check()

    # A failed save (a past date) keeps every change and says why next to the date.
    expires = form.get_by_label("Expiration date")
    expires.fill(local_day(-2))
    form.get_by_role("button", name="Save Changes").click()
    expect(form.locator(f"#{expires.get_attribute('id')}-error")).to_contain_text("must be in the future")
    expect(name_input).to_have_value(new_name)
    expect(form.get_by_role("group", name="Invoices", exact=True).get_by_role("radio", name="Read", exact=True)).to_be_checked()

    expires.fill(local_day(60))
    with page.expect_response(lambda r: r.request.method == "PATCH") as resp:
        form.get_by_role("button", name="Save Changes").click()
    assert resp.value.status == 200, resp.value.text()
    expect(form).to_be_hidden()
    expect(details.get_by_role("heading", name=new_name)).to_be_visible()
    expect(facts).to_contain_text("customers:write")
    expect(facts).to_contain_text("invoices:read")
    details.get_by_role("button", name="Close", exact=True).first.click()
    expect(details).to_be_hidden()

    r = row(page, new_name)
    expect(r).to_have_count(1)
    expect(r).to_contain_text("Customers: write")
    expect(r).to_contain_text("Invoices: read")
    expect(row(page, f["name"])).to_have_count(0)
    f["name"] = new_name

    # The same key value now carries the new scopes (key caches live at most 1 s).
    def new_scopes():
        res = key_self(d, f["key"])
        k = res.json().get("key", {}) if res.status_code == 200 else {}
        return k.get("scopes") == ["customers:write", "invoices:read"] and k.get("name") == new_name
    wait_until(new_scopes, 5, "GET /v1/key to report the new name and scopes", interval=0.3)
    obeys_scopes(d, f["key"], "invoices", [("GET", "products"), ("POST", "invoices")])


def test_revoke_flips_badge_and_key_gets_401(pages, deployment):
    d = deployment
    f = flow(d)
    page = pages.open()
    search(page, f["name"])
    open_menu_item(page, f["name"], "Revoke Key")
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f["name"])
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/revoke")) as rv:
        confirm.get_by_role("button", name="Revoke Key").click()
    revoker = rv.value.headers.get("x-worker")
    assert rv.value.status == 200 and revoker, (rv.value.status, rv.value.headers)

    # The worker that revoked refuses the key at once, every other one within 1 s (api.md
    # §3.3). Which worker answers is the web server's choice (mod_fcgid hands one client's
    # requests in a row to the process it used last, which need not be the revoker): ask in
    # bursts of 8 at once until the revoking one has answered; every answer it gave is a 401.
    answers = []

    def revoker_answered():
        answers.extend((worker, status) for status, worker, _ in fan_out(d, 8, {"X-API-Key": f["key"]}))
        return any(worker == revoker for worker, _ in answers)
    wait_until(revoker_answered, 5, f"an answer from the revoking worker {revoker}", interval=0)
    assert all(status == 401 for worker, status in answers if worker == revoker), answers

    expect(confirm).to_be_hidden()
    expect(row(page, f["name"]).locator(".badge")).to_have_text("Revoked")
    expect(page.get_by_role("button", name=f"Actions for {f['name']}", exact=True)).to_be_focused()
    wait_until(lambda: all(key_self(d, f["key"]).status_code == 401 for _ in range(6)), 3,
               "every worker to refuse the revoked key")
    assert key_self(d, f["key"]).json()["error"]["code"] == "revoked_api_key"

    # A revoked key has no Revoke item and cannot be edited.
    page.get_by_role("button", name=f"Actions for {f['name']}", exact=True).click()
    expect(page.get_by_role("menuitem", name="Revoke Key")).to_have_count(0)
    page.get_by_role("menuitem", name="View Details").click()
    details = page.locator("#details-dialog")
    expect(details.locator("#details-facts .badge")).to_have_text("Revoked")
    expect(details.get_by_role("button", name="Edit", exact=True)).to_be_hidden()
    expect(details).to_contain_text("cannot be edited")
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()

    page.reload()
    wait_ready(page)
    search(page, f["name"])
    expect(row(page, f["name"]).locator(".badge")).to_have_text("Revoked")


def test_delete_removes_the_row(pages, deployment):
    d = deployment
    f = flow(d)
    page = pages.open()
    search(page, f["name"])
    expect(row(page, f["name"])).to_have_count(1)
    open_menu_item(page, f["name"], "Delete Key")
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_contain_text(f["name"])
    with page.expect_response(lambda r: r.request.method == "DELETE") as resp:
        confirm.get_by_role("button", name="Delete Key").click()
    assert resp.value.status == 204
    expect(confirm).to_be_hidden()
    expect(row(page, f["name"])).to_have_count(0)
    page.reload()
    wait_ready(page)
    search(page, f["name"])
    expect(row(page, f["name"])).to_have_count(0)
    expect(page.locator("#keys-empty")).to_contain_text("No keys match")
    assert key_self(d, f["key"]).status_code == 401


def test_expired_key_gets_new_date_and_is_active(pages, deployment, stack):
    d = deployment
    name = f"One-off migration {uuid.uuid4().hex[:8]}"
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s = people(d, stack)
    res = s.post(d.url + "/v1/teams/acme/api-keys", json={"name": name, "permission": "read_all", "expires_at": soon},
                 timeout=15)
    assert res.status_code == 201, res.text
    raw = res.json()["key"]
    wait_until(lambda: key_self(d, raw).status_code == 401, 10, "the key to expire", interval=0.5)

    page = pages.open()
    search(page, name)
    expect(row(page, name).locator(".badge")).to_have_text("Expired")
    page.select_option("#filter-status", "expired")
    page.wait_for_function("() => !document.querySelector('#keys').hasAttribute('aria-busy')")
    expect(row(page, name)).to_have_count(1)

    open_menu_item(page, name, "View Details")
    details = page.locator("#details-dialog")
    details.get_by_role("button", name="Edit", exact=True).click()
    form = details.locator("#edit-form")
    expect(form).to_contain_text("expired")
    form.get_by_label("Expiration date").fill(local_day(1))
    form.get_by_role("button", name="Save Changes").click()
    expect(form).to_be_hidden()
    expect(details.locator("#details-facts .badge")).to_have_text("Active")
    details.get_by_role("button", name="Close", exact=True).first.click()
    expect(row(page, name).locator(".badge")).to_have_text("Active")
    wait_until(lambda: key_self(d, raw).status_code == 200, 5, "the reactivated key to work", interval=0.3)
    s.delete(d.url + f"/v1/teams/acme/api-keys/{res.json()['id']}", timeout=15)


def test_search_status_filter_and_load_more(pages, deployment, stack):
    d = deployment
    tag = uuid.uuid4().hex[:8]
    s = people(d, stack)
    ids = []
    for i in range(23):  # more than one page of 20
        r = s.post(d.url + "/v1/teams/acme/api-keys", json={"name": f"Batch {tag} {i:02d}", "permission": "read_all"},
                   timeout=15)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    s.post(d.url + f"/v1/teams/acme/api-keys/{ids[0]}/revoke", timeout=15)

    page = pages.open()
    search(page, f"Batch {tag}")
    rows = page.locator("#keys-body tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text(f"Batch {tag} 22")  # newest first
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    more.click()
    expect(rows).to_have_count(23)
    expect(more).to_be_hidden()
    expect(page.locator("#keys-count")).to_have_text("Showing 23 keys.")

    page.select_option("#filter-status", "revoked")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Batch {tag} 00")
    page.select_option("#filter-status", "active")
    expect(rows).to_have_count(20)
    for key_id in ids:
        s.delete(d.url + f"/v1/teams/acme/api-keys/{key_id}", timeout=15)


@pytest.fixture(scope="module")
def multi_team_user(stack):
    """A user who is ADMIN of acme and MEMBER of globex (made once; the web server reads htpasswd per request)."""
    return stack.add_web_user("multi", [("acme", "ADMIN"), ("globex", "MEMBER")])


def test_team_switcher(pages, deployment, multi_team_user):
    page = pages.open(multi_team_user)
    team = page.get_by_label("Team")
    expect(team).to_be_visible()
    expect(team.locator("option")).to_have_count(2)
    expect(team).to_have_value("acme")
    expect(page.locator("#keys")).to_be_visible()
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    team.select_option("globex")
    expect(page.get_by_role("heading", name="Only owners and admins can manage API keys")).to_be_visible()
    expect(page.locator("#not-allowed-text")).to_contain_text("Globex Corporation")
    expect(page.locator("#keys")).to_be_hidden()
    assert "team=globex" in page.url
    page.reload()
    wait_ready(page)
    expect(page.get_by_label("Team")).to_have_value("globex")
    expect(page.locator("#keys")).to_be_hidden()
    assert not [u for u in asked if "/globex/api-keys" in u], asked
    page.get_by_label("Team").select_option("acme")
    expect(page.locator("#keys")).to_be_visible()


def test_accessibility_no_serious_violations(pages, deployment):
    page = pages.open()
    axe_check(page, "table")
    page.get_by_role("button", name="Create API Key").click()
    page.locator("#create-dialog").get_by_role("radio", name="Restrict All", exact=True).check()
    axe_check(page, "create dialog")
    page.locator("#create-dialog").get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#create-dialog .field-error").first).to_be_visible()
    axe_check(page, "create dialog with errors")
    page.locator("#create-dialog").get_by_role("button", name="Cancel").click()

    name = f"Axe check {uuid.uuid4().hex[:8]}"
    page.get_by_role("button", name="Create API Key").click()
    page.locator("#create-dialog").get_by_label("Name", exact=True).fill(name)
    page.locator("#create-dialog").get_by_role("radio", name="Read All", exact=True).check()
    page.locator("#create-dialog").get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#secret-dialog")).to_be_visible()
    axe_check(page, "copy screen")
    page.locator("#secret-done").click()

    phone = pages.open(viewport=PHONE)
    axe_check(phone, "table at 375 px")
    search(phone, name)
    open_menu_item(phone, name, "Delete Key")
    phone.locator("#confirm-dialog").get_by_role("button", name="Delete Key").click()
    expect(row(phone, name)).to_have_count(0)


def test_table_with_every_status_screenshots(pages, deployment, stack):
    """The table with Active, Expired and Revoked keys, at desktop and phone widths (artifacts)."""
    d = deployment
    tag = uuid.uuid4().hex[:6]
    s = people(d, stack)
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = []
    for name, body in [
            (f"Old export {tag}", {"permission": "read_all", "expires_at": soon}),
            (f"Reporting service {tag}", {"permission": "read_all", "expires_at": later}),
            (f"Leaked laptop key {tag}", {"permission": "write_all"}),
            (f"Zapier production {tag}", {"permission": "restricted",
                                          "scopes": ["customers:read", "invoices:write", "time_entries:read"]})]:
        r = s.post(d.url + "/v1/teams/acme/api-keys", json={"name": name, **body}, timeout=15)
        assert r.status_code == 201, r.text
        made.append(r.json())
    s.post(d.url + f"/v1/teams/acme/api-keys/{made[2]['id']}/revoke", timeout=15)
    assert key_self(d, made[3]["key"]).status_code == 200
    wait_until(lambda: key_self(d, made[0]["key"]).status_code == 401, 10, "the key to expire", interval=0.5)

    for viewport, what in ((DESKTOP, "table-desktop"), (PHONE, "table-375")):
        page = pages.open(viewport=viewport)
        search(page, tag)
        expect(page.locator("#keys-body tr")).to_have_count(4)
        for k, status in zip(made, ("Expired", "Active", "Revoked", "Active")):
            expect(row(page, k["name"]).locator(".badge")).to_have_text(status)
        wait_until(lambda: row(page, made[3]["name"]).locator(".last-used").inner_text() != "Never" or
                   (page.reload(), wait_ready(page), search(page, tag)) and False,
                   10, "last used of the used key", interval=0.5)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
        shot(page, d, what, full_page=True)
        axe_check(page, f"{what} with every status")
    for k in made:
        s.delete(d.url + f"/v1/teams/acme/api-keys/{k['id']}", timeout=15)


# --- rate limit and allowed IPs (api.md §6.1, §6.2) ------------------------------------------


def key_posts(page):
    """Records every create request the page sends (to prove the page refused before sending)."""
    sent = []
    page.on("request", lambda r: sent.append(r) if r.method == "POST" and r.url.endswith("/api-keys") else None)
    return sent


def api_key(d, stack, key_id):
    r = people(d, stack).get(d.url + f"/v1/teams/acme/api-keys/{key_id}", timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def test_create_with_rate_limit_and_allowed_ips(pages, deployment, stack):
    d = deployment
    name = f"Office integration {uuid.uuid4().hex[:8]}"
    page = pages.open()
    page.get_by_role("button", name="Create API Key").click()
    dialog = page.locator("#create-dialog")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_role("radio", name="Read All", exact=True).check()

    # Keyboard only: Space ticks "Limit requests", which reveals the inputs; Tab moves through them.
    limit = dialog.get_by_role("checkbox", name="Limit requests")
    requests_in = dialog.get_by_label("Maximum requests")
    expect(limit).not_to_be_checked()
    expect(requests_in).to_be_hidden()
    limit.focus()
    page.keyboard.press("Space")
    expect(limit).to_be_checked()
    expect(requests_in).to_be_visible()
    expect(requests_in).to_be_focused()
    page.keyboard.type("100")
    page.keyboard.press("Tab")
    per = dialog.get_by_label("Per", exact=True)
    expect(per).to_be_focused()
    expect(per).to_have_value("1")
    page.keyboard.press("Tab")
    unit = dialog.get_by_label("Time unit")
    expect(unit).to_be_focused()
    expect(unit).to_have_value("60")  # minute by default
    page.keyboard.press("Tab")
    ips = dialog.get_by_label("Allowed IP addresses")
    expect(ips).to_be_focused()
    # Two blocks, written un-normalised, and the first one again under another spelling.
    page.keyboard.type("203.0.113.7/24")
    page.keyboard.press("Enter")
    page.keyboard.type("2001:DB8::1/32, 203.0.113.99/24")
    page.keyboard.press("Tab")  # leaving the field checks it: nothing to say
    expect(dialog.locator(".field-error:visible")).to_have_count(0)
    expect(ips).not_to_have_attribute("aria-invalid", "true")
    shot(page, d, "create-dialog-limits")
    axe_check(page, "create dialog with a rate limit and allowed IPs")

    with page.expect_response(lambda r: r.url.endswith("/api-keys") and r.request.method == "POST") as resp:
        dialog.get_by_role("button", name="Create", exact=True).click()
    assert resp.value.status == 201, resp.value.text()
    sent = resp.value.request.post_data_json
    assert sent["rate_limit"] == {"requests": 100, "per_seconds": 60}, sent
    assert sent["allowed_ips"] == ["203.0.113.7/24", "2001:DB8::1/32", "203.0.113.99/24"], sent
    created = resp.value.json()
    page.get_by_role("button", name="I have copied it, close").click()

    # The API holds exactly the normalised values.
    k = api_key(d, stack, created["id"])
    assert k["rate_limit"] == {"requests": 100, "per_seconds": 60}, k
    assert k["allowed_ips"] == ["203.0.113.0/24", "2001:db8::/32"], k
    # ... and enforces them: this test runs from 127.0.0.1, outside the list.
    res = key_self(d, created["key"])
    assert res.status_code == 403 and res.json()["error"]["code"] == "ip_not_allowed", res.text

    # The row's markers: words, with the details in a title and for screen readers.
    search(page, name)
    r = row(page, name)
    limited = r.locator(".tag", has_text="Limited")
    restricted = r.locator(".tag", has_text="IP-restricted")
    expect(limited).to_be_visible()
    expect(restricted).to_be_visible()
    expect(limited).to_have_attribute("title", "Rate limit: 100 requests per minute")
    expect(restricted).to_have_attribute("title", "Allowed from 203.0.113.0/24, 2001:db8::/32")
    expect(limited.locator(".visually-hidden")).to_have_text("(Rate limit: 100 requests per minute)")
    shot(page, d, "table-limits")

    open_menu_item(page, name, "View Details")
    facts = page.locator("#details-facts")
    expect(facts.locator("dt", has_text="Rate limit").locator("xpath=following-sibling::dd[1]")).to_have_text("100 requests per minute")
    ips_dd = facts.locator("dt", has_text="Allowed IP addresses").locator("xpath=following-sibling::dd[1]")
    expect(ips_dd.locator("li")).to_have_text(["203.0.113.0/24", "2001:db8::/32"])
    axe_check(page, "details with a rate limit and allowed IPs")
    people(d, stack).delete(d.url + f"/v1/teams/acme/api-keys/{created['id']}", timeout=15)

    # At 375 px the revealed inputs wrap inside the dialog: nothing scrolls sideways.
    phone = pages.open(viewport=PHONE)
    phone.get_by_role("button", name="Create API Key").click()
    phone_dialog = phone.locator("#create-dialog")
    phone_dialog.get_by_role("checkbox", name="Limit requests").check()
    expect(phone_dialog.get_by_label("Time unit")).to_be_visible()
    phone_dialog.get_by_label("Allowed IP addresses").fill("2001:db8:ffff:ffff:ffff:ffff:ffff:0/112")
    assert phone_dialog.evaluate("el => el.scrollWidth <= el.clientWidth"), "the dialog scrolls sideways at 375 px"
    shot(phone, d, "create-dialog-limits-375")


def test_allowed_ips_inline_validation_and_server_refusal(pages, deployment):
    page = pages.open()
    sent = key_posts(page)
    page.get_by_role("button", name="Create API Key").click()
    dialog = page.locator("#create-dialog")
    name_input = dialog.get_by_label("Name", exact=True)
    name = f"Validation check {uuid.uuid4().hex[:8]}"
    name_input.fill(name)
    dialog.get_by_role("radio", name="Read All", exact=True).check()
    ips = dialog.get_by_label("Allowed IP addresses")
    error = dialog.locator(f"#{ips.get_attribute('id')}-error")
    assert error.get_attribute("id") in ips.get_attribute("aria-describedby").split()

    # Inline: leaving the field with a wrong entry says so at once.
    ips.fill("example.com")
    page.keyboard.press("Tab")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Line 1: “example.com” is not an IPv4 or IPv6 address or CIDR block.")
    expect(ips).to_have_attribute("aria-invalid", "true")
    ips.fill("192.0.2.1")  # typing clears the message
    expect(error).to_be_hidden()
    expect(ips).not_to_have_attribute("aria-invalid", "true")

    # On submit: each wrong line named, nothing sent, focus on the field with the first one selected.
    ips.fill("10.0.0.0/33\nexample.com\n192.0.2.1")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(error.locator(".error-line")).to_have_text([
        "Line 1: “10.0.0.0/33” has a prefix length out of range (IPv4: 0 to 32).",
        "Line 2: “example.com” is not an IPv4 or IPv6 address or CIDR block.",
    ])
    expect(ips).to_have_attribute("aria-invalid", "true")
    expect(ips).to_be_focused()
    assert page.evaluate("() => document.activeElement.value.slice(document.activeElement.selectionStart,"
                         " document.activeElement.selectionEnd)") == "10.0.0.0/33"
    expect(dialog.locator("#create-error")).to_contain_text("correct the fields")
    axe_check(page, "create dialog with allowed-IP errors")

    # A rate limit out of range is refused in the page too.
    dialog.get_by_role("checkbox", name="Limit requests").check()
    dialog.get_by_label("Maximum requests").fill("0")
    dialog.get_by_label("Per", exact=True).fill("2")
    dialog.get_by_label("Time unit").select_option("86400")
    ips.fill("")
    dialog.get_by_role("button", name="Create", exact=True).click()
    req_error = dialog.locator(f"#{dialog.get_by_label('Maximum requests').get_attribute('id')}-error")
    per_error = dialog.locator(f"#{dialog.get_by_label('Per', exact=True).get_attribute('id')}-error")
    expect(req_error).to_contain_text("from 1 to 1,000,000")
    expect(per_error).to_contain_text("at most 1 day")
    expect(dialog.get_by_label("Maximum requests")).to_be_focused()
    expect(dialog.get_by_label("Maximum requests")).to_have_attribute("aria-invalid", "true")
    axe_check(page, "create dialog with rate-limit errors")
    assert sent == [], [r.post_data for r in sent]
    dialog.get_by_role("checkbox", name="Limit requests").uncheck()

    # The server has the last word: an IPv4-mapped block's prefix counts the 96 mapping bits,
    # which the page's shape check lets through; the server's allowed_ips[1] lands on line 2.
    ips.fill("192.0.2.1\n::ffff:10.0.0.0/64")
    with page.expect_response(lambda r: r.url.endswith("/api-keys") and r.request.method == "POST") as resp:
        dialog.get_by_role("button", name="Create", exact=True).click()
    assert resp.value.status == 400, resp.value.text()
    body = resp.value.json()["error"]
    assert body["code"] == "validation_failed"
    assert [x["field"] for x in body["details"]] == ["allowed_ips[1]"], body
    expect(error.locator(".error-line")).to_have_text(["Line 2: “::ffff:10.0.0.0/64” has a prefix length out of range."])
    expect(ips).to_have_attribute("aria-invalid", "true")
    expect(ips).to_be_focused()
    expect(name_input).to_have_value(name)
    expect(ips).to_have_value("192.0.2.1\n::ffff:10.0.0.0/64")
    axe_check(page, "create dialog with the server's allowed-IP error")
    assert len(sent) == 1
    dialog.get_by_role("button", name="Cancel").click()
    search(page, name)
    expect(row(page, name)).to_have_count(0)


def test_edit_clears_rate_limit_and_allowed_ips(pages, deployment, stack):
    d = deployment
    name = f"Nightly export {uuid.uuid4().hex[:8]}"
    s = people(d, stack)
    res = s.post(d.url + "/v1/teams/acme/api-keys", timeout=15, json={
        "name": name, "permission": "read_all",
        "rate_limit": {"requests": 1000, "per_seconds": 7200}, "allowed_ips": ["198.51.100.0/24", "2001:db8::1"]})
    assert res.status_code == 201, res.text
    key_id = res.json()["id"]

    page = pages.open()
    search(page, name)
    r = row(page, name)
    expect(r.locator(".tag")).to_have_text([re.compile("^Limited"), re.compile("^IP-restricted")])
    open_menu_item(page, name, "View Details")
    details = page.locator("#details-dialog")
    facts = details.locator("#details-facts")
    expect(facts.locator("dt", has_text="Rate limit").locator("xpath=following-sibling::dd[1]")).to_have_text("1,000 requests per 2 hours")
    details.get_by_role("button", name="Edit", exact=True).click()
    form = details.locator("#edit-form")
    limit = form.get_by_role("checkbox", name="Limit requests")
    ips = form.get_by_label("Allowed IP addresses")

    # Pre-filled with the current values.
    expect(limit).to_be_checked()
    expect(form.get_by_label("Maximum requests")).to_have_value("1000")
    expect(form.get_by_label("Per", exact=True)).to_have_value("2")
    expect(form.get_by_label("Time unit")).to_have_value("3600")
    expect(form.get_by_label("Time unit").locator("option:checked")).to_have_text("hours")
    expect(ips).to_have_value("198.51.100.0/24\n2001:db8::1")
    axe_check(page, "edit dialog with a rate limit and allowed IPs")

    # Clearing both: unticked is null, an empty text area is [].
    limit.focus()
    page.keyboard.press("Space")
    expect(limit).not_to_be_checked()
    expect(form.get_by_label("Maximum requests")).to_be_hidden()
    ips.fill("")
    with page.expect_response(lambda x: x.request.method == "PATCH") as resp:
        form.get_by_role("button", name="Save Changes").click()
    assert resp.value.status == 200, resp.value.text()
    assert resp.value.request.post_data_json == {"rate_limit": None, "allowed_ips": []}
    expect(form).to_be_hidden()

    k = api_key(d, stack, key_id)
    assert k["rate_limit"] is None and k["allowed_ips"] == [], k
    expect(facts.locator("dt", has_text="Rate limit").locator("xpath=following-sibling::dd[1]")).to_have_text("None")
    expect(facts.locator("dt", has_text="Allowed IP addresses").locator("xpath=following-sibling::dd[1]")).to_have_text("Anywhere")
    details.get_by_role("button", name="Close", exact=True).first.click()
    expect(row(page, name).locator(".tag")).to_have_count(0)

    # Saving again without a change sends nothing.
    open_menu_item(page, name, "View Details")
    details.get_by_role("button", name="Edit", exact=True).click()
    expect(limit).not_to_be_checked()
    expect(ips).to_have_value("")
    patches = []
    page.on("request", lambda x: patches.append(x) if x.method == "PATCH" else None)
    form.get_by_role("button", name="Save Changes").click()
    expect(form).to_be_hidden()
    expect(page.locator("#page-status")).to_have_text("Nothing was changed.")
    assert patches == []
    s.delete(d.url + f"/v1/teams/acme/api-keys/{key_id}", timeout=15)
