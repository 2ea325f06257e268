#!/usr/bin/env python3
"""Bulk-create Microsoft Entra ID users from a roster spreadsheet, through Microsoft Graph.

The command line only: parse arguments, build settings, call ``provisioning``, and turn errors into one line and
an exit code. Run ``python provision.py --help``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shlex
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO, cast

from graph.errors import GraphError
from provisioning.commands import COMMANDS
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError, status_for_exception
from provisioning.exitcodes import EXIT_CODES_HELP, ExitStatus
from provisioning.run.permissions import explain_denied

if TYPE_CHECKING:
    from provisioning.settings import Settings

PROG = "provision.py"
DEFAULT_SANDBOX_DIR = Path(".sandbox")


class CommandModule(Protocol):
    """What each module of ``provisioning.commands`` defines (see its package docstring)."""

    HELP: str
    NEEDS_TENANT: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, ctx: CommandContext, args: argparse.Namespace) -> ExitStatus: ...


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the command (``--sandbox run X`` and ``run X --sandbox``)."""
    d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--env-file", type=Path, default=d(None), metavar="F",
                   help="read settings from this .env file (default: ./.env when it exists)")
    g.add_argument("--config", type=Path, default=d(None), metavar="F",
                   help="read settings from a parameters.json (Microsoft daemon-sample layout)")
    g.add_argument("--sandbox", action="store_true", default=d(False),
                   help="run against the local sandbox tenant (started in-process) instead of a real tenant")
    g.add_argument("--sandbox-dir", type=Path, default=d(DEFAULT_SANDBOX_DIR), metavar="D",
                   help="where the in-process sandbox keeps its state (default: ./.sandbox)")
    g.add_argument("-v", "--verbose", action="count", default=d(0), help="more log output (-vv for debug)")
    g.add_argument("-q", "--quiet", action="store_true", default=d(False), help="only errors on stderr")
    g.add_argument("--traceback", action="store_true", default=d(False),
                   help="show the Python traceback of an error (for bug reports)")
    return p


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, CommandModule]]:
    """The full parser, and the command modules keyed by command name."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bulk-create Microsoft Entra ID users from a CSV or Excel roster through Microsoft Graph.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(defaults=True)],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules: dict[str, CommandModule] = {}
    after = _common_options(defaults=False)
    for name, module_name in COMMANDS:
        module = cast(CommandModule, importlib.import_module(f"provisioning.commands.{module_name}"))
        sp = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[after],
                            epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sp)
        modules[name] = module
    sb = sub.add_parser("sandbox", help="run or reset the local sandbox tenant (see `sandbox --help`)",
                        add_help=False)
    sb.add_argument("sandbox_argv", nargs=argparse.REMAINDER)
    return parser, modules


class _CliLogHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`_setup_logging` installs (its own type, so a second ``main`` call replaces it)."""


def _setup_logging(verbosity: int, quiet: bool, stream: TextIO) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _CliLogHandler):
            root.removeHandler(old)
    handler = _CliLogHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.level != logging.NOTSET else level)
    for noisy in ("urllib3", "msal"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@contextlib.contextmanager
def _tenant_settings(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for a command that talks to a tenant; with --sandbox, the in-process sandbox's."""
    from provisioning.settings import load_settings

    sandbox_env = None
    with contextlib.ExitStack() as stack:
        if args.sandbox:
            from sandbox import Sandbox

            sb = stack.enter_context(Sandbox.start(args.sandbox_dir))
            sandbox_env = sb.env()
        yield load_settings(flags=vars(args), environ=os.environ, env_file=args.env_file,
                            config_file=args.config, sandbox_env=sandbox_env)


def _command_line(args: argparse.Namespace) -> str:
    """How to invoke the tool again with the settings of this invocation, for the resume/retry commands printed
    and recorded: the settings files and sandbox given, as absolute paths (the command works from any folder)."""
    parts = ["python", "provision.py"]
    for flag, value in (("--env-file", args.env_file), ("--config", args.config)):
        if value is not None:
            parts += [flag, shlex.quote(str(Path(value).resolve()))]
    if args.sandbox:
        parts.append("--sandbox")
        if args.sandbox_dir != DEFAULT_SANDBOX_DIR:
            parts += ["--sandbox-dir", shlex.quote(str(Path(args.sandbox_dir).resolve()))]
    return " ".join(parts)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt like Ctrl-C (one line and exit 130, never a silent death with 143) wherever no
    command installed its own handling (``run``, ``resume``, ``retry`` and ``watch`` install a
    :class:`provisioning.api.Stop`: they stop cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {n: signal.signal(getattr(signal, n), interrupt) for n in names}
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the tool; return the exit status. Any exception that stops a command becomes one line on ``stderr`` and
    its exit status (:func:`provisioning.errors.status_for_exception`), unless ``--traceback`` asks for it."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)

    if args.command == "sandbox":
        from sandbox.cli import main as sandbox_main

        return sandbox_main(args.sandbox_argv, stdout=out, stderr=err, prog=f"{PROG} sandbox")

    _setup_logging(args.verbose, args.quiet, err)
    module = modules[args.command]
    interactive = bool(getattr(err, "isatty", lambda: False)())
    command_line = _command_line(args)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_signals_interrupt())
            settings = stack.enter_context(_tenant_settings(args)) if module.NEEDS_TENANT else None
            ctx = CommandContext(out=out, err=err, verbosity=-1 if args.quiet else args.verbose,
                                 settings=settings, interactive=interactive, command_line=command_line,
                                 argv=tuple(argv))
            return int(module.main(ctx, args))
    except KeyboardInterrupt:
        if args.traceback:
            raise
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED
    except ProvisionError as exc:
        if args.traceback:
            raise
        err.write(f"error: {exc}\n")
        return status_for_exception(exc)
    except GraphError as exc:
        if args.traceback:
            raise
        if exc.status == 403 and exc.call:
            method, _, path = exc.call.partition(" ")
            err.write(f"error: {explain_denied(method, path, GraphError.__str__(exc))}\n")
        else:
            err.write(f"error: {exc}\n")
        return status_for_exception(exc)
    except OSError as exc:
        if args.traceback:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        err.write(f"error: {where}{exc.strerror or exc}\n")
        return status_for_exception(exc)
    except sqlite3.Error as exc:
        if args.traceback:
            raise
        err.write(f"error: a run journal could not be read or written: {exc}\n")
        return status_for_exception(exc)
    except Exception as exc:  # noqa: BLE001 - the command line's last resort: any failure becomes one line
        if args.traceback:
            raise
        err.write(f"internal error: {type(exc).__name__}: {exc} (run again with --traceback and report it)\n")
        return status_for_exception(exc)


if __name__ == "__main__":
    sys.exit(main())
