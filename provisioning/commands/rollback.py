"""``rollback RUN_DIR [--yes] [--dry-run]``: undo a run (delete the users it created, revert its updates, remove the
follow-ups it added), after showing the plan and asking on a terminal.

:func:`provisioning.api.start_rollback` does the work; ``resume ROLLBACK_DIR`` continues an interrupted rollback."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus

HELP = "undo a run: delete the users it created, revert its updates, remove its follow-ups (asks first)"
NEEDS_TENANT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``rollback`` options."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder to undo")
    parser.add_argument("--yes", action="store_true",
                        help="roll back without asking (required when there is no terminal to ask on)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read the tenant and write the plan to a rollback folder; send no write")


def _asker(ctx: CommandContext) -> Callable[[str], bool] | None:
    """A question on the terminal (stderr, answered on stdin), or None when there is no terminal to ask on."""
    stdin = sys.stdin
    if not ctx.interactive or stdin is None or not stdin.isatty():
        return None

    def ask(question: str) -> bool:
        ctx.err.write(question)
        ctx.err.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return ask


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Plan, confirm, send, report (Ctrl-C, SIGTERM, SIGHUP stop it cleanly; `resume` continues it)."""
    # provisioning.api loads numpy and requests: imported when the command runs, not for --help
    from provisioning.api import RollbackOptions, Stop, start_rollback

    options = RollbackOptions(yes=args.yes, dry_run=args.dry_run)
    with Stop().signals() as stop:
        return start_rollback(ctx.tenant_settings, args.run_dir, options, confirm=_asker(ctx), stop=stop,
                              console=ctx).status
