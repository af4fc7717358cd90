"""What each key does, on the Settings → API Keys page: View Details' chart of the last 7 days
(api.md §6.8), the "Not used for 4 months" note and its filter, and a key revoked by a leak report
(§6.5) — keyboard-reachable and axe-clean.

The deployments (one lighttpd and one Apache), the `pages` fixture and the helpers are
test_browser.py's; the browser is conftest.py's."""

import datetime as dt
import random
import re
import uuid

from looped_test.procs import wait_until
from test_browser import (axe_check, deployment, expect, key_self, pages, people, search, shot,  # noqa: F401
                          wait_ready)
from test_browser_rotation import fact, key_row, new_key

DAY = dt.timedelta(days=1)


def open_details(page, key_id):
    key_row(page, key_id).locator(".menu-btn").click()
    page.get_by_role("menuitem", name="View Details").click()
    expect(page.locator("#details-dialog")).to_be_visible()


def requests_of(db, key_id):
    return db.audit.count_documents({"key_id": key_id, "action": "api.request"})


def test_details_chart_of_the_last_7_days(pages, deployment, stack, mongo):
    d = deployment
    _, db = mongo
    k = new_key(d, stack, permission="restricted", scopes=["invoices:read"])
    hdr = {"X-API-Key": k["key"]}
    for _ in range(30):
        assert d.get("/v1/invoices", headers=hdr).status_code == 200
    for _ in range(5):
        assert d.get("/v1/customers", headers=hdr).status_code == 403
    for _ in range(2):
        assert d.get("/v1/invoices/inv_doesnotexist", headers=hdr).status_code == 404
    wait_until(lambda: requests_of(db, k["id"]) == 37, 5, "the 37 audit records")
    # Two days ago (UTC): a 429 and two 500s, as the audit writer stores them.
    two_days_ago = dt.datetime.now(dt.timezone.utc) - 2 * DAY
    for status in (429, 500, 500):
        db.audit.insert_one({"at": two_days_ago, "team_id": "acme", "key_id": k["id"], "key_name": k["name"],
                             "actor": {"type": "api_key", "id": k["id"], "name": k["name"]},
                             "action": "api.request", "method": "GET", "path": "/v1/invoices", "status": status,
                             "ip": "127.0.0.1", "user_agent": "test", "request_id": uuid.uuid4().hex})

    page = pages.open()
    search(page, k["name"])
    with page.expect_response(lambda r: f"/api-keys/{k['id']}/usage?" in r.url) as resp:
        open_details(page, k["id"])
    assert resp.value.status == 200, resp.value.text()
    usage = page.locator("#usage")
    # At a glance: the total and the 4xx / 429 / 5xx shares, in words.
    expect(usage.locator(".usage-summary")).to_have_text("40 requests in 7 days: 18% 4xx, 3% 429, 5% 5xx")
    expect(usage.locator("svg.usage-chart")).to_have_attribute("aria-hidden", "true")
    expect(usage.locator("svg .seg")).to_have_count(4)  # today 2xx and 4xx; two days ago 429 and 5xx
    # For screen readers: a table with every day and class.
    table = page.get_by_role("table", name="Requests per day (UTC), the last 7 days")
    expect(table).to_have_count(1)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(7)
    cells = lambda i: [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]  # noqa: E731
    assert cells(6) == ["37", "30", "0", "7", "0", "0"], cells(6)  # today: requests, 2xx, 3xx, 4xx, 429, 5xx
    assert cells(4) == ["3", "0", "0", "0", "1", "2"], cells(4)
    assert all(cells(i) == ["0"] * 6 for i in (0, 1, 2, 3, 5))
    days = [dt.date.fromisoformat(x["start"][:10]) for x in resp.value.json()["data"]]
    assert days == [dt.datetime.now(dt.timezone.utc).date() - (6 - i) * DAY for i in range(7)]
    shot(page, d, "details-usage")
    axe_check(page, "details with the usage chart")


