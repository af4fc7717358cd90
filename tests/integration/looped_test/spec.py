"""The OpenAPI response checker: "the spec tells the truth".

Standard library, requests (for the hook on requests.Session.send), jsonschema and referencing:
nothing here needs the running stack (test_spec_checker.py feeds it a hand-written document).

requests.Session.send is wrapped for the whole session (hook_requests, from conftest.py) (requests.get & co. go through it too),
and so is Deployment.fcgi: each response to a request for one of our deployments is matched to
the path template, method and status that the document served at /openapi.json declares (else
"default") and its body is validated against that response's schema with `jsonschema` (Draft
2020-12, formats checked, "#/components/..." resolved through a referencing registry holding the
whole document); declared response headers are validated when present. A mismatch fails the
test (or fixture) during which the response arrived, whichever thread made the request.

Not checked: /v1/_test/* (test-only routes, not in the document), responses that are not the
application's (no X-Request-Id and no JSON body: static files), and HEAD bodies. The web servers'
own errors (their 401 challenge, 411/413, 502/503 while the app is down: deploy/lighttpd/errors.lua,
deploy/apache/error.json) are the envelope with X-Request-Id, and checked like the app's. 405s, and 4xx/5xx on
paths the document does not have (the app's 404 for /v1/nope), are checked against the Error
schema; a 2xx on an undocumented path or method is a mismatch.
"""

import re
import threading

import requests

