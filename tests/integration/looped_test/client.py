"""Clients of the application: a raw FastCGI client (to talk to a pool without a web server) and
Stream, a bounded stream of HTTP GETs from a few threads."""

import struct
import socket
import threading
import time

import requests

from .procs import wait_until


_FCGI_BEGIN, _FCGI_END, _FCGI_PARAMS, _FCGI_STDIN, _FCGI_STDOUT, _FCGI_STDERR = 1, 3, 4, 5, 6, 7


def _fcgi_record(rtype, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def _fcgi_len(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def fcgi_request(sock_path, params, body=b"", timeout=15):
    """One FastCGI RESPONDER request. Returns (status, {lower-case header: value}, body bytes)."""
    pairs = b"".join(_fcgi_len(len(k.encode())) + _fcgi_len(len(v.encode())) + k.encode() + v.encode()
                     for k, v in params.items())
    msg = _fcgi_record(_FCGI_BEGIN, struct.pack("!HB5x", 1, 0))
    for i in range(0, len(pairs), 65535):
        msg += _fcgi_record(_FCGI_PARAMS, pairs[i:i + 65535])
    msg += _fcgi_record(_FCGI_PARAMS, b"")
    for i in range(0, len(body), 65535):
        msg += _fcgi_record(_FCGI_STDIN, body[i:i + 65535])
    msg += _fcgi_record(_FCGI_STDIN, b"")
    out = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(msg)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            done = False
            while len(buf) >= 8:
                _, rtype, _, clen, plen = struct.unpack("!BBHHBx", buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
                if rtype == _FCGI_STDOUT:
                    out += content
                elif rtype == _FCGI_END:
                    done = True
            if done:
                break
    head, _, rbody = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode(errors="replace").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, rbody


def fcgi_params(method, uri, remote_user=None, headers=None, body=b"", content_type=None):
    path, _, query = uri.partition("?")
    p = {"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "localhost",
         "SERVER_PORT": "80", "REQUEST_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1",
         "REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": "/v1",
         "PATH_INFO": path[3:], "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
         "HTTP_HOST": "localhost"}
    if content_type:
        p["CONTENT_TYPE"] = content_type
    if remote_user is not None:
        p["REMOTE_USER"] = remote_user
        p["AUTH_TYPE"] = "Basic"
    for k, v in (headers or {}).items():
        p["HTTP_" + k.upper().replace("-", "_")] = v
    return p



class Stream:
    """`total` GETs of `path` from `threads` threads, each with its own connection(s)."""

    def __init__(self, deployment, path="/v1/_test/hello", total=400, threads=4):
        self.d, self.path, self.total, self.nthreads = deployment, path, total, threads
        self.results = []  # (index, status or exception text, X-Worker)
        self._lock = threading.Lock()
        self._next = 0
        self._threads = []

    def _take(self):
        with self._lock:
            i = self._next
            self._next += 1
            return i

    def _run(self):
        s = requests.Session()
        try:
            while True:
                i = self._take()
                if i >= self.total:
                    return
                try:
                    r = s.get(self.d.url + self.path, timeout=15)
                    res = (i, r.status_code, r.headers.get("X-Worker"))
                except requests.RequestException as e:
                    res = (i, f"{type(e).__name__}: {e}", None)
                    s.close()
                    s = requests.Session()
                with self._lock:
                    self.results.append(res)
        finally:
            s.close()

    def start(self):
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def done_count(self):
        with self._lock:
            return len(self.results)

    def wait_done(self, n, timeout=30):
        wait_until(lambda: self.done_count() >= n, timeout, f"{n} requests of the stream", interval=0.01)

    def join(self, timeout=120):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "request stream did not finish in time"
        return self

    def failures(self):
        return [r for r in self.results if r[1] != 200]
