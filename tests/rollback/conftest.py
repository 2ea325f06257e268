"""The rollback tests use the run tests' ``tool`` fixture (provision.py with its settings only from --env-file)."""
from __future__ import annotations

from tests.run.conftest import tool  # noqa: F401  (the fixture)
