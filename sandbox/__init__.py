"""The sandbox tenant: a local, faithful stand-in for Microsoft Entra ID + Microsoft Graph over HTTPS.

``from sandbox import Sandbox``; see :mod:`sandbox.app` for the API, :mod:`sandbox.config` for the knobs and
``python -m sandbox serve --help`` for the command line. Imports nothing from ``graph`` or ``provisioning``.
"""
from __future__ import annotations

from .app import Sandbox
from .config import CLIENT_ID, DOMAINS, TENANT_ID, TENANT_NAME, Knobs

__all__ = ["Sandbox", "Knobs", "TENANT_ID", "CLIENT_ID", "TENANT_NAME", "DOMAINS"]
