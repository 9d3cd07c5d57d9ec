"""Helpers for the web tests: a real `python -m digitpipe.web` in a subprocess, and the headers every
answer must carry."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

from tests.helpers import ENV, ROOT

SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def assert_secure(response: httpx.Response) -> None:
    """The answer carries the security headers, with a policy that loads nothing from elsewhere."""
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def http_client(url: str, timeout: float = 60) -> httpx.Client:
    """An httpx client that, like a browser, sends without Nagle's delay (httpx writes a request's headers
    and body separately, which would otherwise wait for the server's delayed ACK)."""
    nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=url, timeout=timeout, transport=nodelay)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(model: Path, *options: str, open_files: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start `python -m digitpipe.web` (with ``options``, and allowed at most ``open_files`` file descriptors if
    given) and wait until it answers; returns it and its URL."""
    port = free_port()

    def as_from_a_terminal() -> None:
        import resource
        import signal

        # Ctrl-C as from a terminal: a test run started in the background (`cmd &` in a script) ignores SIGINT,
        # and a child inherits that
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if open_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = subprocess.Popen([sys.executable, "-m", "digitpipe.web", "--port", str(port), "--model", str(model),
                             *options], preexec_fn=as_from_a_terminal,
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "api/status", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()) from None
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(f"{url} did not answer within 60 s")
    return proc, url
