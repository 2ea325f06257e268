"""``--notify ADDRESS --notify-from UPN``: mail a run's summary, with ``results.xlsx`` attached, at the end of a run.

The mail goes through Graph ``POST /users/{from}/sendMail`` (application permission ``Mail.Send``) with the same
client and credentials as the run. It carries the counts by status, the duration and throughput, the run folder
and the command that continues (``resume``) or re-runs the failures (``retry``), and ``results.xlsx`` as a base64
``fileAttachment`` when it fits Graph's inline limit (3 MB per sendMail request; a larger workbook is left out and
the body says where it is). ``passwords.csv`` is never attached and no password is ever put in the message.

A notification is a courtesy: its failure is logged and returned as a :class:`NotifyResult` whose ``warning`` the
caller prints; it never raises for a Graph or file error and never changes the run's outcome or exit status.

Integration (``run``/``resume``)::

    add_notify_arguments(parser)                        # in add_arguments: --notify, --notify-from
    maybe_notify(ctx, args, folder.path, client=client)  # after results.xlsx and summary.json are written

``watch`` mails every file's outcome instead (:func:`notify_watch_result`), once the file is in done/ or failed/
(or deferred), the outcome in the subject (:func:`watch_subject`): ``entra-provision: staff.csv: 25 created,
2 invalid — done``, ``entra-provision: staff.csv: failed: the roster has no header row``; the invalid rows are
listed in the body. An unusable roster, which never made a run folder, is mailed too (without attachment).
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import GraphError
from graph.odata import user_path
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.portable import quote_arg
from provisioning.store.folder import RunFolder

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: Graph's limit for attachments sent inline with sendMail (larger ones need an upload session).
MAX_ATTACHMENT_BYTES = 3 * 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The order the counts are shown in; any other state in the summary follows.
STATUS_ORDER = ("created", "updated", "skipped", "failed", "invalid", "pending", "sending", "unknown", "planned")


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    """Who gets the mail and whose mailbox sends it."""

    recipients: tuple[str, ...]
    sender: str

    @classmethod
    def parse(cls, to: str, sender: str) -> NotifyOptions:
        """``to`` is one address or several separated by commas (or semicolons); blanks are dropped."""
        recipients = tuple(a.strip() for a in to.replace(";", ",").split(",") if a.strip())
        return cls(recipients=recipients, sender=sender.strip())


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """What became of the notification. ``warning`` is the line to show the user when it was not sent."""

    sent: bool
    recipients: tuple[str, ...]
    subject: str
    attached: bool
    detail: str = ""
    error_code: str = ""
    request_id: str = ""

    @property
    def warning(self) -> str | None:
        """``None`` when sent, else one line for stderr."""
        return None if self.sent else f"warning: the notification was not sent: {self.detail}"


def add_notify_arguments(parser: argparse.ArgumentParser) -> None:
    """``--notify ADDR[,ADDR...]`` and ``--notify-from UPN`` (for ``run``/``resume``)."""
    parser.add_argument("--notify", metavar="ADDR", default=None,
                        help="when the run ends, mail its summary and results.xlsx to these addresses "
                             "(comma-separated); needs --notify-from and the Mail.Send permission")
    parser.add_argument("--notify-from", metavar="UPN", default=None,
                        help="the user (UPN or id) whose mailbox sends the --notify mail")


def check_notify_arguments(args: argparse.Namespace) -> str | None:
    """A usage message when only one of ``--notify``/``--notify-from`` is given, else None."""
    to, sender = getattr(args, "notify", None), getattr(args, "notify_from", None)
    if bool(to) != bool(sender):
        return "--notify and --notify-from go together: give the recipients and the sending mailbox"
    if to and not NotifyOptions.parse(to, sender or "").recipients:
        return "--notify: no address given"
    return None


def require_notify_arguments(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` when :func:`check_notify_arguments` finds a problem."""
    problem = check_notify_arguments(args)
    if problem:
        raise UsageError(problem)


def load_summary(run_dir: Path) -> dict[str, Any]:
    """The run's ``summary.json`` (empty when missing or unreadable)."""
    try:
        data = json.loads((RunFolder(Path(run_dir)).summary_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("notification: cannot read %s: %s", RunFolder(Path(run_dir)).summary_json, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _counts(summary: Mapping[str, Any]) -> dict[str, int]:
    raw = summary.get("counts") or {}
    counts = {k: int(raw.get(k, 0)) for k in ("created", "failed")}
    counts.update({k: int(v) for k, v in raw.items() if k not in counts})
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order))))


