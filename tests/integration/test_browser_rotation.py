"""Issue 14 on the Settings → API Keys page: Rotate Key with a grace period, the links between a
rotated key and its successor, the expiry banner and the rows' "Expires in N days" (api.md §6.3,
§6.4), keyboard only and axe-clean.

The deployments (one lighttpd and one Apache), the `pages` fixture and the helpers are
test_browser.py's, imported from there; the browser is conftest.py's, shared with it. The banner counts every key of a team, so its tests use a team of their own
(`lab`) where the test knows every key; the rest runs in acme like test_browser.py.
"""

import datetime as dt
import re
import uuid

import pytest

from looped_test.procs import wait_until
from test_browser import (KEY_RE, PHONE, api_key, axe_check, deployment, expect, key_self,  # noqa: F401
                          open_menu_item, pages, people, row, search, shot, wait_ready)

LAB_TEAM = "rotation-lab"
LAB_OWNER = "lab-owner"
HOUR = 3600


def iso_in(seconds):
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(ts):
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def now():
    return dt.datetime.now(dt.timezone.utc).timestamp()


def days_note(expires_at):
    """The note the page must show: whole local calendar days, as the page counts them."""
    n = (dt.datetime.fromtimestamp(parse(expires_at)).date() - dt.date.today()).days
    return "Expires today" if n <= 0 else "Expires in 1 day" if n == 1 else f"Expires in {n} days"


def new_key(d, stack, team="acme", user="owner", **body):
    body.setdefault("name", f"Rotation {uuid.uuid4().hex[:8]}")
    body.setdefault("permission", "read_all")
    r = people(d, stack, user).post(d.url + f"/v1/teams/{team}/api-keys", json=body, timeout=15)
    assert r.status_code == 201, r.text
    return r.json()


def key_row(page, key_id):
    return page.locator(f'#keys-body tr[data-key-id="{key_id}"]')


def fact(page, label):
    return page.locator("#details-facts dt", has_text=re.compile(f"^{label}$")).locator("xpath=following-sibling::dd[1]")


def rotated_to_header(hint):
    return hint.replace("\u2026", "...")


@pytest.fixture(scope="module")
def lab(stack):
    """The owner of a team of their own (made once per session)."""
    return stack.add_web_user(LAB_OWNER, [(LAB_TEAM, "OWNER")], teams={LAB_TEAM: "Rotation Lab"})


def empty_lab(d, stack):
    s = people(d, stack, LAB_OWNER)
    while True:
        r = s.get(d.url + f"/v1/teams/{LAB_TEAM}/api-keys?limit=100", timeout=15)
        assert r.status_code == 200, r.text
        if not r.json()["data"]:
            return
        for k in r.json()["data"]:
            assert s.delete(d.url + f"/v1/teams/{LAB_TEAM}/api-keys/{k['id']}", timeout=15).status_code == 204


def open_settled(pages, user="owner", **kw):
    """The page, once its requests (the list and the banner's) have all been answered."""
    page = pages.open(user, **kw)
    page.wait_for_load_state("networkidle")
    return page


# One rotation per deployment: the links test opens the keys the menu test made.
ROTATED = {}


# ---------------------------------------------------------------------------------------------


