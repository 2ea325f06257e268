#!/usr/bin/env python3
"""Bulk-create Microsoft Entra ID users from a roster spreadsheet, through Microsoft Graph.

A shim, so that ``python provision.py ...`` works from the repository folder without installing anything; the
command line itself is :mod:`provisioning.cli` (installed as the ``entra-provision`` command).
"""
from __future__ import annotations

from provisioning.cli import exit_without_teardown, main

__all__ = ["main"]

if __name__ == "__main__":
    exit_without_teardown(main())
