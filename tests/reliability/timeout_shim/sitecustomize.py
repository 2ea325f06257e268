"""Test-only start-up hook: shorten the Graph client's read timeouts in a subprocess of the reliability harness.

The tool has no setting for its read timeouts (``graph.config.Timeouts``: 60 s, 120 s for ``$batch``), so a sandbox
"slow" fault can only outlast them by stalling a run for two minutes. The harness puts this folder first on
``PYTHONPATH`` and sets ``RELIABILITY_READ_TIMEOUT_S``; Python imports ``sitecustomize`` at start-up, and this
changes the *defaults* of ``Timeouts`` (connect stays 10 s) before the tool builds its configuration. Nothing else
is touched: the same requests, MSAL and retry code runs, only the deadline is shorter.
"""
from __future__ import annotations

import os


def _shorten() -> None:
    value = os.environ.get("RELIABILITY_READ_TIMEOUT_S")
    if not value:
        return
    seconds = float(value)
    from graph.config import Timeouts

    connect = Timeouts.__init__.__defaults__[0]  # type: ignore[index]
    Timeouts.__init__.__defaults__ = (connect, seconds, seconds)  # type: ignore[attr-defined]


_shorten()
