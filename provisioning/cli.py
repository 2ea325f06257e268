"""Bulk-create Microsoft Entra ID users from a roster spreadsheet, through Microsoft Graph: the command line.

The command line only: parse arguments, build settings, call ``provisioning``, and turn errors into one line and
an exit code. Installed as the ``entra-provision`` command (:func:`entry_point`); ``provision.py`` in the
repository folder is a shim that calls :func:`main`. Every command it prints names the program as it was invoked.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol, TextIO, cast

import provisioning
from graph.errors import GraphError
from provisioning.commands import COMMANDS
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError, status_for_exception
from provisioning.exitcodes import EXIT_CODES_HELP, ExitStatus
from provisioning.portable import quote_command
from provisioning.run.permissions import explain_denied
from provisioning.settings import Settings, load_settings

DEFAULT_SANDBOX_DIR = Path(".sandbox")


@dataclass(frozen=True)
class Program:
    """How the tool was invoked: ``prog`` names it in usage and error lines, ``invocation`` starts every command
    it prints (resume hints, the report's retry line)."""

    prog: str
    invocation: tuple[str, ...]


#: ``python provision.py ...`` from the repository folder (the shim).
SHIM = Program("provision.py", ("python", "provision.py"))
#: The installed console script.
INSTALLED = Program("entra-provision", ("entra-provision",))


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


class _VersionAction(argparse.Action):
    """``--version``: argparse's own action, with the version read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=cast(str, kwargs["help"]))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        # stdout, as argparse's own version action
        sys.stdout.write(f"{parser.prog} {provisioning.running_version()}\n")
        parser.exit()


def build_parser(program: Program = SHIM) -> tuple[argparse.ArgumentParser, dict[str, CommandModule]]:
    """The full parser, and the command modules keyed by command name."""
    parser = argparse.ArgumentParser(
        prog=program.prog,
        description="Bulk-create Microsoft Entra ID users from a CSV or Excel roster through Microsoft Graph.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(defaults=True)],
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
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
    sandbox_env = None
    with contextlib.ExitStack() as stack:
        if args.sandbox:
            from sandbox import Sandbox  # loads cryptography (its certificates): only for --sandbox

            sb = stack.enter_context(Sandbox.start(args.sandbox_dir))
            sandbox_env = sb.env()
        yield load_settings(flags=vars(args), environ=os.environ, env_file=args.env_file,
                            config_file=args.config, sandbox_env=sandbox_env)


def _command_line(args: argparse.Namespace, program: Program = SHIM) -> str:
    """How to invoke the tool again with the settings of this invocation, for the resume/retry commands printed
    and recorded: the program as invoked, the settings files and sandbox given, as absolute paths (the command
    works from any folder), quoted for this platform's shell."""
    parts = list(program.invocation)
    for flag, value in (("--env-file", args.env_file), ("--config", args.config)):
        if value is not None:
            parts += [flag, str(Path(value).resolve())]
    if args.sandbox:
        parts.append("--sandbox")
        if args.sandbox_dir != DEFAULT_SANDBOX_DIR:
            parts += ["--sandbox-dir", str(Path(args.sandbox_dir).resolve())]
    return quote_command(parts)


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


#: The common options that take a value (``--env-file F``), for finding where ``sandbox``'s own arguments start.
_VALUE_OPTIONS = ("--env-file", "--config", "--sandbox-dir")


def _sandbox_split(argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """``(the tool's arguments up to the sandbox command, the sandbox's own)`` when the command is ``sandbox``,
    else None. The sandbox's arguments go to :mod:`sandbox.cli` untouched (``sandbox --help``, ``sandbox -h``)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "sandbox":
            return list(argv[: i + 1]), list(argv[i + 1:])
        if not token.startswith("-") or token == "--":
            return None
        exact_flag = token in ("--sandbox", "-v", "--verbose", "-q", "--quiet", "--traceback")
        takes_value = not exact_flag and "=" not in token and token.startswith("--") and len(token) > 2 and any(
            option.startswith(token) for option in _VALUE_OPTIONS)
        i += 2 if takes_value else 1
    return None


def _tolerant_streams() -> None:
    """Make the process's stdout and stderr write a character their encoding lacks as a backslash escape
    (``\\u0141``) instead of failing: a console or a redirected scheduled task on Windows may be cp1252, and a
    roster name such as "Łukasz" must never end a command in a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            with contextlib.suppress(ValueError, OSError):  # a closed or detached stream: leave it as it is
                reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None, program: Program = SHIM) -> int:
    """Run the tool; return the exit status. Any exception that stops a command becomes one line on ``stderr`` and
    its exit status (:func:`provisioning.errors.status_for_exception`), unless ``--traceback`` asks for it.
    ``program`` is how the user invoked it (the shim's ``python provision.py`` unless told otherwise)."""
    if stdout is None or stderr is None:
        _tolerant_streams()
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(program)
    sandbox_split = _sandbox_split(argv)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(sandbox_split[0] if sandbox_split else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)

    if args.command == "sandbox":
        # the sandbox package loads cryptography: only for the sandbox command
        from sandbox.cli import main as sandbox_main

        sandbox_argv = sandbox_split[1] if sandbox_split else args.sandbox_argv
        return sandbox_main(sandbox_argv, stdout=out, stderr=err, prog=f"{program.prog} sandbox")

    _setup_logging(args.verbose, args.quiet, err)
    module = modules[args.command]
    interactive = bool(getattr(err, "isatty", lambda: False)())
    command_line = _command_line(args, program)
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


def exit_without_teardown(status: int) -> NoReturn:
    """Leave the process with ``status`` once :func:`main` has returned, without the interpreter's teardown.

    Every file the tool writes is closed by then (the commands close their journals, reports and locks in ``with``
    blocks); what is left is freeing each object and module one by one, about 0.2 s after a run of a few thousand
    rows. The standard streams and the log handlers are flushed first; no thread but daemons is left running.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said anyway
            stream.flush()
    logging.shutdown()
    os._exit(status)


def entry_point() -> None:
    """The ``entra-provision`` console script."""
    exit_without_teardown(main(program=INSTALLED))
