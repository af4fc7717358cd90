"""Stopping the processes a test run started: shared by conftest.py and tests/bench/bench.py."""

import os
import signal
import subprocess


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
