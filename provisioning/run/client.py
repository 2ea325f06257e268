"""The run's Graph client, from the settings and the run's rate options: light to import (no numpy, no pandas), so
that the ``run`` command makes it, and asks for its token, while the rest of the tool loads."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from graph.client import GraphClient
from graph.config import GraphConfig
from provisioning.settings import Settings


def make_client(settings: Settings, *, batch_size: int | None = None, max_writes_per_s: float | None = None,
                write_burst: float | None = None) -> GraphClient:
    """The Graph client for a run, with the run's ``--batch-size``, ``--max-writes-per-s`` and ``--write-burst``."""
    config = graph_config(settings)
    changes: dict[str, Any] = {}
    if batch_size:
        changes["batch_size"] = int(batch_size)
    governor = config.governor
    if max_writes_per_s:
        governor = replace(governor, rate_per_s=float(max_writes_per_s))
    if write_burst:
        governor = replace(governor, burst=float(write_burst))
    if governor != config.governor:
        changes["governor"] = governor
    config = replace(config, **changes) if changes else config
    return GraphClient(config)  # its write governor starts full, like the quota's own bucket


def graph_config(settings: Settings | GraphConfig) -> GraphConfig:
    """The :class:`graph.config.GraphConfig` of the settings (or the one given)."""
    return settings if isinstance(settings, GraphConfig) else settings.graph_config()
