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
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from graph.errors import GraphError

from .errors import UsageError

log = logging.getLogger(__name__)

#: Graph's limit for attachments sent inline with sendMail (larger ones need an upload session).
MAX_ATTACHMENT_BYTES = 3 * 1024 * 1024
RESULTS_XLSX = "results.xlsx"
SUMMARY_JSON = "summary.json"
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
        data = json.loads((Path(run_dir) / SUMMARY_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("notification: cannot read %s: %s", Path(run_dir) / SUMMARY_JSON, exc)
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
    quoted = shlex.quote(str(run_dir))
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


def build_message(options: NotifyOptions, summary: Mapping[str, Any], run_dir: Path, *, command_line: str,
                  attachment: bytes | None, attachment_note: str) -> dict[str, Any]:
    """The sendMail request body (pure). ``attachment`` is results.xlsx's bytes, or None with ``attachment_note``
    saying why it is not attached."""
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
    content = (f"<html><body><h2>{e(subject_line(summary, run_dir))}</h2>"
               f"<table border='1' cellpadding='4' cellspacing='0'><tr><th>Status</th><th>Rows</th></tr>{rows}"
               f"</table><br><table cellpadding='4'>{fact_rows}</table>{step_html}"
               f"<p>{e(attachment_note)}</p>"
               "<p>Generated passwords are in passwords.csv in the run folder; they are never mailed.</p>"
               "</body></html>")
    message: dict[str, Any] = {
        "subject": subject_line(summary, run_dir),
        "body": {"contentType": "HTML", "content": content},
        "toRecipients": [{"emailAddress": {"address": a}} for a in options.recipients],
    }
    if attachment is not None:
        message["attachments"] = [{"@odata.type": "#microsoft.graph.fileAttachment", "name": RESULTS_XLSX,
                                   "contentType": XLSX_TYPE,
                                   "contentBytes": base64.b64encode(attachment).decode("ascii")}]
    return {"message": message, "saveToSentItems": True}


def _attachment(run_dir: Path, limit: int) -> tuple[bytes | None, str]:
    path = Path(run_dir) / RESULTS_XLSX
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


def send_notification(client: Any, options: NotifyOptions, run_dir: Path, *, summary: Mapping[str, Any] | None = None,
                      command_line: str = "python provision.py",
                      max_attachment_bytes: int = MAX_ATTACHMENT_BYTES) -> NotifyResult:
    """Send the run's summary mail through ``client`` (a :class:`graph.client.GraphClient`); never raises for a
    Graph error or an unreadable file: the returned result says what happened."""
    from graph.odata import user_path

    run_dir = Path(run_dir)
    summary = dict(summary) if summary is not None else load_summary(run_dir)
    subject = subject_line(summary, run_dir)
    if not options.recipients or not options.sender:
        return NotifyResult(False, options.recipients, subject, False, "no recipient or no sender given")
    data, note = _attachment(run_dir, max_attachment_bytes)
    body = build_message(options, summary, run_dir, command_line=command_line, attachment=data,
                         attachment_note=note)
    try:
        client.request("POST", f"{user_path(options.sender)}/sendMail", json=body)
    except GraphError as exc:
        log.warning("notification to %s from %s failed: %s", ", ".join(options.recipients), options.sender, exc)
        return NotifyResult(False, options.recipients, subject, False, str(exc), error_code=exc.code,
                            request_id=exc.request_id)
    log.info("notification sent to %s from %s%s", ", ".join(options.recipients), options.sender,
             " with results.xlsx" if data is not None else " without attachment")
    return NotifyResult(True, options.recipients, subject, data is not None, note)


def maybe_notify(ctx: Any, args: argparse.Namespace, run_dir: Path, *, client: Any = None,
                 summary: Mapping[str, Any] | None = None) -> NotifyResult | None:
    """At the end of ``run``/``resume``: notify when ``--notify`` and ``--notify-from`` were given.

    ``client`` is the run's Graph client (one is made from ``ctx.settings`` when None); ``summary`` defaults to the
    run folder's ``summary.json``. A failure is written to ``ctx.err`` as a warning and returned; nothing raises
    (any unexpected error is logged too), so the run's outcome and exit status stay what they were.
    """
    to, sender = getattr(args, "notify", None), getattr(args, "notify_from", None)
    if not to and not sender:
        return None
    options = NotifyOptions.parse(to or "", sender or "")
    own = None
    try:
        if client is None:
            from .runner import make_client

            client = own = make_client(ctx.settings)
        result = send_notification(client, options, Path(run_dir), summary=summary,
                                   command_line=getattr(ctx, "command_line", "python provision.py"))
    except Exception as exc:  # noqa: BLE001 - a notification must never change the run's outcome
        log.warning("notification failed: %s: %s", type(exc).__name__, exc)
        result = NotifyResult(False, options.recipients, "", False, f"{type(exc).__name__}: {exc}")
    finally:
        if own is not None:
            own.close()
    if result.warning:
        ctx.err.write(result.warning + "\n")
    elif getattr(ctx, "verbosity", 0) >= 0:
        ctx.out.write(f"notification sent to {', '.join(result.recipients)}\n")
    return result
