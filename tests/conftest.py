"""Shared fixtures. Every test that needs a tenant gets its own sandbox on 127.0.0.1, port 0, real HTTPS."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest


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