def test_rotate_from_menu_shows_new_key_once(pages, deployment, stack):
    d = deployment
    old = new_key(d, stack, expires_at=iso_in(90 * 86400))
    assert key_self(d, old["key"]).status_code == 200
    page = pages.open()
    search(page, old["name"])
    open_menu_item(page, old["name"], "Rotate Key")

    dialog = page.locator("#rotate-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name=f"Rotate “{old['name']}”")).to_be_visible()
    expect(dialog).to_contain_text(old["hint"])
    choices = dialog.get_by_role("group", name="Keep the old key working for")
    labels = ["Immediately", "1 hour", "24 hours (default)", "7 days", "30 days", "Number of hours"]
    expect(choices.get_by_role("radio")).to_have_count(len(labels))
    for label in labels:
        expect(choices.get_by_role("radio", name=label, exact=True)).to_be_visible()
    default = choices.get_by_role("radio", name="24 hours (default)", exact=True)
    expect(default).to_be_checked()
    expect(default).to_be_focused()
    expect(dialog.get_by_label("Hours (0 to 720)")).to_be_hidden()
    choices.get_by_role("radio", name="7 days", exact=True).check()
    expect(dialog.locator("#rotate-until")).to_contain_text("The old key works until")
    shot(page, d, "rotate-dialog")

    with page.expect_response(lambda r: r.url.endswith(f"/api-keys/{old['id']}/rotate")) as resp:
        dialog.get_by_role("button", name="Rotate Key", exact=True).click()
    assert resp.value.status == 201, resp.value.text()
    assert resp.value.request.post_data_json == {"grace_period_hours": 168}
    new = resp.value.json()
    assert new["rotated_from"] == old["id"] and new["name"] == old["name"]
    t_rotated = now()

    # The creation's one-time screen, with the new key and until when the old one works.
    secret = page.locator("#secret-dialog")
    expect(dialog).to_be_hidden()
    expect(secret).to_be_visible()
    expect(secret).to_contain_text("only time the key is shown")
    raw = page.locator("#secret-value").inner_text().strip()
    assert KEY_RE.match(raw) and raw == new["key"] and raw != old["key"]
    expect(page.locator("#secret-name")).to_have_text(old["name"])
    note = page.locator("#secret-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"The old key {old['hint']} keeps working until")
    stored_old = api_key(d, stack, old["id"])
    assert abs(parse(stored_old["expires_at"]) - (t_rotated + 168 * HOUR)) < 120, stored_old
    expect(note.locator("time")).to_have_attribute("datetime", stored_old["expires_at"])
    assert page.locator(f"text={raw}").count() == 1  # shown in one place only
    shot(page, d, "rotate-copy-screen")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#secret-copied")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == raw
    page.keyboard.press("Escape")
    expect(secret).to_be_visible()
    expect(key_row(page, new["id"])).to_have_count(1)  # the table has refreshed meanwhile
    page.get_by_role("button", name="I have copied it, close").click()
    expect(secret).to_be_hidden()
    expect(page.locator("#secret-value")).to_have_text("")
    expect(page.locator("#secret-note")).to_be_hidden()
    assert raw not in page.content(), "the new key stays in the page after its screen was closed"
    expect(key_row(page, new["id"]).locator(".menu-btn")).to_be_focused()

    # Both rows: the old one says until when it works; the new one is a plain active key.
    old_row, new_row = key_row(page, old["id"]), key_row(page, new["id"])
    expect(old_row.locator(".badge")).to_have_text("Active")
    expect(old_row.locator(".rotated-note")).to_have_text(re.compile(r"^Rotated — works until \S"))
    expect(old_row.locator(".rotated-note time")).to_have_attribute("datetime", stored_old["expires_at"])
    expect(new_row.locator(".badge")).to_have_text("Active")
    expect(new_row.locator(".rotated-note")).to_have_count(0)
    expect(new_row).to_contain_text(new["hint"])
    # A key already rotated has no Rotate item; its successor has one.
    old_row.locator(".menu-btn").click()
    expect(page.get_by_role("menuitem", name="Rotate Key")).to_have_count(0)
    page.keyboard.press("Escape")
    new_row.locator(".menu-btn").click()
    expect(page.get_by_role("menuitem", name="Rotate Key")).to_be_visible()
    page.keyboard.press("Escape")
    page.reload()
    wait_ready(page)
    search(page, old["name"])
    expect(key_row(page, old["id"]).locator(".rotated-note")).to_have_text(re.compile(r"^Rotated — works until"))

    # The new key works; the old one too, saying which key replaces it.
    r = key_self(d, raw)
    assert r.status_code == 200 and r.json()["key"]["id"] == new["id"], r.text
    assert "Looped-Key-Rotated-To" not in r.headers
    wait_until(lambda: key_self(d, old["key"]).headers.get("Looped-Key-Rotated-To") == rotated_to_header(new["hint"]),
               5, "the old key's answers to carry Looped-Key-Rotated-To", interval=0.3)
    assert key_self(d, old["key"]).status_code == 200
    ROTATED[d.name] = {"old": old, "new": new}


def test_details_link_the_old_and_new_keys(pages, deployment):
    d = deployment
    if d.name not in ROTATED:
        pytest.skip("the rotation test did not rotate its key")
    old, new = ROTATED[d.name]["old"], ROTATED[d.name]["new"]
    page = pages.open()
    search(page, old["name"])
    key_row(page, old["id"]).locator(".menu-btn").click()
    page.get_by_role("menuitem", name="View Details").click()
    details = page.locator("#details-dialog")
    expect(fact(page, "ID")).to_have_text(old["id"])
    expect(fact(page, "Expires")).to_contain_text("the end of its grace period")
    expect(fact(page, "Rotated from")).to_have_count(0)
    to_new = fact(page, "Rotated to").get_by_role("button", name=f"{new['name']} ({new['hint']})", exact=True)
    expect(to_new).to_be_visible()
    axe_check(page, "details of a rotated key")
    to_new.click()

    expect(details).to_be_visible()
    expect(fact(page, "ID")).to_have_text(new["id"])
    expect(details.locator("#details-title")).to_be_focused()
    expect(fact(page, "Rotated to")).to_have_count(0)
    to_old = fact(page, "Rotated from").get_by_role("button", name=f"{old['name']} ({old['hint']})", exact=True)
    expect(to_old).to_be_visible()
    shot(page, d, "details-rotated-from")
    to_old.focus()
    page.keyboard.press("Enter")
    expect(fact(page, "ID")).to_have_text(old["id"])
    expect(fact(page, "Rotated to")).to_contain_text(new["hint"])
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    expect(key_row(page, old["id"]).locator(".menu-btn")).to_be_focused()


def test_keyboard_only_rotation(pages, deployment, stack):
    d = deployment
    old = new_key(d, stack)
    page = pages.open()
    search(page, old["name"])
    btn = page.get_by_role("button", name=f"Actions for {old['name']}", exact=True)
    btn.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem", name="View Details")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Rotate Key")).to_be_focused()
    page.keyboard.press("Enter")

    dialog = page.locator("#rotate-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("radio", name="24 hours (default)")).to_be_focused()
    for label in ("7 days", "30 days", "Number of hours"):  # arrows move the choice
        page.keyboard.press("ArrowDown")
        expect(dialog.get_by_role("radio", name=label, exact=True)).to_be_focused()
        expect(dialog.get_by_role("radio", name=label, exact=True)).to_be_checked()
    hours = dialog.get_by_label("Hours (0 to 720)")
    expect(hours).to_be_visible()
    page.keyboard.press("Tab")
    expect(hours).to_be_focused()
    page.keyboard.type("36")
    expect(dialog.locator("#rotate-until")).to_contain_text("The old key works until")

    # Tab stays in the dialog (the browser's own stop aside) and comes round again.
    seen = []
    for _ in range(8):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("() => [document.activeElement === document.body || !document.activeElement,"
                                  " Boolean(document.activeElement && document.activeElement.closest('#rotate-dialog')),"
                                  " document.activeElement ? document.activeElement.id || document.activeElement.textContent.trim() : '']"))
    outside = [x for x in seen if not x[0] and not x[1]]
    assert not outside, f"Tab left the dialog: {seen}"
    assert "rotate-submit" in [x[2] for x in seen], seen
    hours.focus()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Rotate Key", exact=True)).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/rotate")) as resp:
        page.keyboard.press("Enter")
    assert resp.value.status == 201, resp.value.text()
    assert resp.value.request.post_data_json == {"grace_period_hours": 36}
    new = resp.value.json()
    t_rotated = now()

    secret = page.locator("#secret-dialog")
    expect(secret).to_be_visible()
    expect(page.get_by_role("button", name="Copy", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#secret-copied")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == new["key"]
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="I have copied it, close")).to_be_focused()
    expect(key_row(page, new["id"])).to_have_count(1)
    page.keyboard.press("Enter")
    expect(secret).to_be_hidden()
    expect(key_row(page, new["id"]).locator(".menu-btn")).to_be_focused()
    assert abs(parse(api_key(d, stack, old["id"])["expires_at"]) - (t_rotated + 36 * HOUR)) < 120

    # Cancel by keyboard: nothing is sent and the focus goes back to the row's button.
    new_btn = key_row(page, new["id"]).locator(".menu-btn")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/rotate") else None)
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="View Details")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(new_btn).to_be_focused()
    assert sent == []