SPEC_URI = "urn:looped:openapi.json"
APP_PATH_RE = re.compile(r"^/(v1(/|$)|openapi\.json$|metrics$)")
SKIP_PATH_RE = re.compile(r"^/v1/_test(/|$)")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SpecChecker:
    """The document served at /openapi.json and the checks of responses against it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bases = set()        # "http://127.0.0.1:PORT" of every deployment
        self.spec = None
        self.registry = None
        self.templates = []       # (compiled regex, template), most specific first
        self.validators = {}      # JSON pointer -> validator
        self.pending = []         # responses that arrived before the document could be loaded
        self.problems = []        # mismatches of the current test phase
        self.checked = {}         # (method, template, status) -> count, for the summary
        self.skipped = 0
        self.not_app = {}         # (method, path, "status type") -> count: the web server's answers
        self.total_problems = 0

    # -- the document

    def load(self, spec):
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.jsonschema = jsonschema
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
        tpls = []
        for t in spec.get("paths", {}):
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"
            literal = sum(1 for seg in t.split("/") if seg and not seg.startswith("{"))
            tpls.append((-literal, -len(t), re.compile(rx), t))
        self.templates = [(rx, t) for _, _, rx, t in sorted(tpls, key=lambda x: (x[0], x[1]))]

    def _fetch(self, base):
        import json
        import urllib.request
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=10) as f:
                return json.loads(f.read())
        except Exception:  # noqa: BLE001 - retried with the next response
            return None

    def _deref(self, obj, ptr):
        """Follows OpenAPI-level {"$ref": "#/..."} (responses, headers); returns (object, pointer)."""
        for _ in range(10):
            if not (isinstance(obj, dict) and isinstance(obj.get("$ref"), str) and obj["$ref"].startswith("#/")):
                return obj, ptr
            ptr = obj["$ref"][1:]
            obj = self.spec
            for part in ptr.split("/")[1:]:
                obj = obj[part.replace("~1", "/").replace("~0", "~")]
        raise AssertionError(f"$ref loop at {ptr}")

    def _validator(self, ptr):
        v = self.validators.get(ptr)
        if v is None:
            cls = self.jsonschema.Draft202012Validator
            v = cls({"$ref": SPEC_URI + "#" + ptr}, registry=self.registry, format_checker=cls.FORMAT_CHECKER)
            self.validators[ptr] = v
        return v

    def _errors(self, ptr, instance, what):
        errs = sorted(self._validator(ptr).iter_errors(instance), key=lambda e: (len(e.path), str(e.path)))
        out = []
        for e in errs[:5]:
            where = e.json_path if what == "body" else what
            out.append(f"{where}: {e.message[:300]} (schema {ptr}{'/' if e.schema_path else ''}"
                       f"{'/'.join(str(p) for p in e.schema_path)})")
        if len(errs) > 5:
            out.append(f"... and {len(errs) - 5} more")
        return out

    # -- one response

    def owns(self, url):
        from urllib.parse import urlsplit
        u = urlsplit(url)
        return f"{u.scheme}://{u.netloc}" in self.bases

    def check(self, method, url, status, headers, body, via="http"):
        """Checks one response; returns a list of problems (empty: fine or not the app's)."""
        from urllib.parse import urlsplit
        u = urlsplit(url)
        path = u.path or "/"
        if not APP_PATH_RE.match(path) or SKIP_PATH_RE.match(path):
            return []
        h = {k.lower(): v for k, v in headers.items()}
        ctype = h.get("content-type", "").split(";")[0].strip().lower()
        if "x-request-id" not in h and ctype != "application/json" and not ctype.endswith("+json"):
            tpl = next((t for rx, t in self.templates if rx.match(path)), path)
            key = (method.upper(), tpl, f"{status} {ctype or '-'}")
            with self.lock:
                self.skipped += 1
                self.not_app[key] = self.not_app.get(key, 0) + 1
            return []  # the web server's own answer, not the application's
        base = f"{u.scheme}://{u.netloc}"
        with self.lock:
            if self.spec is None:
                spec = self._fetch(base) if via == "http" else None
                if spec is None:
                    self.pending.append((method, url, status, headers, body, via))
                    return []
                self.load(spec)
        return self._check(method.upper(), path, status, h, ctype, body)

    def _check(self, method, path, status, h, ctype, body):
        import json
        what = f"{method} {path} -> {status}"
        template = next((t for rx, t in self.templates if rx.match(path)), None)
        op_method = "get" if method == "HEAD" else method.lower()
        ops = self.spec["paths"].get(template, {}) if template else {}
        op = ops.get(op_method) if op_method in HTTP_METHODS else None
        key = (method, template or "(undocumented)", status)
        with self.lock:
            self.checked[key] = self.checked.get(key, 0) + 1
        error_ptr = "/components/schemas/Error"
        if op is None:
            if status < 400:
                return [f"{what}: {'no path template' if template is None else method + ' is not documented for ' + template}"
                        f" in openapi.json, yet the app answered {status}"]
            resp, resp_ptr = {"content": {"application/json": {"schema": {}}}}, None
        elif status == 405:
            resp, resp_ptr = {"content": {"application/json": {"schema": {}}}}, None
        else:
            responses = op.get("responses", {})
            code = str(status)
            if code not in responses:
                code = f"{status // 100}XX" if f"{status // 100}XX" in responses else "default"
            if code not in responses:
                return [f"{what}: status {status} is not declared for {method} {template} (nor a default)"]
            resp, resp_ptr = self._deref(responses[code], _pointer("paths", template, op_method, "responses", code))
        problems = []
        # declared headers, when present
        for name, hdef in (resp.get("headers") or {}).items():
            hdef, hptr = self._deref(hdef, (resp_ptr or "") + _pointer("headers", name))
            value = h.get(name.lower())
            if value is None:
                if hdef.get("required"):
                    problems.append(f"{what}: required header {name} missing")
                continue
            if "schema" in hdef and resp_ptr is not None:
                sch = hdef["schema"]
                inst = value
                if isinstance(sch, dict) and sch.get("type") == "integer" and re.fullmatch(r"-?\d+", value):
                    inst = int(value)
                problems += [f"{what}: header {p}" for p in self._errors(hptr + "/schema", inst, f"{name}: {value!r}")]
        if method == "HEAD" or body is None:
            return problems  # no body to check (HEAD, or a streamed response nobody read yet)
        content = resp.get("content")
        if not content:
            if body:
                problems.append(f"{what}: declared without a body, got {len(body)} bytes ({ctype or 'no type'})")
            return problems
        media = next((m for m in content if m.split(";")[0].strip().lower() == ctype), None)
        if media is None:
            problems.append(f"{what}: Content-Type {ctype or '(none)'} is not one of {sorted(content)}")
            return problems
        if ctype != "application/json" and not ctype.endswith("+json"):
            return problems  # a declared text type (/metrics): its checks are its tests'
        try:
            instance = json.loads(body)
        except ValueError as e:
            problems.append(f"{what}: body is not JSON ({e}): {body[:200]!r}")
            return problems
        if resp_ptr is None:
            ptr = error_ptr
        elif "schema" in content[media]:
            ptr = resp_ptr + _pointer("content", media, "schema")
        else:
            return problems
        problems += [f"{what}: body {p}" for p in self._errors(ptr, instance, "body")]
        return problems

    def record(self, problems):
        if problems:
            with self.lock:
                self.problems += problems
                self.total_problems += len(problems)

    def take(self):
        with self.lock:
            out, self.problems = self.problems, []
            if self.spec is not None and self.pending:
                pending, self.pending = self.pending, []
            else:
                pending = []
        for method, url, status, headers, body, via in pending:
            out += self.check(method, url, status, headers, body, via)
        return out


SPEC = SpecChecker()


def _checked_send(self, request, **kw):
    r = _original_send(self, request, **kw)
    if SPEC.owns(request.url):
        try:
            body = None if kw.get("stream") else r.content  # (a stream stays the caller's to read)
            SPEC.record(SPEC.check(request.method, request.url, r.status_code, r.headers, body))
        except Exception as e:  # noqa: BLE001 - a broken check must show, not pass silently
            SPEC.record([f"{request.method} {request.url}: the spec check itself failed: {e!r}"])
    return r


_original_send = requests.Session.send


def hook_requests():
    """Every requests.Session (and requests.get & co.) goes through SPEC's check from now on."""
    requests.Session.send = _checked_send


def unhook_requests():
    requests.Session.send = _original_send


def phase_problems(nodeid, phase):
    """The message for the mismatches SPEC recorded during one phase of a test (None: none)."""
    problems = SPEC.take()
    if not problems:
        return None
    return (f"the response(s) below do not match what openapi.json declares ({phase} of {nodeid}):\n  "
            + "\n  ".join(problems))


def summary(checker):
    """The one-line tally for the end of the run (None when nothing was seen)."""
    if not checker.checked and not checker.skipped:
        return None
    n = sum(checker.checked.values())
    return (f"spec check: {n} responses checked against openapi.json ({len(checker.checked)} distinct "
            f"method/path/status), {checker.skipped} not from the app, {checker.total_problems} mismatches")


def write_coverage(checker, path):
    """What was checked (method, path template, status, count) and what was not the app's."""
    with open(path, "w") as f:
        f.write("# responses checked against openapi.json: method, path template, status, count\n")
        for (m, t, s), c in sorted(checker.checked.items(), key=lambda x: (x[0][1], x[0][0], x[0][2])):
            f.write(f"{m:7} {t:50} {s} x{c}\n")
        f.write("# not the application's (no X-Request-Id, no JSON): the web server's own answers\n")
        for (m, t, s), c in sorted(checker.not_app.items()):
            f.write(f"{m:7} {t:50} {s} x{c}\n")
