"""The phases every run and resume shares once its plan is journaled: the Graph client, the run log, the creates
(with their progress), the updates and the follow-ups."""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from graph.client import GraphClient
from provisioning.context import CommandContext
from provisioning.errors import RunFolderLost
from provisioning.exitcodes import ExitStatus
from provisioning.run.audit import AUDIT
from provisioning.run.creates import ApplyEngine, ApplyResult, CreateItem, Progress
from provisioning.run.followups import apply_followups
from provisioning.run.progress import phase_progress
from provisioning.run.rescue import stopped_message
from provisioning.run.restores import apply_restores, pending_restores
from provisioning.run.tap import TapFile, TapOptions
from provisioning.run.updates import (
    apply_updates,
    pending_updates,
)
from provisioning.settings import Settings
from provisioning.store.durable import lost_from
from provisioning.store.folder import RunFolder
from provisioning.store.journal import Journal
from provisioning.store.secrets import PasswordFile, SecretFilter, close_run_log, open_run_log

log = logging.getLogger(__name__)


@contextlib.contextmanager
def run_log(folder: RunFolder, secrets: SecretFilter) -> Iterator[None]:
    """``run.log`` for the duration of a session; an error that ends the session is written to it (AUDIT)."""
    handler = open_run_log(folder.log, secrets)
    AUDIT.addHandler(handler)
    try:
        yield
    except Exception as exc:
        AUDIT.error("fatal error: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        AUDIT.removeHandler(handler)
        close_run_log(handler)


def settings_secrets(settings: Settings) -> list[str]:
    """Secret values held by settings (to keep them out of run.log whatever happens)."""
    return [secret.reveal() for secret in (settings.client_secret, settings.certificate_password)
            if secret is not None and secret.reveal()]


def settings_public(settings: Settings) -> dict[str, Any]:
    """The settings worth recording in the journal, without secrets."""
    out: dict[str, Any] = {}
    for name in ("authority_host", "tenant_id", "client_id", "graph_endpoint", "scope", "cloud", "ca_bundle",
                 "batch_size", "concurrency", "max_writes_per_s"):
        value = getattr(settings, name)
        out[name] = value if isinstance(value, (int, float, bool)) or value is None else str(value)
    out["credential"] = "secret" if settings.client_secret is not None else "certificate"
    return out


def progress_bar(ctx: CommandContext, total: int, no_progress: bool) -> Any:
    """A tqdm bar on the error stream when it is a terminal, else None."""
    if no_progress or not getattr(ctx, "interactive", False) or total <= 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=ctx.err, unit="user", desc="creating", dynamic_ncols=True, smoothing=0.1)


def throttle_counter(client: GraphClient) -> Callable[[], int]:
    """The number of 429 answers the client's write governor has seen so far."""
    governor = client.governor
    return lambda: int(governor.throttle_events)


def execute(ctx: CommandContext, client: GraphClient, journal: Journal, folder: RunFolder,
            items: Sequence[CreateItem], *, passwords: PasswordFile, stop: threading.Event, no_progress: bool,
            fail_on_existing: bool,
            in_doubt: Sequence[int] = (), previous_sends: Mapping[int, int] | None = None,
            written_passwords: Mapping[int, str] | None = None,
            updates: Mapping[int, tuple[str, Mapping[str, Any]]] | None = None,
            update_passwords: Sequence[tuple[int, str, str]] = (), tap: TapOptions | None = None,
            credentials: TapFile | None = None) -> ApplyResult:
    """Send the creates of this session, then the updates (``--existing update``; by default the journal's open
    ones), then the follow-ups; progress on stderr when interactive. ``update_passwords``: generated passwords of
    password resets, written to passwords.csv before their PATCH leaves. ``tap``/``credentials``: the passes of
    ``--credential tap`` and the file they go to."""
    bar = progress_bar(ctx, len(items), no_progress)
    counter = throttle_counter(client)
    lines = ctx.err if bar is None and not no_progress and getattr(ctx, "verbosity", 0) >= 0 else None
    engine = ApplyEngine(client, journal, passwords=passwords, stop=stop,
                         progress=Progress(bar, lines=lines, total=len(items)),
                         fail_on_existing=fail_on_existing, throttled_count=counter)
    try:
        result = engine.run(items, in_doubt=in_doubt, previous_sends=previous_sends,
                            written_passwords=written_passwords)
    finally:
        if bar is not None:
            bar.close()
    if result.fatal is ExitStatus.RUN_FOLDER_LOST and engine.lost is not None:
        raise stopped_message(engine.lost, journal=journal, passwords=passwords, total=len(items),
                              sent=engine.sent, answers=engine.answers, command_line=ctx.command_line,
                              err=ctx.err)
    try:
        if result.fatal is None and not result.interrupted and not stop.is_set():
            todo = pending_updates(journal) if updates is None else updates
            if todo:
                try:
                    passwords.add(list(update_passwords))  # on disk before any PATCH that carries one leaves
                except OSError as exc:
                    raise lost_from(exc, passwords.path) from exc
                passwords.check_intact()
                log.info("updates: %s", apply_updates(client, journal, todo, stop=stop))
            if pending_restores(journal) and not stop.is_set():
                log.info("restores: %s", apply_restores(client, journal, stop=stop))
        run_followups(ctx, client, journal, stop=stop, apply=result, no_progress=no_progress, tap=tap,
                      credentials=credentials)
    except RunFolderLost as lost:
        raise stopped_message(lost, journal=journal, passwords=passwords, total=len(items), sent=engine.sent,
                              answers=engine.answers, command_line=ctx.command_line, err=ctx.err,
                              during="updates and follow-ups") from lost
    return result


def run_followups(ctx: CommandContext, client: GraphClient, journal: Journal, *, stop: threading.Event,
                  apply: ApplyResult | None = None, no_progress: bool = False, tap: TapOptions | None = None,
                  credentials: TapFile | None = None) -> dict[str, int]:
    """After the creates (and updates): the pending follow-ups of every row whose user exists (groups, licences,
    manager), retried through replication lag, with their own progress on stderr (a bar on a terminal, a line
    every 30 s otherwise). Skipped after a fatal stop or Ctrl-C: ``resume`` continues them."""
    if apply is not None and (apply.fatal is not None or apply.interrupted) or stop.is_set():
        return {}
    progress = phase_progress("follow-ups", ctx.err, interactive=bool(getattr(ctx, "interactive", False)),
                              enabled=not no_progress and getattr(ctx, "verbosity", 0) >= 0)
    counts = apply_followups(client, journal, stop=stop, progress=progress, tap=tap, credentials=credentials)
    if counts:
        log.info("follow-ups: %s", counts)
    return counts
