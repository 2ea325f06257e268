"""``resume RUN_DIR``: continue an interrupted run from its journal, without creating anyone twice.

:func:`provisioning.api.resume_run` does the work."""
from __future__ import annotations

import argparse
from pathlib import Path

from provisioning.bulk import loading_libraries
from provisioning.commands import add_output_arguments, notify_options, output_context
from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments

HELP = "continue an interrupted run from its journal (rows in doubt are looked up before anything is re-sent)"
NEEDS_TENANT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``resume`` options."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder printed by `run`")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_output_arguments(parser)
    add_notify_arguments(parser)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Resume: check the roster and the tenant, reconcile the rows in doubt, send the rest (creates, updates,
    follow-ups), report over the whole run."""
    with loading_libraries():  # a bulk step, the libraries then frozen (provisioning.bulk)
        # provisioning.api loads numpy and requests: imported when the command runs, not for --help
        from provisioning.api import ResumeOptions, Stop, is_rollback, resume_rollback, resume_run

    if is_rollback(args.run_dir):  # a rollback folder (inside its run folder): continue the rollback
        with Stop().signals() as stop:
            return resume_rollback(ctx.tenant_settings, args.run_dir, stop=stop, console=ctx).status
    options = ResumeOptions(progress=not args.no_progress, notify=notify_options(args))
    with Stop().signals() as stop:
        console = output_context(ctx, args)
        return resume_run(ctx.tenant_settings, args.run_dir, options, stop=stop, console=console).status
