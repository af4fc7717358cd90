"""Processes, ports and waiting: what the suite and tests/bench/bench.py start and how they stop.

Standard library only (tests/bench/bench.py imports stop_process from here).
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

STARTED = []  # every Popen that popen() made, for the last-resort cleanup


def stop_process(p, sig=signal.SIGTERM, timeout=15):
    """Stops a process we started and returns its exit status (SIGKILL after `timeout`)."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            p.send_signal(sig)
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # its own session: only what it started
            except ProcessLookupError:
                pass
            return p.wait(timeout=10)
    return p.returncode


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, what, interval=0.1):
    """Calls fn until it returns a true value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report the last error
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)



def tail(path, n=40):
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-n:])
    except OSError:
        return ""


def popen(args, log, env=None, **kw):
    out = open(log, "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True, **kw)
    out.close()
    STARTED.append(p)
    return p


def process_table():
    """{pid: (ppid, argv0)} of every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            continue  # zombies are not running workers
        table[int(d)] = (ppid, argv0)
    return table


def children(pid):
    return sorted(p for p, (pp, _) in process_table().items() if pp == pid)


def descendants(pid, argv0_basename=None):
    table = process_table()
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        for p, (pp, a0) in table.items():
            if pp == cur:
                todo.append(p)
                if argv0_basename is None or os.path.basename(a0) == argv0_basename:
                    found.append(p)
    return sorted(found)

