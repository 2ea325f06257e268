"""What every command receives from ``provision.py``: its streams, verbosity and (when it needs a tenant) settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from provisioning.settings import Settings


@dataclass(frozen=True)
class CommandContext:
    """The command's world. Commands write user-facing text to ``out``/``err``, never to the process streams directly.

    ``settings`` is a :class:`provisioning.settings.Settings` for commands with ``NEEDS_TENANT``, else None.
    ``command_line`` is how the user invoked the tool (``python provision.py --sandbox``), so messages can show the
    exact command to resume or retry. ``argv`` is this invocation's arguments (recorded, secrets redacted, in the
    run's audit fields). ``json``: print machine-readable results on ``out`` (``--json``); ``show_all``: print
    every issue instead of the first few (``--all``).
    """

    out: TextIO
    err: TextIO
    verbosity: int = 0
    settings: Settings | None = None
    interactive: bool = False
    command_line: str = "python provision.py"
    argv: tuple[str, ...] = ()
    json: bool = False
    show_all: bool = False

    @property
    def tenant_settings(self) -> Settings:
        """``settings``, for a command with ``NEEDS_TENANT`` (``provision.py`` always gives such a command some)."""
        if self.settings is None:
            raise RuntimeError("a tenant command was given no settings")
        return self.settings
