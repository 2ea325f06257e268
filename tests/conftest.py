"""Shared fixtures. Every test that needs a tenant gets its own sandbox on 127.0.0.1, port 0, real HTTPS."""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import provision


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """Start sandboxes with the given knobs; all are stopped at the end of the test."""
    from sandbox import Sandbox

    with contextlib.ExitStack() as stack:
        def start(state_dir: Any = None, **knobs: Any) -> Any:
            return stack.enter_context(Sandbox.start(state_dir or tmp_path_factory.mktemp("sandbox"), **knobs))

        yield start


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Any]) -> Any:
    """A sandbox with Graph's default limits and no faults."""
    return sandbox_factory()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., tuple[int, str, str]]:
    """Run provision.py in-process against a sandbox, from inside tmp_path: ``cli(sb, "run", roster, ...)``.

    The machine's REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE are removed so the sandbox's CA is the one that counts.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    def run(sb: Any, *argv: Any) -> tuple[int, str, str]:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        code = provision.main([str(a) for a in argv], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run
