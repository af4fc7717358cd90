"""Assertions the test files share."""

import re

import pytest

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
