"""The OpenAPI response checker (looped_test/spec.py) catches wrong responses: a self-test.

A small hand-written OpenAPI document and responses that are wrong in one way each, fed to the
suite's own SpecChecker (a private instance: nothing here reaches SPEC's tally, and nothing needs
the running stack). Each wrong response must be reported, with a message that names what is
wrong; the right ones must pass. test_reference.py does the same against the served document.
"""

import json

import pytest

from looped_test.spec import SpecChecker

BASE = "http://127.0.0.1:1"  # never contacted: the document is loaded by hand

DOC = {
    "openapi": "3.1.0",
    "info": {"title": "spec checker self-test", "version": "1"},
    "paths": {
        "/v1/widgets/{id}": {
            "get": {"responses": {
                "200": {"description": "a widget",
                        "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Widget"}}}},
                "404": {"$ref": "#/components/responses/Error"},
            }},
            "delete": {"responses": {"204": {"description": "deleted"}}},
        },
        "/v1/widgets/count": {
            "get": {"responses": {"200": {
                "description": "how many",
                "content": {"application/json": {"schema": {"type": "integer"}}}}}},
        },
    },
    "components": {
        "headers": {"RequestId": {"required": True, "schema": {"type": "string", "pattern": "^r[0-9]+$"}}},
        "responses": {"Error": {"description": "an error",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        "schemas": {
            "Widget": {"type": "object", "additionalProperties": False, "required": ["id", "name"],
                       "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                      "size": {"type": "integer", "minimum": 0},
                                      "created_at": {"type": "string", "format": "date-time"}}},
            "Error": {"type": "object", "additionalProperties": False, "required": ["error"],
                      "properties": {"error": {
                          "type": "object", "additionalProperties": False,
                          "required": ["code", "message", "request_id"],
                          "properties": {"code": {"enum": ["not_found", "method_not_allowed"]},
                                         "message": {"type": "string"},
                                         "request_id": {"type": "string"}}}}},
        },
    },
}

WIDGET = {"id": "w1", "name": "sprocket", "size": 3, "created_at": "2026-01-02T03:04:05Z"}
NOT_FOUND = {"error": {"code": "not_found", "message": "no such widget", "request_id": "r1"}}
APP = {"Content-Type": "application/json", "X-Request-Id": "r1"}  # what the app's responses carry


@pytest.fixture
def checker():
    c = SpecChecker()
    c.load(DOC)
    c.bases.add(BASE)
    return c


def check(checker, method, path, status, body, headers=APP):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return checker.check(method, BASE + path, status, headers, raw)


RIGHT = {
    "a widget": ("GET", "/v1/widgets/w1", 200, WIDGET, APP),
    "a widget without its optional fields": ("GET", "/v1/widgets/w1", 200, {"id": "w1", "name": "x"}, APP),
    "a declared error": ("GET", "/v1/widgets/w9", 404, NOT_FOUND, APP),
    "a declared empty body": ("DELETE", "/v1/widgets/w1", 204, b"", {"X-Request-Id": "r1"}),
    "the literal path before the template": ("GET", "/v1/widgets/count", 200, 7, APP),
    "an error on an undocumented path, as the Error schema says": ("GET", "/v1/nope", 404, NOT_FOUND, APP),
    "405 on a documented path, as the Error schema says": (
        "PUT", "/v1/widgets/w1", 405,
        {"error": {"code": "method_not_allowed", "message": "no", "request_id": "r1"}}, APP),
    "HEAD: headers only": ("HEAD", "/v1/widgets/w1", 200, b"", APP),
}


@pytest.mark.parametrize("what", list(RIGHT))
def test_a_right_response_passes(checker, what):
    method, path, status, body, headers = RIGHT[what]
    assert check(checker, method, path, status, body, headers) == []


