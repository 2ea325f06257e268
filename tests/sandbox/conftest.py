"""Fixtures of the sandbox's own tests (helpers live in sbtools.py)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sbtools import Graph


@pytest.fixture(autouse=True)
def _no_env_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a *session's* verify (psf/requests#3829);
    MSAL sets verify on its session, so such variables would hide the sandbox CA. Tests run as on a clean machine."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def graph(sandbox: Any) -> Iterator[Graph]:
    """A Graph client on the default sandbox."""
    g = Graph(sandbox)
    yield g
    g.close()
