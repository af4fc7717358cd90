"""Issue 4's "Must show" list for the /v1 resources (api.md §1 and §4), against every deployment.

Integrations send X-API-Key; the keys are made through the management API by the team's owner
(Basic auth, as looped_test/ seeds: `owner` of acme, `outsider` of globex). Team A is acme, team B
is globex. Every deployment shares one store, so each test makes its own objects and looks them
up by their ids or by filters on values unique to the test, never by "the whole list is X".

Covered: the permission matrix (read_all, write_all, restricted invoices:read / invoices:write) on
every resource; team isolation (by id, in lists, through filters, cursors and references);
invalid bodies and query strings; references; invoices.total, merge patch and defaults; equality
filters; pagination over 250 objects (one deployment only, to keep the suite quick); Location and
204-then-404. Not here: "the spec tells the truth" and the Scalar/Chromium checks.
"""

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
from looped_test.asserts import assert_error

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"

RESOURCES = ["customers", "products", "invoices", "projects", "tasks", "time_entries"]
# The deployment that runs the 250-object pagination test (the others skip it).
PAGINATION_DEPLOYMENT = "lighttpd-pool"

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _properties(resource):
    return set(json.loads((SCHEMAS / f"{resource}.json").read_text())["properties"])


PROPERTIES = {r: _properties(r) for r in RESOURCES}


# ---------------------------------------------------------------------------------------------
# helpers


def token():
    return uuid.uuid4().hex[:12]


def assert_details(err, field):
    """`details` is a list of {field, message} and one of them names `field`."""
    details = err.get("details")
    assert isinstance(details, list) and details, err
    for d in details:
        assert isinstance(d.get("field"), str) and isinstance(d.get("message"), str) and d["message"], err
    fields = [d["field"] for d in details]
    assert field in fields, f"expected a detail on {field!r}, got {fields}"


def assert_invalid(r, field):
    err = assert_error(r, 400, "validation_failed")
    assert_details(err, field)
    return err


def assert_scope(r, required):
    err = assert_error(r, 403, "insufficient_scope")
    assert err.get("required") == required, err
    return err