def next_step(summary: Mapping[str, Any], run_dir: Path, command_line: str) -> str:
    """The command that continues the run (interrupted or stopped) or re-runs its failures; '' when all went well."""
    status = int(summary.get("exit_status", 0) or 0)
    quoted = quote_arg(str(run_dir))
    if status in (3, 4, 130) or summary.get("fatal"):
        return f"{command_line} resume {quoted}"
    counts = summary.get("counts") or {}
    if any(int(counts.get(k, 0) or 0) for k in ("failed", "invalid", "unknown")):
        return f"{command_line} retry {quoted}"
    return ""


def subject_line(summary: Mapping[str, Any], run_dir: Path) -> str:
    """``Provisioning run <name>: 25 created, 0 failed, 1 skipped`` (+ ``[interrupted]``/``[dry run]``)."""
    parts = ", ".join(f"{v} {k}" for k, v in _counts(summary).items())
    status = int(summary.get("exit_status", 0) or 0)
    tags = (" [dry run]" if summary.get("dry_run") else "") + (" [interrupted]" if status == 130 else "") \
        + (" [stopped]" if status in (3, 4) else "")
    return f"Provisioning run {Path(run_dir).name}: {parts}{tags}"


def _summary_html(summary: Mapping[str, Any], run_dir: Path, command_line: str) -> str:
    """The counts table, the facts of the run and the next step (HTML)."""
    e = html.escape
    counts = _counts(summary)
    rows = "".join(f"<tr><td>{e(k)}</td><td style='text-align:right'>{v}</td></tr>" for k, v in counts.items())
    facts = [
        ("Roster", summary.get("roster") or ""),
        ("Rows", summary.get("rows", "")),
        ("Duration", f"{float(summary.get('session_duration_s') or 0):.1f} s"),
        ("Users/s", summary.get("users_per_s", 0)),
        ("Created this session", summary.get("created_this_session", 0)),
        ("Throttled (429)", summary.get("throttled_429") if summary.get("throttled_429") is not None else "n/a"),
        ("Exit status", summary.get("exit_status", "")),
        ("Run folder", str(run_dir)),
    ]
    if summary.get("fatal"):
        facts.append(("Stopped because", summary["fatal"]))
    fact_rows = "".join(f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts)
    step = next_step(summary, run_dir, command_line)
    step_html = f"<p>Next: <code>{e(step)}</code></p>" if step else "<p>Nothing left to do for this run.</p>"
    return (f"<table border='1' cellpadding='4' cellspacing='0'><tr><th>Status</th><th>Rows</th></tr>{rows}"
            f"</table><br><table cellpadding='4'>{fact_rows}</table>{step_html}")


def mail_request(recipients: tuple[str, ...], subject: str, content: str, *,
                 save_to_sent_items: bool = True) -> dict[str, Any]:
    """The sendMail request body of an HTML message (pure)."""
    message: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "HTML", "content": content},
        "toRecipients": [{"emailAddress": {"address": a}} for a in recipients],
    }
    return {"message": message, "saveToSentItems": save_to_sent_items}


def post_mail(client: GraphClient, sender: str, body: Mapping[str, Any]) -> None:
    """``POST /users/{sender}/sendMail``; raises :class:`graph.errors.GraphError` when Graph refuses it."""
    client.request("POST", f"{user_path(sender)}/sendMail", json=dict(body))


def _mail(options: NotifyOptions, subject: str, content: str, attachment: bytes | None) -> dict[str, Any]:
    body = mail_request(options.recipients, subject, content)
    if attachment is not None:
        body["message"]["attachments"] = [{"@odata.type": "#microsoft.graph.fileAttachment",
                                           "name": RunFolder.RESULTS_XLSX, "contentType": XLSX_TYPE,
                                           "contentBytes": base64.b64encode(attachment).decode("ascii")}]
    return body


def build_message(options: NotifyOptions, summary: Mapping[str, Any], run_dir: Path, *, command_line: str,
                  attachment: bytes | None, attachment_note: str) -> dict[str, Any]:
    """The sendMail request body (pure). ``attachment`` is results.xlsx's bytes, or None with ``attachment_note``
    saying why it is not attached."""
    e = html.escape
    subject = subject_line(summary, run_dir)
    content = (f"<html><body><h2>{e(subject)}</h2>{_summary_html(summary, run_dir, command_line)}"
               f"<p>{e(attachment_note)}</p>{PASSWORDS_NOTE}</body></html>")
    return _mail(options, subject, content, attachment)


PASSWORDS_NOTE = "<p>Generated passwords are in passwords.csv in the run folder; they are never mailed.</p>"
#: Exchange keeps subjects up to 255 characters; a long reason is cut well before that.
MAX_SUBJECT = 200
MAX_LISTED_ISSUES = 50