def test_rotate_dialog_errors_and_axe(pages, deployment, stack):
    d = deployment
    k = new_key(d, stack)
    page = pages.open()
    search(page, k["name"])
    open_menu_item(page, k["name"], "Rotate Key")
    dialog = page.locator("#rotate-dialog")
    expect(dialog).to_be_visible()
    axe_check(page, "rotate dialog")
    sent = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/rotate") else None)

    # Not a whole number: said by the page, nothing sent.
    dialog.get_by_role("radio", name="Number of hours", exact=True).check()
    hours = dialog.get_by_label("Hours (0 to 720)")
    error = dialog.locator("#rotate-hours-error")
    assert "rotate-hours-error" in hours.get_attribute("aria-describedby").split()
    hours.fill("1.5")
    dialog.get_by_role("button", name="Rotate Key", exact=True).click()
    expect(error).to_have_text("Enter a whole number of hours from 0 to 720.")
    expect(hours).to_have_attribute("aria-invalid", "true")
    expect(hours).to_be_focused()
    assert sent == []
    hours.fill("2")  # typing clears it
    expect(error).to_be_hidden()
    expect(hours).not_to_have_attribute("aria-invalid", "true")

    # Out of range: the server's field-level message, next to the field.
    hours.fill("721")
    with page.expect_response(lambda r: r.url.endswith("/rotate")) as resp:
        dialog.get_by_role("button", name="Rotate Key", exact=True).click()
    assert resp.value.status == 400
    assert [x["field"] for x in resp.value.json()["error"]["details"]] == ["grace_period_hours"]
    expect(error).to_be_visible()
    expect(error).to_have_text("Grace period must be an integer from 0 to 720.")
    expect(hours).to_have_attribute("aria-invalid", "true")
    expect(hours).to_be_focused()
    expect(hours).to_have_value("721")
    expect(dialog.locator("#rotate-error")).to_have_text("Please correct the field marked below.")
    expect(page.locator("#secret-dialog")).to_be_hidden()
    shot(page, d, "rotate-dialog-error")
    axe_check(page, "rotate dialog with the server's field error")

    # Rotated meanwhile (elsewhere): the server's 409 in the dialog, and the table catches up.
    other = people(d, stack).post(d.url + f"/v1/teams/acme/api-keys/{k['id']}/rotate", json={}, timeout=15)
    assert other.status_code == 201, other.text
    dialog.get_by_role("radio", name="1 hour", exact=True).check()
    with page.expect_response(lambda r: r.url.endswith("/rotate")) as resp:
        dialog.get_by_role("button", name="Rotate Key", exact=True).click()
    assert resp.value.status == 409
    banner = dialog.locator("#rotate-error")
    expect(banner).to_contain_text("already rotated")
    expect(banner).to_be_focused()
    expect(error).to_be_hidden()
    expect(key_row(page, k["id"]).locator(".rotated-note")).to_have_text(re.compile("^Rotated — works until"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(key_row(page, k["id"]).locator(".menu-btn")).to_be_focused()

    # Immediately: the old key is revoked at once and its row says it was rotated.
    fresh = new_key(d, stack)
    search(page, fresh["name"])
    open_menu_item(page, fresh["name"], "Rotate Key")
    dialog.get_by_role("radio", name="Immediately", exact=True).check()
    expect(dialog.locator("#rotate-until")).to_have_text("The old key stops working as soon as the new one is made.")
    with page.expect_response(lambda r: r.url.endswith("/rotate")) as resp:
        dialog.get_by_role("button", name="Rotate Key", exact=True).click()
    assert resp.value.status == 201 and resp.value.request.post_data_json == {"grace_period_hours": 0}
    expect(page.locator("#secret-note")).to_have_text(f"The old key {fresh['hint']} was revoked: it no longer works.")
    page.get_by_role("button", name="I have copied it, close").click()
    expect(key_row(page, fresh["id"]).locator(".badge")).to_have_text("Revoked")
    expect(key_row(page, fresh["id"]).locator(".rotated-note")).to_have_text("Rotated")
    wait_until(lambda: key_self(d, fresh["key"]).status_code == 401, 3, "the key rotated at once to be refused")


def test_expiry_banner_and_row_notes(pages, deployment, stack, lab):
    d = deployment
    empty_lab(d, stack)
    page = open_settled(pages, lab)
    banner = page.locator("#expiry-banner")
    expect(page.locator("#keys-empty")).to_be_visible()
    expect(banner).to_be_hidden()

    tag = uuid.uuid4().hex[:6]
    mk = lambda name, **kw: new_key(d, stack, team=LAB_TEAM, user=lab, name=f"{name} {tag}", **kw)
    two = mk("Two days", expires_at=iso_in(2 * 86400))
    five = mk("Five days", expires_at=iso_in(5 * 86400 - HOUR))
    mk("Next month", expires_at=iso_in(30 * 86400))
    mk("Never")
    revoked = mk("Revoked soon", expires_at=iso_in(3 * 86400))
    s = people(d, stack, lab)
    assert s.post(d.url + f"/v1/teams/{LAB_TEAM}/api-keys/{revoked['id']}/revoke", timeout=15).status_code == 200
    rotated = mk("Rotated", expires_at=iso_in(20 * 86400))
    r = s.post(d.url + f"/v1/teams/{LAB_TEAM}/api-keys/{rotated['id']}/rotate", json={"grace_period_hours": 48},
               timeout=15)
    assert r.status_code == 201, r.text
    successor = r.json()

    page.reload()
    page.wait_for_load_state("networkidle")
    # Two keys: the one in its grace period says so on its row instead, the revoked one is done.
    expect(banner).to_be_visible()
    expect(page.locator("#expiry-count")).to_have_text("2 keys expire within 7 days.")
    region = page.get_by_role("status").filter(has=banner)
    expect(region).to_have_attribute("aria-live", "polite")
    expect(key_row(page, two["id"]).locator(".expiry-note")).to_have_text("Expires in 2 days")
    assert days_note(two["expires_at"]) == "Expires in 2 days"
    expect(key_row(page, five["id"]).locator(".expiry-note")).to_have_text(days_note(five["expires_at"]))
    expect(page.locator("#keys-body .expiry-note")).to_have_count(2)
    expect(key_row(page, rotated["id"]).locator(".rotated-note")).to_have_text(re.compile("^Rotated — works until"))
    expect(key_row(page, successor["id"]).locator(".expiry-note")).to_have_count(0)
    shot(page, d, "expiry-banner", full_page=True)
    axe_check(page, "table with the expiry banner")
    phone = open_settled(pages, lab, viewport=PHONE)
    expect(phone.locator("#expiry-count")).to_have_text("2 keys expire within 7 days.")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, d, "expiry-banner-375", full_page=True)
    axe_check(phone, "table with the expiry banner at 375 px")

    # The banner counts every page, not the 20 rows shown.
    for i in range(20):
        mk(f"Batch {i:02d}", expires_at=iso_in(3 * 86400))
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#keys-body tr")).to_have_count(20)
    expect(page.get_by_role("button", name="Load more")).to_be_visible()
    expect(page.locator("#expiry-count")).to_have_text("22 keys expire within 7 days.")
    # ... and follows the cursors: the same with the banner's pages made 5 keys long.
    paged = []

    def five_a_page(route):
        paged.append(route.request.url)
        route.continue_(url=route.request.url.replace("limit=100", "limit=5"))
    banner_url = re.compile(r".*/api-keys\?.*expiring_within_days=7.*")
    page.route(banner_url, five_a_page)
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#expiry-count")).to_have_text("22 keys expire within 7 days.")
    assert len(paged) == 5, paged  # 23 keys (the rotated one left out by the page) in pages of 5
    page.unroute(banner_url)

    # One left: singular; and deleting it from the page takes the banner away at once.
    empty_lab(d, stack)
    one = mk("Last one", expires_at=iso_in(2 * 86400))
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#expiry-count")).to_have_text("1 key expires within 7 days.")
    open_menu_item(page, one["name"], "Delete Key")
    page.locator("#confirm-dialog").get_by_role("button", name="Delete Key").click()
    expect(row(page, one["name"])).to_have_count(0)
    expect(banner).to_be_hidden()
    empty_lab(d, stack)
