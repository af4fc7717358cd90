"""Assertions the test files share."""

import json
import re

import pytest

SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
JSON_CT = re.compile(r"^application/json\b")


def assert_envelope(what, status_code, headers, body, status, code):
    """The error envelope of api.md §1 in a response given as its parts (headers: a
    case-insensitive mapping, body: bytes or str), with request_id equal to the X-Request-Id
    header. `code` is the expected code, or a collection of acceptable ones."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    assert status_code == status, f"{what}: {status_code} {text[:400]}"
    assert JSON_CT.match(headers.get("Content-Type", "")), (what, headers.get("Content-Type"))
    doc = json.loads(text)
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    if isinstance(code, str):
        assert err["code"] == code, doc
    else:
        assert err["code"] in code, doc
    assert isinstance(err.get("message"), str) and err["message"], doc
    rid = headers.get("X-Request-Id")
    assert rid and SANE_ID.match(rid), (what, dict(headers))
    assert err.get("request_id") == rid, (doc, rid)
    return err


def assert_error(r, status, code):
    """assert_envelope for a requests.Response."""
    return assert_envelope(f"{r.request.method} {r.url}", r.status_code, r.headers, r.content, status, code)


def needs_pool(d):
    if d.pool is None:
        pytest.skip(f"{d.name}: no self-managed pool in this deployment")
