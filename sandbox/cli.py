"""``sandbox serve`` and ``sandbox reset`` (also reachable as ``python provision.py sandbox ...`` and
``python -m sandbox ...``). The only module of the package that writes to its streams.

Options of ``serve`` (defaults are Graph's own figures and no faults):
``--port P`` ``--state D`` ``--write-quota N/SECONDS`` ``--ru-quota N/SECONDS`` ``--tenant-wide-write-quota
N/SECONDS`` ``--tenant-size S|M|L`` ``--latency-ms MEAN[:JITTER]`` ``--replication-lag-ms MS``
``--token-lifetime SECONDS`` ``--fault KIND=RATE`` (repeatable; KIND 503, reset, slow, lost, token500,
token429) ``--slow-ms MS``
``--users N`` ``--seed N`` ``--roles R1,R2`` ``--sku PART=SEATS`` (repeatable: seats of a SKU of
``GET /subscribedSkus``; an unknown part number adds a SKU) ``--mailbox-requires-license``
``--lenient-assign-license`` (accept assignLicense bodies without ``removeLicenses``/``addLicenses``)
``--secret-expired`` (the client secret is expired: AADSTS7000222; the certificate still works)
``--tap-policy state=enabled|disabled,min=M,max=M,default=M,length=N,once=true|false`` (the Temporary Access Pass
policy; settings not given keep their defaults, see :mod:`sandbox.tap`).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from .config import FAULT_KINDS, make_knobs

DEFAULT_STATE = Path(".sandbox")


def _fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}")
    try:
        value = float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number between 0 and 1, got {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("rate must be between 0 and 1")
    return kind, value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of milliseconds, 0 or more")
    return value


def _sku(text: str) -> tuple[str, int]:
    part, sep, seats = text.partition("=")
    if not sep or not part.strip() or not seats.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected PART=SEATS (e.g. ENTERPRISEPACK=50), got {text!r}")
    return part.strip().upper(), int(seats)


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The argument parser of the sandbox commands."""
    p = argparse.ArgumentParser(prog=prog, description="The local sandbox tenant (Entra ID + Microsoft Graph).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("serve", help="serve HTTPS on loopback until SIGTERM/SIGINT")
    s.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    s.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    s.add_argument("--state", type=Path, default=DEFAULT_STATE, metavar="D", help="state folder (default .sandbox)")
    s.add_argument("--write-quota", metavar="N/SECONDS", help="per app+tenant writes (default 3000/150)")
    s.add_argument("--ru-quota", metavar="N/SECONDS", help="per app+tenant resource units (default by tenant size)")
    s.add_argument("--tenant-wide-write-quota", metavar="N/SECONDS", help="tenant-wide writes (default 18000/300)")
    s.add_argument("--tenant-size", choices=["S", "M", "L"], help="tenant size (default: by user count)")
    s.add_argument("--latency-ms", metavar="MEAN[:JITTER]", help="added latency per Graph answer")
    s.add_argument("--replication-lag-ms", type=_milliseconds, metavar="MS", help="new users invisible to reads for MS")
    s.add_argument("--token-lifetime", type=int, metavar="SECONDS", help="access token lifetime (default 3599)")
    s.add_argument("--fault", type=_fault, action="append", default=[], metavar="KIND=RATE",
                   help="inject faults: 503, reset, slow or lost (Graph), token500 or token429 (token endpoint), "
                        "with a probability per request")
    s.add_argument("--slow-ms", type=_milliseconds, metavar="MS", help="delay of a 'slow' answer (default 30000)")
    s.add_argument("--users", type=int, metavar="N", help="pre-seeded users")
    s.add_argument("--seed", type=int, metavar="N", help="random seed for faults and latency")
    s.add_argument("--roles", metavar="R1,R2", help="application permissions granted (comma-separated)")
    s.add_argument("--directory-roles", metavar="ID1,ID2",
                   help="directory role template ids the app holds (default: User Administrator; empty: none)")
    s.add_argument("--sku", type=_sku, action="append", default=[], metavar="PART=SEATS",
                   help="seats of a subscribed SKU, e.g. ENTERPRISEPACK=50 (repeatable; new part numbers add SKUs)")
    s.add_argument("--mailbox-requires-license", action="store_true", default=None,
                   help="sendMail needs a sender holding an Exchange licence")
    s.add_argument("--lenient-assign-license", action="store_true",
                   help="accept assignLicense without removeLicenses/addLicenses")
    s.add_argument("--secret-expired", action="store_true",
                   help="the client secret has expired (token requests with it: AADSTS7000222)")
    s.add_argument("--tap-policy", metavar="K=V,...",
                   help="the Temporary Access Pass policy: state=enabled|disabled, min, max, default (minutes), "
                        "length, once=true|false (default: enabled, 60..480, 60, 8, false)")
    r = sub.add_parser("reset", help="empty the sandbox's state (users, memberships, licences, managers, mail)")
    r.add_argument("--state", type=Path, default=DEFAULT_STATE, metavar="D", help="state folder (default .sandbox)")
    return p


def knobs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Knob keyword arguments from parsed ``serve`` options (only those given)."""
    knobs: dict[str, Any] = {}
    for name in ("write_quota", "ru_quota", "tenant_wide_write_quota", "tenant_size", "latency_ms",
                 "replication_lag_ms", "token_lifetime", "slow_ms", "users", "seed"):
        value = getattr(args, name)
        if value is not None:
            knobs[name] = value
    if args.fault:
        knobs["faults"] = dict(args.fault)
    if args.sku:
        knobs["skus"] = dict(args.sku)
    if args.mailbox_requires_license:
        knobs["mailbox_requires_license"] = True
    if args.secret_expired:
        knobs["secret_expired"] = True
    if args.lenient_assign_license:
        knobs["assign_license_requires_both"] = False
    if args.tap_policy is not None:
        knobs["tap_policy"] = args.tap_policy
    if args.roles is not None:
        knobs["roles"] = tuple(r.strip() for r in args.roles.split(",") if r.strip())
    if args.directory_roles is not None:
        knobs["directory_roles"] = tuple(r.strip() for r in args.directory_roles.split(",") if r.strip())
    return knobs


def _serve(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .app import Sandbox

    knobs = knobs_from_args(args)
    try:
        make_knobs(None, **knobs)
    except (ValueError, TypeError) as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    stop = threading.Event()
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with Sandbox.start(args.state, port=args.port, host=args.host, **knobs) as sb:
            stdout.write(f"sandbox listening on {sb.base_url} (tenant {sb.tenant_id}); "
                         f"env file {args.state / 'sandbox.env'}\n")
            stdout.flush()
            while not stop.wait(0.2):
                pass
    except OSError as exc:
        stderr.write(f"error: cannot serve: {exc}\n")
        return 3
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _reset(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .app import DB_FILE
    from .store import Store

    path = args.state / DB_FILE
    if not path.exists():
        stdout.write(f"nothing to reset in {args.state}\n")
        return 0
    store = Store(path)
    try:
        n = store.count()
        store.clear()
    finally:
        store.close()
    stdout.write(f"sandbox state in {args.state} reset ({n} users removed)\n")
    return 0


def main(argv: list[str], *, stdout: TextIO, stderr: TextIO, prog: str) -> int:
    """Run a sandbox sub-command; returns the exit status."""
    parser = build_parser(prog)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse wrote usage/help to the given streams
        return int(exc.code or 0)
    if args.command == "serve":
        return _serve(args, stdout, stderr)
    return _reset(args, stdout, stderr)