def assert_object(resource, obj):
    """A resource object: the schema's fields only (no _id, team_id…), with id and timestamps."""
    assert isinstance(obj, dict), obj
    assert set(obj) <= PROPERTIES[resource], set(obj) - PROPERTIES[resource]
    assert isinstance(obj.get("id"), str) and obj["id"], obj
    assert RFC3339_Z.match(obj.get("created_at", "")), obj
    assert RFC3339_Z.match(obj.get("updated_at", "")), obj


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Api:
    """Requests with one API key against one deployment."""

    def __init__(self, d, key):
        self.d, self.key = d, key

    def __call__(self, method, path, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        headers["X-API-Key"] = self.key
        return self.d.request(method, path, headers=headers, **kw)

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self("POST", path, json=body, **kw) if body is not None else self("POST", path, **kw)

    def patch(self, path, body=None, **kw):
        return self("PATCH", path, json=body, **kw) if body is not None else self("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self("DELETE", path, **kw)

    def create(self, resource, body):
        r = self.post(f"/v1/{resource}", body)
        assert r.status_code == 201, f"create {resource} {body}: {r.status_code} {r.text[:400]}"
        obj = r.json()
        assert_object(resource, obj)
        return obj

    def fetch(self, resource, oid):
        r = self.get(f"/v1/{resource}/{oid}")
        assert r.status_code == 200, f"get {resource}/{oid}: {r.status_code} {r.text[:300]}"
        return r.json()

    def page(self, resource, query=""):
        r = self.get(f"/v1/{resource}{query}")
        assert r.status_code == 200, f"list {resource}{query}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert set(body) == {"data", "has_more", "next_cursor"}, body
        assert isinstance(body["data"], list) and isinstance(body["has_more"], bool), body
        for obj in body["data"]:
            assert_object(resource, obj)
        if body["has_more"]:
            assert isinstance(body["next_cursor"], str) and body["next_cursor"], body
        else:
            assert body["next_cursor"] is None, body
        return body

    def list_all(self, resource, query="", max_pages=30):
        """Every object of the list (limit 100 pages, following next_cursor)."""
        out, cursor = [], None
        base = query + ("&" if query else "?") + "limit=100"
        for _ in range(max_pages):
            page = self.page(resource, base + (f"&cursor={quote(cursor)}" if cursor else ""))
            out += page["data"]
            if not page["has_more"]:
                return out
            cursor = page["next_cursor"]
        raise AssertionError(f"{resource}{query}: more than {max_pages} pages")


def new_key(d, stack, user, team, permission, scopes=None):
    body = {"name": f"resources {permission} {token()}", "permission": permission}
    if scopes is not None:
        body["scopes"] = scopes
    r = d.request("POST", f"/v1/teams/{team}/api-keys", auth=stack.credentials(user), json=body)
    assert r.status_code == 201, f"create key {body}: {r.status_code} {r.text[:300]}"
    return r.json()["key"]


def body_for(resource, refs, t=None):
    """A valid create body for `resource` whose references are the ids in refs[resource]."""
    t = t or token()
    if resource == "customers":
        return {"name": f"Customer {t}", "email": f"billing+{t}@example.com", "phone": "+33 1 23 45 67 89",
                "address": {"line1": "1 Rue de Rivoli", "line2": "2e étage", "city": "Paris",
                            "postal_code": "75001", "country": "FR"},
                "tax_id": f"FR{t}"}
    if resource == "products":
        return {"name": f"Product {t}", "sku": f"SKU-{t}", "unit_price": 1999, "currency": "EUR"}
    if resource == "invoices":
        return {"customer_id": refs["customers"], "number": f"INV-{t}", "currency": "EUR",
                "issue_date": "2026-01-31", "due_date": "2026-02-28",
                "lines": [{"description": "Consulting", "quantity": 2, "unit_price": 1500,
                           "product_id": refs["products"]},
                          {"description": "Travel", "quantity": 1, "unit_price": 250}],
                "notes": "Thank you"}
    if resource == "projects":
        return {"name": f"Project {t}", "description": "Website relaunch", "customer_id": refs["customers"]}
    if resource == "tasks":
        return {"project_id": refs["projects"], "title": f"Task {t}", "assignee": "alice",
                "due_date": "2026-03-15"}
    if resource == "time_entries":
        return {"project_id": refs["projects"], "task_id": refs["tasks"], "date": "2026-02-28",
                "minutes": 90, "note": f"Entry {t}"}
    raise AssertionError(resource)


# A valid patch per resource and the field it changes.
PATCH_FOR = {"customers": {"phone": "+1 555 0100"}, "products": {"unit_price": 2500},
             "invoices": {"status": "open"}, "projects": {"status": "archived"},
             "tasks": {"status": "doing"}, "time_entries": {"minutes": 45}}


# ---------------------------------------------------------------------------------------------
# fixtures (one set per deployment)


@pytest.fixture(scope="module")
def keys(deployment, stack):
    d = deployment
    raw = {
        "read_all": new_key(d, stack, "owner", "acme", "read_all"),
        "write_all": new_key(d, stack, "owner", "acme", "write_all"),
        "inv_read": new_key(d, stack, "owner", "acme", "restricted", ["invoices:read"]),
        "inv_write": new_key(d, stack, "owner", "acme", "restricted", ["invoices:write"]),
        "globex": new_key(d, stack, "outsider", "globex", "write_all"),
    }
    return {name: Api(d, k) for name, k in raw.items()}


def make_world(api):
    """One object of every resource, references included; returns {resource: object}."""
    refs, objs = {}, {}
    for res in ["customers", "products", "projects", "tasks", "invoices", "time_entries"]:
        objs[res] = api.create(res, body_for(res, refs))
        refs[res] = objs[res]["id"]
    return objs


@pytest.fixture(scope="module")
def acme(keys):
    return make_world(keys["write_all"])


@pytest.fixture(scope="module")
def globex(keys):
    return make_world(keys["globex"])


def refs_of(world):
    return {res: obj["id"] for res, obj in world.items()}


# ---------------------------------------------------------------------------------------------
# the permission matrix


@pytest.mark.parametrize("resource", RESOURCES)
def test_read_all_reads_and_cannot_write(keys, acme, resource):
    api, obj = keys["read_all"], acme[resource]
    assert any(o["id"] == obj["id"] for o in api.list_all(resource, f"?{filter_for(resource, obj)}"))
    assert api.fetch(resource, obj["id"]) == obj
    assert_scope(api.post(f"/v1/{resource}", body_for(resource, refs_of(acme))), f"{resource}:write")
    assert_scope(api.patch(f"/v1/{resource}/{obj['id']}", PATCH_FOR[resource]), f"{resource}:write")
    assert_scope(api.delete(f"/v1/{resource}/{obj['id']}"), f"{resource}:write")
    # the scope is checked before the body: an invalid body changes nothing
    assert_scope(api.post(f"/v1/{resource}", {"bogus": True}), f"{resource}:write")
    assert_scope(api.patch(f"/v1/{resource}/nonexistent", {"id": "x"}), f"{resource}:write")
    # nothing changed
    assert keys["write_all"].fetch(resource, obj["id"]) == obj


def filter_for(resource, obj):
    """An equality filter that selects `obj` among few others."""
    field = {"customers": "tax_id", "products": "sku", "invoices": "number", "projects": "customer_id",
             "tasks": "project_id", "time_entries": "task_id"}[resource]
    return f"{field}={quote(obj[field])}"


def crud(api, resource, refs):
    """Create (201 + Location), get, list, patch, delete (204), then 404: all with one key."""
    body = body_for(resource, refs)
    r = api.post(f"/v1/{resource}", body)
    assert r.status_code == 201, f"{r.status_code} {r.text[:400]}"
    obj = r.json()
    assert_object(resource, obj)
    for k, v in body.items():
        assert obj[k] == v, (k, obj)
    loc = r.headers.get("Location")
    assert loc, r.headers
    url = urljoin(api.d.url + "/", loc)
    assert url == f"{api.d.url}/v1/{resource}/{obj['id']}", loc
    got = api.get(url[len(api.d.url):])
    assert got.status_code == 200 and got.json() == obj, got.text[:300]
    assert any(o["id"] == obj["id"] for o in api.list_all(resource, f"?{filter_for(resource, obj)}"))

    r = api.patch(f"/v1/{resource}/{obj['id']}", PATCH_FOR[resource])
    assert r.status_code == 200, f"{r.status_code} {r.text[:400]}"
    patched = r.json()
    assert_object(resource, patched)
    assert patched == {**obj, **PATCH_FOR[resource], "updated_at": patched["updated_at"]}, patched
    assert ts(patched["updated_at"]) >= ts(obj["updated_at"])
    assert api.fetch(resource, obj["id"]) == patched

    r = api.delete(f"/v1/{resource}/{obj['id']}")
    assert r.status_code == 204, f"{r.status_code} {r.text[:300]}"
    assert r.content == b""
    assert_error(api.get(f"/v1/{resource}/{obj['id']}"), 404, "not_found")
    assert_error(api.patch(f"/v1/{resource}/{obj['id']}", PATCH_FOR[resource]), 404, "not_found")
    assert_error(api.delete(f"/v1/{resource}/{obj['id']}"), 404, "not_found")
    assert all(o["id"] != obj["id"] for o in api.list_all(resource, f"?{filter_for(resource, obj)}"))


@pytest.mark.parametrize("resource", RESOURCES)
def test_write_all_does_everything(keys, acme, resource):
    crud(keys["write_all"], resource, refs_of(acme))


@pytest.mark.parametrize("resource", RESOURCES)
def test_restricted_invoices_read(keys, acme, resource):
    api, obj = keys["inv_read"], acme[resource]
    path, item = f"/v1/{resource}", f"/v1/{resource}/{obj['id']}"
    if resource == "invoices":
        assert any(o["id"] == obj["id"] for o in api.page(resource)["data"] + api.list_all(
            resource, f"?{filter_for(resource, obj)}"))
        assert api.fetch(resource, obj["id"]) == obj
    else:
        assert_scope(api.get(path), f"{resource}:read")
        assert_scope(api.get(item), f"{resource}:read")
        assert_scope(api.get(f"{path}/nonexistent"), f"{resource}:read")
    assert_scope(api.post(path, body_for(resource, refs_of(acme))), f"{resource}:write")
    assert_scope(api.patch(item, PATCH_FOR[resource]), f"{resource}:write")
    assert_scope(api.delete(item), f"{resource}:write")
    assert keys["write_all"].fetch(resource, obj["id"]) == obj


@pytest.mark.parametrize("resource", RESOURCES)
def test_restricted_invoices_write(keys, acme, resource):
    api, obj = keys["inv_write"], acme[resource]
    if resource == "invoices":
        crud(api, resource, refs_of(acme))  # write implies read
        return
    path, item = f"/v1/{resource}", f"/v1/{resource}/{obj['id']}"
    assert_scope(api.get(path), f"{resource}:read")
    assert_scope(api.get(item), f"{resource}:read")
    assert_scope(api.post(path, body_for(resource, refs_of(acme))), f"{resource}:write")
    assert_scope(api.patch(item, PATCH_FOR[resource]), f"{resource}:write")
    assert_scope(api.delete(item), f"{resource}:write")
    assert keys["write_all"].fetch(resource, obj["id"]) == obj


# ---------------------------------------------------------------------------------------------
# team isolation


@pytest.mark.parametrize("resource", RESOURCES)
def test_other_team_objects_do_not_exist(keys, acme, globex, resource):
    a, b = keys["write_all"], keys["globex"]
    theirs, ours = globex[resource], acme[resource]
    item = f"/v1/{resource}/{theirs['id']}"
    assert_error(a.get(item), 404, "not_found")
    assert_error(a.patch(item, PATCH_FOR[resource]), 404, "not_found")
    assert_error(a.delete(item), 404, "not_found")
    assert_error(keys["read_all"].get(item), 404, "not_found")
    assert b.fetch(resource, theirs["id"]) == theirs  # unchanged, not deleted
    # and the other way round
    assert_error(b.get(f"/v1/{resource}/{ours['id']}"), 404, "not_found")
    assert_error(b.patch(f"/v1/{resource}/{ours['id']}", PATCH_FOR[resource]), 404, "not_found")
    assert_error(b.delete(f"/v1/{resource}/{ours['id']}"), 404, "not_found")
    assert a.fetch(resource, ours["id"]) == ours
    # absent from the whole list, and a filter on their values finds nothing
    ids = {o["id"] for o in a.list_all(resource)}
    assert ours["id"] in ids and theirs["id"] not in ids
    assert a.page(resource, f"?{filter_for(resource, theirs)}")["data"] == []
    assert [o["id"] for o in b.page(resource, f"?{filter_for(resource, theirs)}")["data"]] == [theirs["id"]]


def test_filters_cannot_escape_the_team(keys, acme, globex):
    a = keys["write_all"]
    assert a.page("invoices", f"?customer_id={globex['customers']['id']}")["data"] == []
    assert a.page("projects", f"?customer_id={globex['customers']['id']}")["data"] == []
    assert a.page("time_entries", f"?project_id={globex['projects']['id']}&billable=true")["data"] == []
    # a query operator in a filter value is a literal string, not an operator
    for value in ['{"$ne":null}', '{"$gt":""}', "$ne", ".*"]:
        assert a.page("customers", f"?name={quote(value)}")["data"] == []
    # operators in the parameter name are unknown parameters
    for name in ["name[$ne]", "name.$ne", "$where", "team_id", "_id", "id"]:
        assert_error(a.get(f"/v1/customers?{quote(name)}=x"), 400, "unknown_parameter")


def test_cursors_cannot_escape_the_team(keys, acme, globex):
    a, b = keys["write_all"], keys["globex"]
    for _ in range(2):
        b.create("customers", body_for("customers", {}))
    globex_ids = {o["id"] for o in b.list_all("customers")}
    acme_ids = {o["id"] for o in a.list_all("customers")}
    assert not globex_ids & acme_ids
    page = b.page("customers", "?limit=1")
    assert page["has_more"]
    r = a.get(f"/v1/customers?limit=100&cursor={quote(page['next_cursor'])}")
    if r.status_code != 200:
        assert_error(r, 400, "invalid_cursor")
    else:
        got = {o["id"] for o in r.json()["data"]}
        assert not got & globex_ids, "a cursor of team B showed team B's objects to team A"
        assert got <= acme_ids
    # A cursor of one resource's list does not page another's.
    a.create("products", body_for("products", {}))
    pr = a.page("products", "?limit=1")
    assert pr["has_more"]
    assert_error(a.get(f"/v1/customers?cursor={quote(pr['next_cursor'])}"), 400, "invalid_cursor")


def test_references_to_other_team_are_unknown(keys, acme, globex):
    a = keys["write_all"]
    refs = refs_of(acme)
    body = body_for("invoices", {**refs, "customers": globex["customers"]["id"]})
    assert_details(assert_error(a.post("/v1/invoices", body), 422, "unknown_reference"), "customer_id")
    body = body_for("invoices", {**refs, "products": globex["products"]["id"]})
    assert_details(assert_error(a.post("/v1/invoices", body), 422, "unknown_reference"),
                   "lines[0].product_id")
    body = body_for("time_entries", {**refs, "projects": globex["projects"]["id"]})
    assert_details(assert_error(a.post("/v1/time_entries", body), 422, "unknown_reference"), "project_id")
    body = body_for("time_entries", {**refs, "tasks": globex["tasks"]["id"]})
    assert_details(assert_error(a.post("/v1/time_entries", body), 422, "unknown_reference"), "task_id")
    body = body_for("tasks", {**refs, "projects": globex["projects"]["id"]})
    assert_details(assert_error(a.post("/v1/tasks", body), 422, "unknown_reference"), "project_id")
    body = body_for("projects", {**refs, "customers": globex["customers"]["id"]})
    assert_details(assert_error(a.post("/v1/projects", body), 422, "unknown_reference"), "customer_id")
    # PATCH to point at theirs: refused, and nothing changes
    inv = acme["invoices"]
    r = a.patch(f"/v1/invoices/{inv['id']}", {"customer_id": globex["customers"]["id"]})
    assert_details(assert_error(r, 422, "unknown_reference"), "customer_id")
    assert a.fetch("invoices", inv["id"]) == inv


# ---------------------------------------------------------------------------------------------
# invalid bodies


def _set(path, value):
    """A mutation of a valid body: sets (or with value DELETE, removes) the field at path."""
    def mutate(body):
        cur, parts = body, path
        for p in parts[:-1]:
            cur = cur[p]
        if value is DELETE:
            del cur[parts[-1]]
        else:
            cur[parts[-1]] = value
        return body
    return mutate


DELETE = object()

# (resource, mutation, field named in details)
INVALID = [
    # wrong types
    ("customers", _set(["name"], 123), "name"),
    ("customers", _set(["name"], None), "name"),
    ("customers", _set(["email"], None), "email"),
    ("customers", _set(["address"], "1 Rue de Rivoli"), "address"),
    ("products", _set(["unit_price"], "1999"), "unit_price"),
    ("products", _set(["unit_price"], 19.99), "unit_price"),
    ("products", _set(["active"], "yes"), "active"),
    ("products", _set(["currency"], 978), "currency"),
    ("invoices", _set(["lines"], {"description": "x", "quantity": 1, "unit_price": 1}), "lines"),
    ("invoices", _set(["lines", 0, "quantity"], "2"), "lines[0].quantity"),
    ("invoices", _set(["lines", 0, "quantity"], True), "lines[0].quantity"),
    ("invoices", _set(["lines", 1], "Travel"), "lines[1]"),
    ("tasks", _set(["title"], ["a"]), "title"),
    ("time_entries", _set(["billable"], 1), "billable"),
    ("time_entries", _set(["minutes"], 1.5), "minutes"),
    # missing required fields
    ("customers", _set(["name"], DELETE), "name"),
    ("products", _set(["unit_price"], DELETE), "unit_price"),
    ("products", _set(["currency"], DELETE), "currency"),
    ("invoices", _set(["customer_id"], DELETE), "customer_id"),
    ("invoices", _set(["lines"], DELETE), "lines"),
    ("invoices", _set(["lines", 0, "description"], DELETE), "lines[0].description"),
    ("invoices", _set(["lines", 1, "unit_price"], DELETE), "lines[1].unit_price"),
    ("tasks", _set(["project_id"], DELETE), "project_id"),
    ("tasks", _set(["title"], DELETE), "title"),
    ("time_entries", _set(["date"], DELETE), "date"),
    ("time_entries", _set(["minutes"], DELETE), "minutes"),
    ("projects", _set(["name"], DELETE), "name"),
    # out of range, lengths, enums
    ("time_entries", _set(["minutes"], 0), "minutes"),
    ("time_entries", _set(["minutes"], 1441), "minutes"),
    ("time_entries", _set(["minutes"], -30), "minutes"),
    ("invoices", _set(["lines", 0, "quantity"], 0), "lines[0].quantity"),
    ("invoices", _set(["lines", 0, "unit_price"], -1), "lines[0].unit_price"),
    ("invoices", _set(["lines"], []), "lines"),
    ("products", _set(["unit_price"], -1), "unit_price"),
    ("customers", _set(["name"], ""), "name"),
    ("customers", _set(["name"], "x" * 201), "name"),
    ("invoices", _set(["notes"], "n" * 2001), "notes"),
    ("invoices", _set(["status"], "late"), "status"),
    ("projects", _set(["status"], "done"), "status"),
    ("tasks", _set(["status"], "blocked"), "status"),
    # dates
    ("time_entries", _set(["date"], "2026-02-30"), "date"),
    ("time_entries", _set(["date"], "tomorrow"), "date"),
    ("time_entries", _set(["date"], "2025-02-29"), "date"),
    ("time_entries", _set(["date"], "2026-2-3"), "date"),
    ("time_entries", _set(["date"], "2026-02-28T10:00:00Z"), "date"),
    ("time_entries", _set(["date"], ""), "date"),
    ("invoices", _set(["due_date"], "2026-13-01"), "due_date"),
    ("tasks", _set(["due_date"], "31/01/2026"), "due_date"),
    # emails, currencies, countries
    ("customers", _set(["email"], "not-an-email"), "email"),
    ("customers", _set(["email"], "alice@"), "email"),
    ("customers", _set(["email"], "@example.com"), "email"),
    ("customers", _set(["email"], "alice@@example.com"), "email"),
    ("products", _set(["currency"], "usd"), "currency"),
    ("products", _set(["currency"], "XYZ"), "currency"),
    ("invoices", _set(["currency"], "EURO"), "currency"),
    ("customers", _set(["address", "country"], "USA"), "address.country"),
    ("customers", _set(["address", "country"], "fr"), "address.country"),
    ("customers", _set(["address", "country"], "UK"), "address.country"),
    # unknown fields, top level and nested
    ("customers", _set(["nickname"], "Bob"), "nickname"),
    ("customers", _set(["address", "street"], "Main St"), "address.street"),
    ("invoices", _set(["lines", 0, "discount"], 10), "lines[0].discount"),
    ("invoices", _set(["team_id"], "globex"), "team_id"),
    ("time_entries", _set(["_id"], "x"), "_id"),
    # read-only fields
    ("customers", _set(["id"], "cus_mine"), "id"),
    ("invoices", _set(["total"], 3250), "total"),
    ("products", _set(["created_at"], "2026-01-01T00:00:00Z"), "created_at"),
    ("tasks", _set(["updated_at"], "2026-01-01T00:00:00Z"), "updated_at"),
    # $-keys and dotted keys
    ("customers", _set(["$set"], {"name": "x"}), "$set"),
    ("customers", _set(["address", "$where"], "1"), "address.$where"),
    ("customers", _set(["address.city"], "Paris"), "address.city"),
    ("invoices", _set(["lines", 0, "$inc"], {"quantity": 1}), "lines[0].$inc"),
]


@pytest.mark.parametrize("resource,mutate,field", INVALID,
                         ids=[f"{r}-{f}-{i}" for i, (r, _, f) in enumerate(INVALID)])
def test_invalid_body(keys, acme, resource, mutate, field):
    a = keys["write_all"]
    body = mutate(body_for(resource, refs_of(acme)))
    assert_invalid(a.post(f"/v1/{resource}", body), field)


# (resource, patch, field)
INVALID_PATCH = [
    ("customers", {"name": 5}, "name"),
    ("customers", {"name": None}, "name"),
    ("customers", {"nickname": "x"}, "nickname"),
    ("customers", {"address": {"street": "x"}}, "address.street"),
    ("customers", {"id": "cus_x"}, "id"),
    ("customers", {"$set": {"name": "x"}}, "$set"),
    ("customers", {"email": "nope"}, "email"),
    ("products", {"unit_price": -5}, "unit_price"),
    ("products", {"currency": None}, "currency"),
    ("invoices", {"total": 1}, "total"),
    ("invoices", {"customer_id": None}, "customer_id"),
    ("invoices", {"lines": []}, "lines"),
    ("invoices", {"lines": None}, "lines"),
    ("invoices", {"lines": [{"description": "x", "quantity": 0, "unit_price": 1}]}, "lines[0].quantity"),
    ("invoices", {"status": "late"}, "status"),
    ("tasks", {"project_id": None}, "project_id"),
    ("time_entries", {"minutes": 1441}, "minutes"),
    ("time_entries", {"date": "2026-02-30"}, "date"),
    ("time_entries", {"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
]


@pytest.mark.parametrize("resource,patch,field", INVALID_PATCH,
                         ids=[f"{r}-{f}-{i}" for i, (r, _, f) in enumerate(INVALID_PATCH)])
def test_invalid_patch(keys, acme, resource, patch, field):
    a = keys["write_all"]
    obj = acme[resource]
    assert_invalid(a.patch(f"/v1/{resource}/{obj['id']}", patch), field)
    assert a.fetch(resource, obj["id"]) == obj  # unchanged


def test_lengths_count_characters(keys):
    a = keys["write_all"]
    assert a.create("customers", {"name": "\u00e9" * 200})["name"] == "\u00e9" * 200  # 400 bytes
    assert a.create("customers", {"name": "\U0001F600" * 200})["name"] == "\U0001F600" * 200
    assert_invalid(a.post("/v1/customers", {"name": "\u00e9" * 201}), "name")


@pytest.mark.parametrize("resource,field,raw", [
    ("products", "unit_price", b'{"name": "p", "unit_price": 1999.0, "currency": "EUR"}'),
    ("products", "unit_price", b'{"name": "p", "unit_price": 1e3, "currency": "EUR"}'),
    ("time_entries", "minutes", None),
    ("invoices", "quantity", None),
], ids=["price-1999.0", "price-1e3", "minutes-90.0", "line-quantity-2.0"])
def test_integers_stay_integers(keys, acme, resource, field, raw):
    """An integer field never comes back as 1999.0: the API refuses the float (400) or stores the
    integer. (JSON Schema may count 1999.0 as an integer; a client reading an int64 cannot.)"""
    a = keys["write_all"]
    refs = refs_of(acme)
    if raw is None:
        body = body_for(resource, refs)
        raw = json.dumps(body).replace('"minutes": 90', '"minutes": 90.0').replace(
            '"quantity": 2', '"quantity": 2.0').encode()
        assert b".0" in raw
    r = a.post(f"/v1/{resource}", data=raw, headers={"Content-Type": "application/json"})
    if r.status_code == 400:
        assert_invalid(r, field if resource != "invoices" else "lines[0].quantity")
        return
    assert r.status_code == 201, r.text[:300]
    assert not re.search(rf'"{field}"\s*:\s*-?\d+(\.\d*|[eE])', r.text), \
        f"{field} came back as a float: {r.text[:300]}"
    got = a.get(f"/v1/{resource}/{r.json()['id']}")
    assert not re.search(rf'"{field}"\s*:\s*-?\d+(\.\d*|[eE])', got.text), got.text[:300]


@pytest.mark.parametrize("body", [[], "a string", 42, None, True],
                         ids=["array", "string", "number", "null", "true"])
def test_body_that_is_not_an_object(keys, body):
    a = keys["write_all"]
    r = a.post("/v1/customers", data=json.dumps(body), headers={"Content-Type": "application/json"})
    # a scalar is JSON text (RFC 8259) but not an object: either 400 is fair
    assert_error(r, 400, "validation_failed" if isinstance(body, list) else
                 ("validation_failed", "invalid_json"))


def nest(levels, leaf="x"):
    v = leaf
    for _ in range(levels):
        v = {"a": v}
    return v


def test_deep_nesting(keys, acme):
    a = keys["write_all"]
    # 40 levels of objects in a known field, in an unknown field, of arrays in lines
    body = body_for("customers", {})
    body["address"] = nest(40)
    err = assert_error(a.post("/v1/customers", body), 400, "validation_failed")
    assert err.get("details") and all(d["field"].startswith("address") for d in err["details"]), err
    body = body_for("customers", {})
    body["deep"] = nest(40)
    assert_error(a.post("/v1/customers", body), 400, "validation_failed")
    body = body_for("invoices", refs_of(acme))
    lines = body["lines"]
    for _ in range(40):
        lines = [lines]
    body["lines"] = lines
    assert_error(a.post("/v1/invoices", body), 400, "validation_failed")
    r = a.patch(f"/v1/customers/{acme['customers']['id']}", {"address": nest(40)})
    assert_error(r, 400, "validation_failed")
    # far deeper than any parser should follow: still a clean 400, and the service lives on
    raw = b'{"name": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = a.post("/v1/customers", data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400, ("invalid_json", "validation_failed"))
    assert a.fetch("customers", acme["customers"]["id"]) == acme["customers"]


@pytest.mark.parametrize("raw", [
    b'{"name": "Caf\xe9"}',                      # Latin-1, not UTF-8
    b'{"name": "\xff\xfe"}',                     # never valid
    b'{"name": "\xc0\xaf"}',                     # overlong "/"
    b'{"name": "\xed\xa0\x80"}',                 # an encoded surrogate
    b'{"name": "abc\xe2\x82"}',                  # truncated sequence
    b'{"na\xffme": "x"}',                        # in a key
], ids=["latin1", "ff-fe", "overlong", "surrogate", "truncated", "key"])
def test_invalid_utf8(keys, raw):
    r = keys["write_all"].post("/v1/customers", data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


@pytest.mark.parametrize("raw", [
    b"{name: 'x'}", b'{"name": "x"', b'{"name": "x"} trailing', b"<customer/>", b"name=x",
    b'{"name": "x",}', b"",
], ids=["js-object", "unterminated", "trailing", "xml", "form", "trailing-comma", "empty"])
def test_non_json_body(keys, raw):
    r = keys["write_all"].post("/v1/customers", data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


def test_nul_and_duplicate_keys(keys):
    a = keys["write_all"]
    for raw in [b'{"na\\u0000me": "x"}', b'{"name": "a\\u0000b"}', b'{"name": "x", "name": "y"}']:
        r = a.post("/v1/customers", data=raw, headers={"Content-Type": "application/json"})
        err = assert_error(r, 400, ("invalid_json", "validation_failed"))
        # api.md §1: errors never expose internals (here: the JSON library's flag names)
        assert "JSON_" not in err["message"] and "jansson" not in err["message"].lower(), err


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "text/json",
                                   "application/xml"])
def test_not_json_media_type(keys, acme, ctype):
    a = keys["write_all"]
    raw = json.dumps(body_for("customers", {})).encode()
    assert_error(a.post("/v1/customers", data=raw, headers={"Content-Type": ctype}), 415,
                 "unsupported_media_type")
    r = a.patch(f"/v1/customers/{acme['customers']['id']}", data=b'{"phone": "1"}',
                headers={"Content-Type": ctype})
    assert_error(r, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(keys):
    raw = json.dumps(body_for("customers", {})).encode()
    r = keys["write_all"].post("/v1/customers", data=raw,
                               headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text[:300]


# ---------------------------------------------------------------------------------------------
# query strings


def test_query_errors(keys, acme):
    a = keys["write_all"]
    for resource in RESOURCES:
        err = assert_error(a.get(f"/v1/{resource}?foo=1"), 400, "unknown_parameter")
        assert "foo" in err["message"] or any(d.get("field") == "foo" for d in err.get("details", []))
    # a filter of another resource, a field that is not filterable, a query on one object
    assert_error(a.get("/v1/customers?status=open"), 400, "unknown_parameter")
    assert_error(a.get("/v1/time_entries?minutes=60"), 400, "unknown_parameter")
    assert_error(a.get("/v1/invoices?total=100"), 400, "unknown_parameter")
    assert_error(a.get(f"/v1/customers/{acme['customers']['id']}?foo=1"), 400, "unknown_parameter")
    # bad filter values
    assert_invalid(a.get("/v1/invoices?status=late"), "status")
    assert_invalid(a.get("/v1/products?active=yes"), "active")
    assert_invalid(a.get("/v1/products?active=1"), "active")
    assert_invalid(a.get("/v1/time_entries?billable=TRUE"), "billable")
    assert_invalid(a.get("/v1/time_entries?date=2026-02-30"), "date")
    assert_invalid(a.get("/v1/invoices?currency=usd"), "currency")
    assert_invalid(a.get("/v1/customers?email=not-an-email"), "email")
    # a parameter given twice is ambiguous: refused
    for q in ["/v1/invoices?status=open&status=paid", "/v1/customers?limit=1&limit=2"]:
        assert_error(a.get(q), 400, ("validation_failed", "unknown_parameter"))
    # limits
    for bad in ["0", "101", "-1", "abc", "", "1.5", "10abc", "99999999999999999999"]:
        assert_error(a.get(f"/v1/customers?limit={bad}"), 400, "validation_failed")
    assert len(a.page("customers", "?limit=1")["data"]) == 1
    assert len(a.page("customers", "?limit=100")["data"]) <= 100


def test_methods_and_paths(keys, acme):
    a = keys["write_all"]
    item = f"/v1/customers/{acme['customers']['id']}"
    one, many = {"GET", "PATCH", "DELETE"}, {"GET", "POST"}
    for method, path, allow in [("POST", item, one), ("PUT", item, one),
                                ("DELETE", "/v1/customers", many), ("PATCH", "/v1/invoices", many)]:
        r = a(method, path, json={"name": "x"})
        assert_error(r, 405, "method_not_allowed")
        got = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        assert allow <= got and not {"PUT"} & got, r.headers
    assert_error(a.get("/v1/widgets"), 404, "not_found")
    assert_error(a.get("/v1/customers/" + "x" * 1000), 404, "not_found")
    assert_error(a.get("/v1/customers/%7B%22%24ne%22%3Anull%7D"), 404, "not_found")
    assert_error(a.get("/v1/customers/.*"), 404, "not_found")


def test_tampered_cursor(keys, acme):
    a = keys["write_all"]
    a.create("customers", body_for("customers", {}))
    page = a.page("customers", "?limit=1")
    cur = page["next_cursor"]
    assert page["has_more"] and cur
    assert a.get(f"/v1/customers?limit=1&cursor={quote(cur)}").status_code == 200

    def flip(s, i):
        return s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]

    bad = [flip(cur, 0), flip(cur, len(cur) - 1), flip(cur, cur.index(".") - 1), cur + "A",
           cur[:-1], cur.replace(".", ""), "garbage", "", "." * 10, cur + "." + cur, "+" + cur, cur + "=="]
    for c in bad:
        r = a.get(f"/v1/customers?limit=1&cursor={quote(c)}")
        assert_error(r, 400, "invalid_cursor")


# ---------------------------------------------------------------------------------------------
# references


def test_unknown_references(keys, acme):
    a = keys["write_all"]
    refs = refs_of(acme)
    missing = "cus_doesnotexist0000"
    r = a.post("/v1/invoices", body_for("invoices", {**refs, "customers": missing}))
    assert_details(assert_error(r, 422, "unknown_reference"), "customer_id")
    body = body_for("invoices", {**refs, "products": "prd_doesnotexist0000"})
    assert_details(assert_error(a.post("/v1/invoices", body), 422, "unknown_reference"),
                   "lines[0].product_id")
    body = body_for("invoices", refs)
    body["lines"][1]["product_id"] = "prd_nope"
    assert_details(assert_error(a.post("/v1/invoices", body), 422, "unknown_reference"),
                   "lines[1].product_id")
    body = body_for("time_entries", {**refs, "tasks": "tsk_nope"})
    assert_details(assert_error(a.post("/v1/time_entries", body), 422, "unknown_reference"), "task_id")
    body = body_for("time_entries", {**refs, "projects": "prj_nope"})
    assert_details(assert_error(a.post("/v1/time_entries", body), 422, "unknown_reference"), "project_id")
    body = body_for("tasks", {**refs, "projects": "prj_nope"})
    assert_details(assert_error(a.post("/v1/tasks", body), 422, "unknown_reference"), "project_id")
    body = body_for("projects", {**refs, "customers": "cus_nope"})
    assert_details(assert_error(a.post("/v1/projects", body), 422, "unknown_reference"), "customer_id")
    # an id of the right team but the wrong resource is no reference either
    body = body_for("invoices", {**refs, "customers": refs["products"]})
    assert_details(assert_error(a.post("/v1/invoices", body), 422, "unknown_reference"), "customer_id")
    # a deleted object can no longer be referred to
    gone = a.create("customers", body_for("customers", {}))
    assert a.delete(f"/v1/customers/{gone['id']}").status_code == 204
    r = a.post("/v1/invoices", body_for("invoices", {**refs, "customers": gone["id"]}))
    assert_details(assert_error(r, 422, "unknown_reference"), "customer_id")
    # PATCH is checked too
    te = acme["time_entries"]
    r = a.patch(f"/v1/time_entries/{te['id']}", {"task_id": "tsk_nope"})
    assert_details(assert_error(r, 422, "unknown_reference"), "task_id")
    assert a.fetch("time_entries", te["id"]) == te


# ---------------------------------------------------------------------------------------------
# computed fields, merge patch, defaults


def test_invoice_total_and_merge_patch(keys, acme):
    a = keys["write_all"]
    refs = refs_of(acme)
    body = body_for("invoices", refs)
    inv = a.create("invoices", body)
    assert inv["total"] == 2 * 1500 + 1 * 250
    assert inv["status"] == "draft"
    assert a.fetch("invoices", inv["id"]) == inv
    path = f"/v1/invoices/{inv['id']}"

    lines = [{"description": "Design", "quantity": 3, "unit_price": 12000},
             {"description": "Hosting", "quantity": 12, "unit_price": 999, "product_id": refs["products"]},
             {"description": "Free", "quantity": 1, "unit_price": 0}]
    r = a.patch(path, {"lines": lines})
    assert r.status_code == 200, r.text[:300]
    got = r.json()
    assert got["lines"] == lines  # an array is replaced, not merged
    assert got["total"] == 3 * 12000 + 12 * 999
    assert got["created_at"] == inv["created_at"] and got["id"] == inv["id"]
    assert a.fetch("invoices", inv["id"]) == got

    # other fields do not disturb the total; null removes an optional field
    r = a.patch(path, {"notes": None, "status": "open"})
    assert r.status_code == 200, r.text[:300]
    got2 = r.json()
    assert "notes" not in got2 and got2["status"] == "open"
    assert got2["total"] == got["total"]
    assert a.fetch("invoices", inv["id"]) == got2
    # removing what is absent is fine; removing a required field, or emptying lines, is not
    r = a.patch(path, {"notes": None})
    assert r.status_code == 200 and "notes" not in r.json()
    assert_invalid(a.patch(path, {"customer_id": None}), "customer_id")
    assert_invalid(a.patch(path, {"lines": []}), "lines")
    assert_invalid(a.patch(path, {"currency": None}), "currency")
    now = a.fetch("invoices", inv["id"])
    assert now["customer_id"] == inv["customer_id"] and now["lines"] == lines
    # an empty patch changes nothing but is fine
    r = a.patch(path, {})
    assert r.status_code == 200, r.text[:300]
    assert {k: v for k, v in r.json().items() if k != "updated_at"} == \
        {k: v for k, v in now.items() if k != "updated_at"}


def test_invoice_total_bounds(keys, acme):
    a = keys["write_all"]
    body = body_for("invoices", refs_of(acme))
    big = {"description": "Big", "quantity": 1000000, "unit_price": 1000000000000}
    body["lines"] = [dict(big) for _ in range(9)]
    inv = a.create("invoices", body)
    assert inv["total"] == 9 * 10 ** 18
    # 10 such lines overflow 64 bits: refused, never wrapped
    body["lines"] = [dict(big) for _ in range(10)]
    r = a.post("/v1/invoices", body)
    assert_error(r, 400, "validation_failed")


def test_merge_patch_nested_object(keys):
    a = keys["write_all"]
    c = a.create("customers", body_for("customers", {}))
    path = f"/v1/customers/{c['id']}"
    r = a.patch(path, {"address": {"city": "Lyon", "line2": None}, "email": None})
    assert r.status_code == 200, r.text[:300]
    got = r.json()
    want_addr = {k: v for k, v in c["address"].items() if k != "line2"}
    want_addr["city"] = "Lyon"
    assert got["address"] == want_addr
    assert "email" not in got
    assert got["name"] == c["name"] and got["tax_id"] == c["tax_id"]
    r = a.patch(path, {"address": None})
    assert r.status_code == 200 and "address" not in r.json(), r.text[:300]
    assert "address" not in a.fetch("customers", c["id"])
    assert_error(a.patch("/v1/customers/cus_doesnotexist0000", {"name": "x"}), 404, "not_found")


def test_defaults(keys, acme):
    a = keys["write_all"]
    refs = refs_of(acme)
    p = a.create("products", body_for("products", refs))
    assert p["active"] is True
    p2 = a.create("products", {**body_for("products", refs), "active": False})
    assert p2["active"] is False
    te = a.create("time_entries", body_for("time_entries", refs))
    assert te["billable"] is True
    te2 = a.create("time_entries", {**body_for("time_entries", refs), "billable": False})
    assert te2["billable"] is False
    inv = a.create("invoices", body_for("invoices", refs))
    assert inv["status"] == "draft"
    assert a.create("tasks", body_for("tasks", refs))["status"] == "todo"
    assert a.create("projects", body_for("projects", refs))["status"] == "active"
    # a minimal customer carries only what was sent
    c = a.create("customers", {"name": "Minimal"})
    assert set(c) == {"id", "name", "created_at", "updated_at"}
    assert c["created_at"] == c["updated_at"]
    # a leap day is a date
    leap = a.create("time_entries", {**body_for("time_entries", refs), "date": "2024-02-29"})
    assert leap["date"] == "2024-02-29"


# ---------------------------------------------------------------------------------------------
# equality filters


def test_equality_filters(keys, acme):
    a = keys["write_all"]
    refs = refs_of(acme)
    c1 = a.create("customers", body_for("customers", {}))
    c2 = a.create("customers", body_for("customers", {}))
    inv1 = a.create("invoices", {**body_for("invoices", {**refs, "customers": c1["id"]}), "status": "open"})
    inv2 = a.create("invoices", body_for("invoices", {**refs, "customers": c1["id"]}))
    inv3 = a.create("invoices", {**body_for("invoices", {**refs, "customers": c2["id"]}), "status": "open"})
    ids = lambda page: [o["id"] for o in page["data"]]  # noqa: E731

    assert ids(a.page("invoices", f"?status=open&customer_id={c1['id']}")) == [inv1["id"]]
    assert ids(a.page("invoices", f"?customer_id={c1['id']}&status=open")) == [inv1["id"]]
    assert ids(a.page("invoices", f"?status=draft&customer_id={c1['id']}")) == [inv2["id"]]
    assert ids(a.page("invoices", f"?status=paid&customer_id={c1['id']}")) == []
    assert ids(a.page("invoices", f"?customer_id={c1['id']}")) == [inv2["id"], inv1["id"]]
    assert ids(a.page("invoices", f"?customer_id={c2['id']}")) == [inv3["id"]]
    opens = a.list_all("invoices", "?status=open")
    assert all(o["status"] == "open" for o in opens)
    assert {inv1["id"], inv3["id"]} <= {o["id"] for o in opens} and inv2["id"] not in {o["id"] for o in opens}
    # filters and pagination together
    p1 = a.page("invoices", f"?customer_id={c1['id']}&limit=1")
    assert ids(p1) == [inv2["id"]] and p1["has_more"]
    p2 = a.page("invoices", f"?customer_id={c1['id']}&limit=1&cursor={quote(p1['next_cursor'])}")
    assert ids(p2) == [inv1["id"]] and not p2["has_more"] and p2["next_cursor"] is None
    # a filter follows PATCH
    assert a.patch(f"/v1/invoices/{inv2['id']}", {"status": "open"}).status_code == 200
    assert ids(a.page("invoices", f"?status=open&customer_id={c1['id']}")) == [inv2["id"], inv1["id"]]

    # products?active=false
    sku = f"SKU-{token()}"
    on = a.create("products", {**body_for("products", {}), "sku": sku})
    off = a.create("products", {**body_for("products", {}), "sku": sku, "active": False})
    assert ids(a.page("products", f"?active=false&sku={sku}")) == [off["id"]]
    assert ids(a.page("products", f"?active=true&sku={sku}")) == [on["id"]]
    assert ids(a.page("products", f"?sku={sku}")) == [off["id"], on["id"]]
    inactive = a.list_all("products", "?active=false")
    assert off["id"] in {o["id"] for o in inactive} and all(o["active"] is False for o in inactive)

    # time_entries?billable=true&project_id=...
    prj = a.create("projects", body_for("projects", refs))
    other = a.create("projects", body_for("projects", refs))
    base = body_for("time_entries", {**refs, "projects": prj["id"]})
    del base["task_id"]
    t1 = a.create("time_entries", base)
    t2 = a.create("time_entries", {**base, "billable": False})
    t3 = a.create("time_entries", {**base, "billable": True, "minutes": 15})
    t4 = a.create("time_entries", {**base, "project_id": other["id"]})
    assert ids(a.page("time_entries", f"?billable=true&project_id={prj['id']}")) == [t3["id"], t1["id"]]
    assert ids(a.page("time_entries", f"?billable=false&project_id={prj['id']}")) == [t2["id"]]
    assert ids(a.page("time_entries", f"?project_id={other['id']}")) == [t4["id"]]
    assert ids(a.page("time_entries", f"?project_id={prj['id']}&date=2026-02-28&billable=true")) == \
        [t3["id"], t1["id"]]
    assert ids(a.page("time_entries", f"?project_id={prj['id']}&date=2026-03-01")) == []
    # an unknown id as a filter value is just no match
    assert ids(a.page("invoices", "?customer_id=cus_doesnotexist0000")) == []


# ---------------------------------------------------------------------------------------------
# pagination over 250 objects


def test_pagination_250(deployment, keys):
    if deployment.name != PAGINATION_DEPLOYMENT:
        pytest.skip(f"the 250-object pagination runs in {PAGINATION_DEPLOYMENT} only")
    a = keys["write_all"]
    tax = f"PG{token()}"
    made = []
    for i in range(250):
        made.append(a.create("customers", {"name": f"Page customer {i}", "tax_id": tax})["id"])
    assert len(set(made)) == 250

    def order_key(o):
        return (ts(o["created_at"]), o["id"])

    # default limit is 20
    first = a.page("customers", f"?tax_id={tax}")
    assert len(first["data"]) == 20 and first["has_more"]

    seen, cursor, sizes, late = [], None, [], None
    for n, limit in enumerate([100, 37, 100, 100]):
        q = f"?tax_id={tax}&limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = a.page("customers", q)
        sizes.append(len(page["data"]))
        seen += page["data"]
        if n == 0:
            # created while paging: newer than the cursor, so never on a later page
            late = a.create("customers", {"name": "Late customer", "tax_id": tax})["id"]
        if n == 1:
            # the object the cursor points after is deleted: paging goes on all the same
            gone = page["data"][-1]["id"]
            assert a.delete(f"/v1/customers/{gone}").status_code == 204
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert sizes == [100, 37, 100, 13], sizes
    ids = [o["id"] for o in seen]
    assert len(ids) == len(set(ids)) == 250, "an object came twice"
    assert set(ids) == set(made)
    assert late not in ids
    assert seen == sorted(seen, key=order_key, reverse=True), "not newest first (created_at, id desc)"
    # the objects created one after another come out in the reverse order of their creation times
    created = {o["id"]: ts(o["created_at"]) for o in seen}
    assert [created[i] for i in made] == sorted(created[i] for i in made)

    # a fresh listing has the late one first, then the same 250 in the same order
    everything = a.list_all("customers", f"?tax_id={tax}")
    assert [o["id"] for o in everything] == [late] + [i for i in ids if i != gone]
    # the same cursor again gives the same last page; a limit equal to what is left ends the list
    for limit in (100, 13):
        last = a.page("customers", f"?tax_id={tax}&limit={limit}&cursor={quote(cursor)}")
        assert [o["id"] for o in last["data"]] == ids[237:]
        assert last["has_more"] is False and last["next_cursor"] is None
    more = a.page("customers", f"?tax_id={tax}&limit=12&cursor={quote(cursor)}")
    assert [o["id"] for o in more["data"]] == ids[237:249] and more["has_more"] is True
