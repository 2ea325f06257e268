"""One module per sub-command. Each defines::

    HELP: str                                    # one line for `provision.py --help`
    NEEDS_TENANT: bool                           # whether the command needs credentials / --sandbox
    def add_arguments(parser) -> None            # its own options
    def main(ctx: CommandContext, args) -> ExitStatus

``provision.py`` registers the modules listed in COMMANDS, in this order.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from provisioning.context import CommandContext
from provisioning.report.notify import NotifyOptions, require_notify_arguments

COMMANDS: tuple[tuple[str, str], ...] = (
    # (command name, module under provisioning.commands)
    ("check", "check"),
    ("export-users", "export_users"),
    ("run", "run"),
    ("resume", "resume"),
    ("retry", "retry"),
    ("rollback", "rollback"),
    ("validate", "validate"),
    ("template", "template"),
    ("watch", "watch"),
)


def _row_number(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a row number from 1, as Excel or the editor shows it")
    return value


def add_header_row_argument(parser: argparse.ArgumentParser) -> None:
    """``--header-row N`` (``validate``, ``run``): the row holding the column names, for a roster with title rows
    above them that the automatic search (the first row with known column names) gets wrong."""
    parser.add_argument("--header-row", type=_row_number, metavar="N", default=None,
                        help="the row number (from 1) of the column names, when title rows stand above them "
                             "(default: the first row with known column names)")


def notify_options(args: argparse.Namespace) -> NotifyOptions | None:
    """``--notify``/``--notify-from`` (``run``, ``resume``), checked by :func:`require_notify_arguments`, or None."""
    require_notify_arguments(args)
    return NotifyOptions.parse(args.notify, args.notify_from) if getattr(args, "notify", None) else None


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--all`` and ``--json`` (``run``, ``resume``, ``retry``): how the end-of-run summary is printed."""
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="print every rejected row's reason (default: a summary by code and the first 40)")
    parser.add_argument("--json", action="store_true",
                        help="print summary.json on stdout at the end (for scripts); the human summary goes to "
                             "stderr")


def output_context(ctx: CommandContext, args: argparse.Namespace) -> CommandContext:
    """The console with ``--all``/``--json`` applied."""
    return replace(ctx, json=bool(getattr(args, "json", False)), show_all=bool(getattr(args, "show_all", False)))