def test_a_key_without_requests_says_so(pages, deployment, stack):
    d = deployment
    k = new_key(d, stack)
    page = pages.open()
    search(page, k["name"])
    open_details(page, k["id"])
    expect(page.locator("#usage .usage-summary")).to_have_text("No requests in the last 7 days.")
    expect(page.locator("#usage svg .seg")).to_have_count(0)


def test_stale_keys_note_and_filter(pages, deployment, stack, mongo):
    d = deployment
    _, db = mongo
    tok = uuid.uuid4().hex[:8]
    stale = new_key(d, stack, name=f"Stale {tok} old")
    used = new_key(d, stack, name=f"Stale {tok} used")
    fresh = new_key(d, stack, name=f"Stale {tok} new")
    long_ago = dt.datetime.now(dt.timezone.utc) - 130 * DAY
    for k in (stale, used):
        db.api_keys.update_one({"_id": k["id"]}, {"$set": {"created_at": long_ago}})
    assert key_self(d, used["key"]).status_code == 200
    wait_until(lambda: people(d, stack).get(d.url + f"/v1/teams/acme/api-keys/{used['id']}", timeout=15)
               .json()["last_used_at"], 5, "the first use written")

    page = pages.open()
    search(page, tok)
    expect(key_row(page, stale["id"]).locator(".stale-note")).to_have_text("Not used for 4 months")
    for k in (used, fresh):
        expect(key_row(page, k["id"]).locator(".stale-note")).to_have_count(0)
    # The filter: a toggle button, reachable and pressed from the keyboard.
    chip = page.get_by_role("button", name="Not used in 90 days")
    expect(chip).to_have_attribute("aria-pressed", "false")
    chip.focus()
    with page.expect_response(lambda r: "unused_for_days=90" in r.url and f"q={tok}" in r.url) as resp:
        page.keyboard.press("Enter")
    assert resp.value.status == 200
    expect(chip).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => !document.querySelector('#keys').hasAttribute('aria-busy')")
    expect(page.locator("#keys-body tr")).to_have_count(1)
    expect(key_row(page, stale["id"])).to_have_count(1)
    shot(page, d, "stale-filter")
    axe_check(page, "the stale-key filter on")
    with page.expect_response(lambda r: "/api-keys?" in r.url and "unused_for_days" not in r.url):
        page.keyboard.press("Space")
    expect(chip).to_have_attribute("aria-pressed", "false")
    page.wait_for_function("() => !document.querySelector('#keys').hasAttribute('aria-busy')")
    expect(page.locator("#keys-body tr")).to_have_count(3)


def test_key_revoked_by_a_leak_report(pages, deployment, stack):
    d = deployment
    k = new_key(d, stack)
    source = f"https://github.com/example/leaky/blob/main/{uuid.uuid4().hex[:6]}.env"
    ip = "2001:db8:%x::%x" % (random.getrandbits(16), random.getrandbits(16) | 1)
    r = d.session.post(d.url + "/v1/key-leaks", json={"keys": [k["key"]], "source": source},
                       headers={"X-Forwarded-For": ip}, timeout=15)
    assert r.status_code == 202, r.text
    wait_until(lambda: key_self(d, k["key"]).status_code == 401, 2, "the reported key refused")

    page = pages.open()
    wait_ready(page)
    search(page, k["name"])
    expect(key_row(page, k["id"]).locator(".badge")).to_have_text("Revoked — reported leaked")
    open_details(page, k["id"])
    expect(fact(page, "Status")).to_have_text("Revoked — reported leaked")
    expect(fact(page, "Revoked")).to_contain_text("reported leaked")
    expect(fact(page, "Found at")).to_have_text(source)
    expect(fact(page, "Found at").get_by_role("link")).to_have_count(0)  # the reporter's URL, not a link
    expect(page.locator("#activity")).to_contain_text("Revoked — reported leaked")
    shot(page, d, "details-leaked")
    axe_check(page, "details of a key reported leaked")