def _reason(name: str, message: str) -> str:
    """The first line of an error message without ``error:`` and without the file's path (the subject names it)."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    line = re.sub(r"^(error|warning):\s*", "", line)
    return re.sub(rf"^(?:.*[/\\])?{re.escape(name)}:\s*", "", line)


def watch_subject(result: Any) -> str:
    """``entra-provision: staff.csv: 25 created, 2 invalid — done``; ``... failed: the roster has no header row``;
    ``... deferred, retry in 60 s: <why>`` (``result``: a :class:`provisioning.watcher.FileResult`)."""
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    counts = sorted(((k, int(v)) for k, v in (result.counts or {}).items() if int(v or 0)),
                    key=lambda kv: order.get(kv[0], len(order)))
    parts = ", ".join(f"{v} {k}" for k, v in counts)
    verdict = result.verdict if result.verdict != "deferred" else f"deferred, retry in {result.retry_in_s:g} s"
    reason = _reason(result.roster, result.message) if result.verdict != "done" else ""
    text = f"entra-provision: {result.roster}: " + (f"{parts} \u2014 {verdict}" if parts else verdict) \
        + (f": {reason}" if reason else "")
    return text if len(text) <= MAX_SUBJECT else text[:MAX_SUBJECT - 1].rstrip() + "\u2026"


def build_watch_message(options: NotifyOptions, result: Any, summary: Mapping[str, Any], *, command_line: str,
                        attachment: bytes | None, attachment_note: str) -> dict[str, Any]:
    """The sendMail body for one file the daemon finished (or deferred): where the file went and why, the rows
    that were not created, and the run's summary when it made one (pure)."""
    e = html.escape
    subject = watch_subject(result)
    where = {"done": "The roster and its run folder are in", "failed": "The roster and what the run left are in",
             "deferred": "The roster is kept, to be retried, in"}.get(result.verdict, "The roster is in")
    place = result.destination or result.kept_in or ""
    parts = [f"<html><body><h2>{e(subject)}</h2>",
             f"<p>{e(where)} <code>{e(str(place))}</code> (exit status {int(result.status)}).</p>"]
    if result.message and result.verdict != "done":
        parts.append(f"<pre>{e(result.message)}</pre>")
    if result.issues:
        listed = "".join(f"<li>{e(line)}</li>" for line in result.issues[:MAX_LISTED_ISSUES])
        more = len(result.issues) - MAX_LISTED_ISSUES
        parts.append(f"<h3>{len(result.issues)} invalid rows were not created</h3><ul>{listed}</ul>"
                     + (f"<p>... and {more} more: see the Invalid sheet of results.xlsx.</p>" if more > 0 else "")
                     + "<p>Fix them and drop them in a new roster, or edit the Invalid sheet and use "
                       f"<code>{e(command_line)} retry</code>.</p>")
    if summary and result.run_dir is not None:
        parts.append(_summary_html(summary, result.run_dir, command_line))
    if result.run_dir is not None:
        parts.append(f"<p>{e(attachment_note)}</p>{PASSWORDS_NOTE}")
    parts.append("</body></html>")
    return _mail(options, subject, "".join(parts), attachment)


def _attachment(run_dir: Path, limit: int) -> tuple[bytes | None, str]:
    path = RunFolder(Path(run_dir)).results_xlsx
    try:
        size = path.stat().st_size
        if size > limit:
            return None, (f"results.xlsx ({size:,} bytes) is larger than the {limit:,}-byte attachment limit and "
                          f"is not attached: it is at {path}")
        return path.read_bytes(), "The full report, results.xlsx, is attached."
    except FileNotFoundError:
        return None, f"results.xlsx was not written for this run; the run folder is {run_dir}"
    except OSError as exc:
        return None, f"results.xlsx could not be read ({exc.strerror or exc}); it is at {path}"


def send_notification(client: GraphClient, options: NotifyOptions, run_dir: Path, *,
                      summary: Mapping[str, Any] | None = None, command_line: str = "python provision.py",
                      max_attachment_bytes: int = MAX_ATTACHMENT_BYTES) -> NotifyResult:
    """Send the run's summary mail through ``client`` (a :class:`graph.client.GraphClient`); never raises for a
    Graph error or an unreadable file: the returned result says what happened."""
    run_dir = Path(run_dir)
    summary = dict(summary) if summary is not None else load_summary(run_dir)
    subject = subject_line(summary, run_dir)
    if not options.recipients or not options.sender:
        return NotifyResult(False, options.recipients, subject, False, "no recipient or no sender given")
    data, note = _attachment(run_dir, max_attachment_bytes)
    body = build_message(options, summary, run_dir, command_line=command_line, attachment=data,
                         attachment_note=note)
    return _post(client, options, body, subject, data is not None, note)


