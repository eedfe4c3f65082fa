"""Slow clients are timed out and bounded; normal clients are served throughout (issue 20, item 5).

A real ``eventdock serve`` process (the timeouts live in its HTTP protocol,
``http.connections``), with short timeouts so the test takes seconds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server

SLOW = 300
PARTIAL = b"POST /platform/ingest/v1/events HTTP/1.1\r\nHost: eventdock\r\n"


def bootstrap(url: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
    document = json.loads(out.stdout)
    return document["project"]["id"], document["key"]["token"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    tmp_path = tmp_path_factory.mktemp("connections")
    url = f"sqlite:///{tmp_path}/conn.db"
    project_id, admin = bootstrap(url)
    env = {"EVENTDOCK_HEADER_TIMEOUT": "1.5", "EVENTDOCK_BODY_TIMEOUT": "1.5"}  # the default bound (1,000) is not reached
    with Server(url, env=env, log_dir=tmp_path) as s:
        r = httpx.post(f"{s.url}/api/projects/{project_id}/keys", json={"name": "w", "scopes": ["*"]}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.text
        yield s, {"Authorization": f"Bearer {r.json()['token']}"}


def connect(server: Server, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def closed(sock: socket.socket) -> bool:
    """Whether the server has answered or closed ``sock`` by now (without waiting)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        pass
    return True


def answer(sock: socket.socket, wait: float) -> bytes | None:
    """What the server sent before closing, or None if it is still open after ``wait`` s."""
    sock.settimeout(wait)  # blocking again
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


class Trickle(threading.Thread):
    """Sends one more header byte on every socket every ``every`` s: a slowloris."""

    def __init__(self, socks: list[socket.socket], every: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.socks, self.every, self.stop = socks, every, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            for sock in self.socks:
                try:
                    sock.send(b"X")
                except OSError:
                    pass


def test_slowloris_is_cut_off_and_normal_clients_are_served_throughout(server: tuple[Server, dict[str, str]]) -> None:
    srv, headers = server
    slow = [connect(srv, PARTIAL + b"X-Slow: ") for _ in range(SLOW)]
    trickle = Trickle(slow)
    trickle.start()
    try:
        started = time.monotonic()
        latencies = []
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            while time.monotonic() - started < 3:
                t = time.monotonic()
                r = client.post("/platform/ingest/v1/events", json={"event.name": "normal"}, headers=headers)
                assert r.status_code == 202, r.text
                with httpx.Client(base_url=srv.url, timeout=5) as fresh:  # a new connection each time too
                    assert fresh.get("/healthz").status_code == 200
                latencies.append(time.monotonic() - t)
                time.sleep(0.05)
        assert max(latencies) < 1.0, f"a normal client waited {max(latencies):.2f} s"
        # Every slow connection was answered 408 and closed after the 1.5 s header timeout (3 s have passed).
        time.sleep(0.5)
        assert sum(closed(sock) for sock in slow) == SLOW
        answers = [answer(sock, 1.0) for sock in slow]
        assert all(a is not None and a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    finally:
        trickle.stop.set()
        for sock in slow:
            sock.close()


def test_a_connection_that_sends_nothing_is_closed_silently(server: tuple[Server, dict[str, str]]) -> None:
    srv, _ = server
    with connect(srv) as sock:
        t = time.monotonic()
        assert answer(sock, 5) == b""
        assert 1.2 < time.monotonic() - t < 4


def test_a_slow_body_is_408_after_the_body_timeout(server: tuple[Server, dict[str, str]]) -> None:
    srv, headers = server
    head = (
        b"POST /platform/ingest/v1/events HTTP/1.1\r\nHost: eventdock\r\nContent-Type: application/json\r\n"
        b"Authorization: " + headers["Authorization"].encode() + b"\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(srv, head + b'{"event.name": "sl') as sock:
        t = time.monotonic()
        data = answer(sock, 5)
        assert data is not None and data.startswith(b"HTTP/1.1 408 "), data
        assert 1.2 < time.monotonic() - t < 4


def test_keep_alive_requests_get_a_fresh_header_timeout(server: tuple[Server, dict[str, str]]) -> None:
    srv, _ = server
    with connect(srv, b"GET /healthz HTTP/1.1\r\nHost: eventdock\r\n\r\n") as sock:
        time.sleep(0.5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request starts; its headers never end
        data = answer(sock, 5)
        assert data is not None and data.startswith(b"HTTP/1.1 408 "), data


def test_past_the_bound_the_connection_waiting_longest_is_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bound.db"
    bootstrap(url)
    env = {"EVENTDOCK_HEADER_TIMEOUT": "60", "EVENTDOCK_MAX_CONNECTIONS": "50"}
    with Server(url, env=env, log_dir=tmp_path) as srv:
        slow = []
        try:
            for _ in range(120):
                slow.append(connect(srv, PARTIAL))
                time.sleep(0.002)  # accepted in this order
            with httpx.Client(base_url=srv.url, timeout=5) as client:
                for _ in range(10):
                    t = time.monotonic()
                    assert client.get("/healthz").status_code == 200
                    assert time.monotonic() - t < 1.0
            time.sleep(0.5)
            gone = [closed(sock) for sock in slow]
            # At most 50 open at once: the oldest waiting ones made room, the newest are still open.
            assert sum(gone) >= 120 - 50 + 1, sum(gone)
            assert not any(gone[-40:])
            assert answer(slow[0], 1).startswith(b"HTTP/1.1 408 ")  # type: ignore[union-attr]
        finally:
            for sock in slow:
                sock.close()