# what: (method, path, status, body, headers, a fragment the report must contain)
WRONG = {
    "undocumented status": ("GET", "/v1/widgets/w1", 418, WIDGET, APP,
                            "status 418 is not declared for GET /v1/widgets/{id}"),
    "required field missing": ("GET", "/v1/widgets/w1", 200, {"id": "w1"}, APP,
                               "'name' is a required property"),
    "wrong type": ("GET", "/v1/widgets/w1", 200, {**WIDGET, "size": "big"}, APP,
                   "$.size: 'big' is not of type 'integer'"),
    "out of range": ("GET", "/v1/widgets/w1", 200, {**WIDGET, "size": -1}, APP,
                     "$.size: -1 is less than the minimum of 0"),
    "not a date-time": ("GET", "/v1/widgets/w1", 200, {**WIDGET, "created_at": "yesterday"}, APP,
                        "$.created_at: 'yesterday' is not a 'date-time'"),
    "extra property (additionalProperties: false)": (
        "GET", "/v1/widgets/w1", 200, {**WIDGET, "colour": "red"}, APP,
        "Additional properties are not allowed ('colour' was unexpected)"),
    "wrong content type": ("GET", "/v1/widgets/w1", 200, b"sprocket",
                           {"Content-Type": "text/plain", "X-Request-Id": "r1"},
                           "Content-Type text/plain is not one of ['application/json']"),
    "body not JSON": ("GET", "/v1/widgets/w1", 200, b"{oops", APP, "body is not JSON"),
    "undocumented path": ("GET", "/v1/gadgets", 200, WIDGET, APP,
                          "GET /v1/gadgets -> 200: no path template in openapi.json"),
    "undocumented method": ("POST", "/v1/widgets/w1", 201, WIDGET, APP,
                            "POST is not documented for /v1/widgets/{id}"),
    "a body where none is declared": ("DELETE", "/v1/widgets/w1", 204, {"deleted": True}, APP,
                                      "declared without a body, got 17 bytes"),
    "required header missing": ("GET", "/v1/widgets/w1", 200, WIDGET, {"Content-Type": "application/json"},
                                "required header X-Request-Id missing"),
    "header against its schema": ("GET", "/v1/widgets/w1", 200, WIDGET,
                                  {"Content-Type": "application/json", "X-Request-Id": "nope"},
                                  "header X-Request-Id: 'nope'"),
    "declared error with a wrong body": (
        "GET", "/v1/widgets/w9", 404, {"error": {"code": "not_found", "message": "x"}}, APP,
        "'request_id' is a required property"),
    "error on an undocumented path, not an Error": (
        "GET", "/v1/nope", 404, {"error": {**NOT_FOUND["error"], "stack": "trace"}}, APP,
        "('stack' was unexpected)"),
    "error code outside the enum": (
        "GET", "/v1/widgets/w9", 404, {"error": {**NOT_FOUND["error"], "code": "oops"}}, APP,
        "$.error.code: 'oops' is not one of"),
    "wrong type at the top": ("GET", "/v1/widgets/count", 200, "7", APP, "$: '7' is not of type 'integer'"),
}


@pytest.mark.parametrize("what", list(WRONG))
def test_a_wrong_response_is_reported(checker, what):
    method, path, status, body, headers, fragment = WRONG[what]
    problems = check(checker, method, path, status, body, headers)
    assert problems, f"the checker let this through ({what})"
    assert any(fragment in p for p in problems), f"{what}: expected {fragment!r} in {problems}"
    assert all(p.startswith(f"{method} {path} -> {status}") for p in problems), problems


def test_wrong_responses_reach_the_tally_and_the_phase_report(checker):
    """record() and take(): what the pytest hooks of conftest.py fail a test phase with."""
    for method, path, status, body, headers, _ in WRONG.values():
        checker.record(check(checker, method, path, status, body, headers))
    for method, path, status, body, headers in RIGHT.values():
        checker.record(check(checker, method, path, status, body, headers))
    taken = checker.take()
    assert len(taken) >= len(WRONG) and checker.total_problems == len(taken)
    assert checker.take() == [], "take() empties the current phase's list"
    assert checker.checked[("GET", "/v1/widgets/{id}", 200)] >= 1
    assert checker.checked[("GET", "(undocumented)", 200)] == 1


def test_what_is_not_the_apps_is_left_alone(checker):
    """The web server's own answers (no X-Request-Id, no JSON), test-only routes, static files and
    other servers are not held to the document: counted, not reported."""
    html = {"Content-Type": "text/html"}
    assert check(checker, "GET", "/v1/widgets/w1", 401, b"<h1>401</h1>", html) == []
    assert checker.not_app == {("GET", "/v1/widgets/{id}", "401 text/html"): 1} and checker.skipped == 1
    assert check(checker, "GET", "/v1/_test/hello", 200, b"hi", {"X-Request-Id": "r1"}) == []
    assert check(checker, "GET", "/index.html", 200, b"<html>", html) == []
    assert checker.owns(BASE + "/v1/widgets/w1") and not checker.owns("http://127.0.0.1:2/v1/widgets/w1")


def test_a_response_before_the_document_waits_for_it():
    """A response that arrives before the document is loaded (here: through FastCGI, which cannot
    fetch it) is kept and checked once the document is there."""
    c = SpecChecker()
    c.bases.add(BASE)
    assert c.check("GET", BASE + "/v1/widgets/w1", 418, APP, json.dumps(WIDGET).encode(), via="fcgi") == []
    assert c.take() == [] and len(c.pending) == 1
    c.load(DOC)
    problems = c.take()
    assert problems and "status 418 is not declared" in problems[0], problems
