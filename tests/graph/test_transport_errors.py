"""A connection failure is told apart by the exceptions requests wraps, not by their text: refused before anything
was sent (safe to send again) or cut after the request left (a write's outcome unknown)."""
from __future__ import annotations

import socket
import threading

import pytest
import requests

from graph.http import _never_connected


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_never_sent_anything():
    with pytest.raises(requests.exceptions.ConnectionError) as exc:
        requests.post(f"http://127.0.0.1:{_closed_port()}/users", json={}, timeout=5)
    assert _never_connected(exc.value)


def test_a_connection_closed_after_the_request_left_may_have_sent_it():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_nothing() -> None:
        conn, _ = server.accept()
        conn.recv(65536)  # the request arrived
        conn.close()

    thread = threading.Thread(target=answer_nothing)
    thread.start()
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as exc:
            requests.post(f"http://127.0.0.1:{server.getsockname()[1]}/users", json={}, timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert not _never_connected(exc.value)