def _post(client: GraphClient, options: NotifyOptions, body: dict[str, Any], subject: str, attached: bool,
          note: str) -> NotifyResult:
    """POST the sendMail request; a Graph error is returned in the result, never raised."""
    try:
        post_mail(client, options.sender, body)
    except GraphError as exc:
        log.warning("notification to %s from %s failed: %s", ", ".join(options.recipients), options.sender, exc)
        return NotifyResult(False, options.recipients, subject, False, str(exc), error_code=exc.code,
                            request_id=exc.request_id)
    log.info("notification sent to %s from %s%s", ", ".join(options.recipients), options.sender,
             " with results.xlsx" if attached else " without attachment")
    return NotifyResult(True, options.recipients, subject, attached, note)


def send_watch_notification(client: GraphClient, options: NotifyOptions, result: Any, *,
                            command_line: str = "python provision.py",
                            max_attachment_bytes: int = MAX_ATTACHMENT_BYTES) -> NotifyResult:
    """Mail the outcome of one file of ``watch`` (a :class:`provisioning.watcher.FileResult`), with the run's
    results.xlsx when it made one; never raises for a Graph error or an unreadable file."""
    subject = watch_subject(result)
    if not options.recipients or not options.sender:
        return NotifyResult(False, options.recipients, subject, False, "no recipient or no sender given")
    run_dir = result.run_dir
    has_summary = run_dir is not None and RunFolder(run_dir).summary_json.is_file()
    summary: dict[str, Any] = load_summary(run_dir) if run_dir is not None and has_summary else {}
    if summary and result.destination is not None:  # the roster was moved beside its run folder
        summary["roster"] = str(result.destination / result.roster)
    data, note = _attachment(run_dir, max_attachment_bytes) if run_dir is not None else (None, "")
    body = build_watch_message(options, result, summary, command_line=command_line, attachment=data,
                               attachment_note=note)
    return _post(client, options, body, subject, data is not None, note)


def maybe_notify(ctx: CommandContext, args: argparse.Namespace, run_dir: Path, *, client: GraphClient | None = None,
                 summary: Mapping[str, Any] | None = None) -> NotifyResult | None:
    """At the end of ``run``/``resume``: notify when ``--notify`` and ``--notify-from`` were given.

    ``client`` is the run's Graph client (one is made from ``ctx.settings`` when None); ``summary`` defaults to the
    run folder's ``summary.json``. A failure is written to ``ctx.err`` as a warning and returned; nothing raises
    (any unexpected error is logged too), so the run's outcome and exit status stay what they were.
    """
    command_line = getattr(ctx, "command_line", "python provision.py")
    return _notify(ctx, args, client, lambda c, options: send_notification(
        c, options, Path(run_dir), summary=summary, command_line=command_line))


def notify_watch_result(ctx: CommandContext, args: argparse.Namespace, result: Any, *,
                        client: GraphClient | None = None) -> NotifyResult | None:
    """``watch --notify``: mail one file's outcome (see :func:`send_watch_notification`); like
    :func:`maybe_notify`, a failure is a warning on ``ctx.err`` and never raises."""
    command_line = getattr(ctx, "command_line", "python provision.py")
    return _notify(ctx, args, client, lambda c, options: send_watch_notification(
        c, options, result, command_line=command_line))


def _own_client(ctx: CommandContext) -> GraphClient:
    """A Graph client from the command's settings, for a caller that handed none (``watch``, a library caller)."""
    from graph.client import GraphClient  # deferred, like provisioning.api's: msal and requests load when a mail goes

    return GraphClient(ctx.tenant_settings.graph_config())


def _notify(ctx: CommandContext, args: argparse.Namespace, client: GraphClient | None,
            send: Callable[[GraphClient, NotifyOptions], NotifyResult]) -> NotifyResult | None:
    to, sender = getattr(args, "notify", None), getattr(args, "notify_from", None)
    if not to and not sender:
        return None
    options = NotifyOptions.parse(to or "", sender or "")
    own: GraphClient | None = None
    try:
        if client is None:
            client = own = _own_client(ctx)
        result = send(client, options)
    except Exception as exc:  # noqa: BLE001 - a notification must never change the run's outcome
        log.warning("notification failed: %s: %s", type(exc).__name__, exc)
        result = NotifyResult(False, options.recipients, "", False, f"{type(exc).__name__}: {exc}")
    finally:
        if own is not None:
            own.close()
    if result.warning:
        ctx.err.write(result.warning + "\n")
    elif ctx.verbosity >= 0:
        ctx.out.write(f"notification sent to {', '.join(result.recipients)}\n")
    return result
