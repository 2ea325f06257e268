"""Reliability harness: a run SIGKILLed at random points and resumed, against a faulty sandbox in its own process.

Used by ``tests/reliability/test_kill_resume_faults.py`` (a fast subset, in CI) and ``bench/reliability.py`` (the
full size: 3,000 rows, 10 kills). :func:`run_scenario` does everything and returns a :class:`Outcome` whose
``violations`` list says, one line each, which guarantee was broken (empty when all held):

1. the sandbox runs as ``python -m sandbox serve`` with 503s, resets, created-but-response-lost and slow answers,
   a short token lifetime, replication lag, some pre-seeded users and a write quota scaled to the roster size;
2. a roster of valid rows (generated and given passwords), invalid rows and rows naming pre-existing users;
3. ``provision.py run`` in a subprocess, SIGKILLed once a seeded-random number of rows reached a final state in the
   journal (polled read-only), then ``provision.py resume`` SIGKILLed the same way, until ``kills`` kills are done;
   a last ``resume`` runs to completion;
4. checks: every valid row created exactly once (GET /users; the sandbox's ``users_created``), every roster row
   exactly one final status, ``results.csv`` == ``journal.sqlite`` == tenant (object id per UPN), no row failed.

So that a "slow" answer really outlasts the client's deadline without two-minute stalls, the subprocesses get
``PROVISION_READ_TIMEOUT=read_timeout_s`` (a ``$batch`` waits twice that), below the sandbox's ``slow_ms``.
Every process started here is killed in a ``finally``; every wait is bounded.
"""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msal
import requests

from sandbox import process as sandbox_process

ROOT = Path(__file__).resolve().parents[1]
#: requests lets these override a session's ``verify``; the tool must use only the sandbox's CA bundle.
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
#: Settings a leaked environment could carry into the tool (the subprocess gets the sandbox's only).
TOOL_ENV_PREFIXES = ("AZURE_", "GRAPH_", "PROVISION_")
FINAL_STATES = ("created", "skipped", "failed", "invalid", "updated")
HEADER = ["givenName", "surname", "displayName", "userPrincipalName", "password", "employeeId"]


@dataclass(frozen=True)
class Scenario:
    """The knobs of one reliability scenario. ``write_rate`` None: scaled so the creates take ~``target_s``."""

    rows: int = 3000
    kills: int = 10
    seed: int = 7
    invalid_every: int = 50  # one invalid row in this many
    existing: int = 10  # rows naming users pre-seeded in the tenant (skipped)
    given_password_every: int = 3  # one row in this many has its password in the roster
    fault_503: float = 0.05
    fault_reset: float = 0.02
    fault_lost: float = 0.02
    fault_slow: float = 0.01
    slow_ms: float = 5000.0
    read_timeout_s: float = 2.0  # PROVISION_READ_TIMEOUT of the subprocesses ($batch: twice that, < slow_ms)
    token_lifetime: int = 20
    replication_lag_ms: float = 2000.0
    latency_ms: str = "15:10"
    write_rate: float | None = None
    batch_size: int | None = None  # the run's --batch-size (None: the tool's default, 20)
    kill_span: float = 0.7  # kills fall within this share of the creates; the last session does the rest, so it
    #                         runs long enough to outlive its access token (token renewal under load)
    target_s: float = 25.0
    final_timeout_s: float = 300.0
    session_timeout_s: float = 300.0

    @property
    def rate(self) -> float:
        """Writes per second of the sandbox's app+tenant quota, and the tool's governor ceiling."""
        return self.write_rate or max(30.0, round(self.rows / self.target_s))


@dataclass
class Outcome:
    """What a scenario did and which guarantees it broke."""

    scenario: Scenario
    kill_targets: list[int] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)  # {"session", "at_final_rows", "after_s"}
    sessions: int = 0
    final_exit: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    final_stderr: str = ""

    @property
    def ok(self) -> bool:
        """True when every guarantee held."""
        return not self.violations

    final_token_requests: int = 0  # token requests made by the last (uninterrupted) session
    final_session_s: float = 0.0

    @property
    def token_renewals(self) -> int:
        """Token requests of the last session beyond its first: how often it outlived its access token."""
        return max(0, self.final_token_requests - 1)

    def describe(self) -> str:
        """A multi-line report: the reproduction (seed, kill points), the figures, and every violation."""
        s = self.scenario
        lines = [
            f"reliability: {s.rows} rows, {s.kills} kills requested, seed {s.seed}, faults 503={s.fault_503} "
            f"reset={s.fault_reset} lost={s.fault_lost} slow={s.fault_slow} (slow {s.slow_ms:.0f} ms > client "
            f"read timeout {s.read_timeout_s} s), token lifetime {s.token_lifetime} s, replication lag "
            f"{s.replication_lag_ms:.0f} ms, write quota {s.rate:.0f}/s, batch size {s.batch_size or 20}",
            f"kill targets (rows in a final state): {self.kill_targets}",
            "kills done: " + ", ".join(f"#{k['session']}@{k['at_final_rows']} rows/{k['after_s']:.1f}s"
                                       for k in self.kills),
            f"sessions: {self.sessions} (run + resumes); final exit status {self.final_exit}; "
            f"wall time {self.duration_s:.1f} s",
            f"results: {dict(sorted(self.counts.items()))}; expected {dict(sorted(self.expected.items()))}",
            f"sandbox: users_created={self.stats.get('users_created')} requests={self.stats.get('requests')} "
            f"faults={self.stats.get('faults')} throttled={self.stats.get('throttled')} "
            f"token_requests={self.stats.get('token_requests')} (the last session, {self.final_session_s:.1f} s: "
            f"{self.final_token_requests}, i.e. {self.token_renewals} renewals)",
        ]
        lines += [f"VIOLATION: {v}" for v in self.violations] or ["all guarantees held"]
        if self.violations and self.final_stderr:
            lines.append("final session stderr (tail):\n" + self.final_stderr[-2000:])
        return "\n".join(lines)


@dataclass(frozen=True)
class RosterSpec:
    """The roster written for a scenario and the status each row must end with."""

    path: Path
    expected: dict[int, tuple[str, str]]  # row -> (upn lower-case, "created" | "skipped" | "invalid")
    given: frozenset[int]  # valid rows whose password is in the roster (not in passwords.csv)


def write_roster(path: Path, s: Scenario) -> RosterSpec:
    """``s.rows`` data rows: valid (generated or given passwords), invalid, and pre-existing users (``seed.user``)."""
    expected: dict[int, tuple[str, str]] = {}
    given_rows: set[int] = set()
    existing_rows = set(random.Random(s.seed).sample(range(s.rows), min(s.existing, s.rows)))
    seeded = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(s.rows):
            row = i + 2  # the header is line 1, as the user sees it in an editor
            if i in existing_rows:
                seeded += 1
                upn = f"seed.user{seeded:05d}@contoso.com"
                w.writerow([f"Seed{seeded}", "User", f"Seed {seeded} User", upn, "", f"S{seeded:06d}"])
                expected[row] = (upn, "skipped")
            elif s.invalid_every and i % s.invalid_every == s.invalid_every - 1:
                upn = f"rel{i:05d}.@contoso.com"  # a '.' right before '@' is refused by Entra
                w.writerow([f"Bad{i}", f"Row{i}", f"Bad{i} Row{i}", upn, "", f"E{i:06d}"])
                expected[row] = (upn, "invalid")
            else:
                upn = f"rel{i:05d}@contoso.com"
                given = s.given_password_every and i % s.given_password_every == 0
                password = f"Rel-Given-{i:05d}-Pw!" if given else ""
                if given:
                    given_rows.add(row)
                w.writerow([f"Given{i}", f"Sur{i}", f"Given{i} Sur{i}", upn, password, f"E{i:06d}"])
                expected[row] = (upn, "created")
    return RosterSpec(path, expected, frozenset(given_rows))


def start_sandbox(state: Path, s: Scenario) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``python -m sandbox serve`` with the scenario's faults; returns the process and its sandbox.env values."""
    rate = s.rate
    args = ["--write-quota", f"{int(rate * 3)}/3", "--tenant-wide-write-quota", f"{int(rate * 12)}/6",
            "--latency-ms", s.latency_ms, "--replication-lag-ms", str(s.replication_lag_ms),
            "--token-lifetime", str(s.token_lifetime), "--slow-ms", str(s.slow_ms), "--seed", str(s.seed),
            "--users", str(s.existing),
            "--fault", f"503={s.fault_503}", "--fault", f"reset={s.fault_reset}",
            "--fault", f"lost={s.fault_lost}", "--fault", f"slow={s.fault_slow}"]
    with open(state.parent / "sandbox.stderr", "wb") as err_file:  # a file: a full pipe would stall the server
        return sandbox_process.serve(state, args, env=clean_env(), stderr=err_file)


def clean_env() -> dict[str, str]:
    """This process's environment without CA overrides or leaked tool settings."""
    return {k: v for k, v in os.environ.items()
            if k not in CA_ENV and not k.startswith(TOOL_ENV_PREFIXES)}


def tool_env(sandbox: dict[str, str], s: Scenario) -> dict[str, str]:
    """The environment of a tool subprocess: the sandbox's settings and a short read timeout."""
    env = clean_env()
    env.update(sandbox)
    env["PYTHONPATH"] = str(ROOT)
    env["PROVISION_READ_TIMEOUT"] = str(s.read_timeout_s)
    return env


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate (then kill) ``proc`` and reap it; bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def final_rows(journal: Path) -> int:
    """Rows in a final state, read from the journal read-only (0 while it does not exist or is locked)."""
    if not journal.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=2)
        try:
            marks = ",".join("?" * len(FINAL_STATES))
            return int(conn.execute(f"SELECT COUNT(*) FROM rows WHERE state IN ({marks})",
                                    FINAL_STATES).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def kill_targets(s: Scenario, first_final: int) -> list[int]:
    """``s.kills`` increasing counts of final rows at which to SIGKILL, spread over the creates (seeded).

    ``first_final``: rows final before anything is sent (skipped + invalid). Duplicate counts are allowed: a
    second kill at the same count kills the resume during its start-up or reconciliation.
    """
    span = max(1, int((s.rows - first_final) * s.kill_span))
    rng = random.Random(s.seed * 7919 + s.rows)
    return sorted(first_final + rng.randint(1, span) for _ in range(s.kills))


def run_scenario(s: Scenario, work: Path, log: Any = None) -> Outcome:
    """Run the whole scenario in ``work`` (a fresh folder) and check the guarantees."""
    started = time.monotonic()
    out = Outcome(s)
    work.mkdir(parents=True, exist_ok=True)
    spec = write_roster(work / "roster.csv", s)
    out.expected = dict(Counter(status for _, status in spec.expected.values()))
    run = work / "run"
    out.run_dir = run
    sb, env = start_sandbox(work / "sandbox", s)
    child: subprocess.Popen[Any] | None = None
    try:
        first_final = out.expected.get("skipped", 0) + out.expected.get("invalid", 0)
        out.kill_targets = kill_targets(s, first_final)
        argv = [sys.executable, str(ROOT / "provision.py"), "run", str(spec.path), "--out", str(run),
                "--no-progress", "--max-writes-per-s", str(s.rate)]
        if s.batch_size:
            argv += ["--batch-size", str(s.batch_size)]
        for target in out.kill_targets:
            out.sessions += 1
            err_path = work / f"session-{out.sessions:02d}.stderr"  # a file: a full pipe would stall the tool
            with open(err_path, "wb") as err_file:
                child = subprocess.Popen(argv, cwd=work, env=tool_env(env, s), stdout=subprocess.DEVNULL,
                                         stderr=err_file)
            t0 = time.monotonic()
            reached = _wait_for(child, run / "journal.sqlite", target, t0 + s.session_timeout_s)
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                out.kills.append({"session": out.sessions, "at_final_rows": reached,
                                  "after_s": time.monotonic() - t0})
                if log:
                    log(f"  SIGKILL #{len(out.kills)} of session {out.sessions} at {reached} final rows "
                        f"(target {target}) after {time.monotonic() - t0:.1f} s")
            else:
                err = err_path.read_text(encoding="utf-8", errors="replace")
                if child.returncode not in (0, 1):
                    out.violations.append(f"session {out.sessions} exited {child.returncode} before its kill "
                                          f"point: {err.strip()[-500:]}")
            stop_process(child)
            child = None
            if (run / "journal.sqlite").exists():
                argv = [sys.executable, str(ROOT / "provision.py"), "resume", str(run), "--no-progress"]
        tokens_before = int(_get_json(env, "/_sandbox/stats")["token_requests"])
        t0 = time.monotonic()
        child = subprocess.Popen(argv, cwd=work, env=tool_env(env, s), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        out.sessions += 1
        try:
            _, err = child.communicate(timeout=s.final_timeout_s)
        except subprocess.TimeoutExpired:
            out.violations.append(f"the final session did not finish within {s.final_timeout_s:.0f} s")
            err = ""
        out.final_exit = child.returncode
        out.final_stderr = err
        stop_process(child)
        child = None
        out.final_session_s = time.monotonic() - t0
        out.stats = _get_json(env, "/_sandbox/stats")
        out.final_token_requests = int(out.stats["token_requests"]) - tokens_before
        time.sleep(s.replication_lag_ms / 1000.0 + 0.5)  # users created < lag ago are invisible to GET /users
        tenant = list_users(env)
        out.violations += check(spec, run, tenant, out)
    finally:
        if child is not None:
            child.kill()
            stop_process(child)
        stop_process(sb)
        out.duration_s = time.monotonic() - started
    return out


def _wait_for(proc: subprocess.Popen[Any], journal: Path, target: int, deadline: float) -> int:
    """Poll until ``target`` rows are final, the process ends, or ``deadline``; returns the last count seen."""
    seen = final_rows(journal)
    while seen < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = final_rows(journal)
    return seen


def check(spec: RosterSpec, run: Path, tenant: dict[str, list[dict[str, Any]]], out: Outcome) -> list[str]:
    """The guarantees, as a list of violations (empty when all hold)."""
    bad: list[str] = []
    exp_rows = set(spec.expected)
    want_created = sum(1 for _, st in spec.expected.values() if st == "created")
    if out.final_exit != 1:  # the roster has invalid rows: 1 is the only right answer
        bad.append(f"final exit status {out.final_exit}, expected 1 (invalid rows, nothing else wrong)")
    try:
        with open(run / "results.csv", encoding="utf-8-sig", newline="") as fh:
            lines = list(csv.DictReader(fh))
    except OSError as exc:
        return bad + [f"results.csv unreadable: {exc}"]
    rows = Counter(int(r["row"]) for r in lines)
    dupes = sorted(r for r, n in rows.items() if n > 1)
    if dupes:
        bad.append(f"rows with more than one line in results.csv: {dupes[:20]}")
    if set(rows) != exp_rows:
        bad.append(f"results.csv rows differ from the roster: missing {sorted(exp_rows - set(rows))[:20]}, "
                   f"extra {sorted(set(rows) - exp_rows)[:20]}")
    results = {int(r["row"]): r for r in lines}
    out.counts = dict(Counter(r["status"] for r in lines))
    wrong = [(row, results[row]["status"], want, results[row]["errorCode"], results[row]["message"][:120])
             for row, (_, want) in sorted(spec.expected.items())
             if row in results and results[row]["status"] != want]
    if wrong:
        bad.append(f"{len(wrong)} rows ended with the wrong status (row, got, want, code, message): {wrong[:10]}")

    conn = sqlite3.connect(f"file:{run / 'journal.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        journal = {int(r): (st, oid or "") for r, st, oid in conn.execute("SELECT row, state, object_id FROM rows")}
    finally:
        conn.close()
    if set(journal) != exp_rows:
        bad.append(f"journal rows differ from the roster ({len(journal)} vs {len(exp_rows)})")
    mismatch = [(row, journal.get(row), (r["status"], r["objectId"])) for row, r in sorted(results.items())
                if journal.get(row) != (r["status"], r["objectId"] or "")]
    if mismatch:
        bad.append(f"{len(mismatch)} rows differ between journal and results.csv: {mismatch[:10]}")

    twice = sorted(upn for upn, users in tenant.items() if len(users) > 1)
    if twice:
        bad.append(f"{len(twice)} UPNs exist more than once in the tenant: {twice[:10]}")
    invalid_there, missing, other_id = [], [], []
    for row, (upn, want) in sorted(spec.expected.items()):
        users = tenant.get(upn.lower(), [])
        if want == "invalid":
            if users:
                invalid_there.append(row)
        elif not users:
            missing.append(row)
        elif len(users) == 1 and row in results and results[row]["objectId"] != users[0]["id"]:
            other_id.append((row, results[row]["objectId"], users[0]["id"]))
    if invalid_there:
        bad.append(f"{len(invalid_there)} invalid rows exist in the tenant: rows {invalid_there[:20]}")
    if missing:
        bad.append(f"{len(missing)} valid rows have no user in the tenant: rows {missing[:20]}")
    if other_id:
        bad.append(f"{len(other_id)} rows' results.csv object id is not the tenant's (row, results, tenant): "
                   f"{other_id[:10]}")
    extra = sorted(set(tenant) - {u.lower() for u, _ in spec.expected.values()})
    if extra:
        bad.append(f"{len(extra)} tenant users not from the roster: {extra[:10]}")
    if out.stats.get("users_created") != want_created:
        bad.append(f"the sandbox created {out.stats.get('users_created')} users, expected exactly {want_created}")

    pw = run / "passwords.csv"
    if pw.exists():
        with open(pw, encoding="utf-8-sig", newline="") as fh:
            pw_rows = Counter(int(r[0]) for r in list(csv.reader(fh))[1:] if r)
        generated = {row for row, (_, st) in spec.expected.items() if st == "created"} - spec.given
        if set(pw_rows) != generated or any(n != 1 for n in pw_rows.values()):
            bad.append(f"passwords.csv rows: {len(pw_rows)} (dupes {sum(n > 1 for n in pw_rows.values())}), "
                       f"expected one line for each of {len(generated)} generated-password rows")
    return bad


def _session(env: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = env["PROVISION_CA_BUNDLE"]
    return session


def _get_json(env: dict[str, str], path: str) -> dict[str, Any]:
    with _session(env) as session:
        r = session.get(env["GRAPH_ENDPOINT"] + path, timeout=30)
        r.raise_for_status()
        return r.json()


def list_users(env: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every tenant user by lower-case UPN (a list: more than one is a duplicate), through paged GET /users.

    The sandbox's faults hit these reads too: each page is retried (bounded) on 5xx, resets and timeouts.
    """
    with _session(env) as session:
        app = msal.ConfidentialClientApplication(
            env["AZURE_CLIENT_ID"], client_credential=env["AZURE_CLIENT_SECRET"],
            authority=f"{env['AZURE_AUTHORITY_HOST']}/{env['AZURE_TENANT_ID']}", http_client=session,
            instance_discovery=False)
        scope = [f"{env['GRAPH_ENDPOINT']}/.default"]
        users: dict[str, list[dict[str, Any]]] = {}
        url: str | None = f"{env['GRAPH_ENDPOINT']}/v1.0/users?$select=id,userPrincipalName&$top=999"
        while url:
            page = _get_page(session, app, scope, url)
            for u in page.get("value", []):
                users.setdefault(u["userPrincipalName"].lower(), []).append(u)
            url = page.get("@odata.nextLink")
        return users


def _get_page(session: requests.Session, app: Any, scope: list[str], url: str) -> dict[str, Any]:
    for _attempt in range(30):
        token = app.acquire_token_for_client(scopes=scope)
        try:
            r = session.get(url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=3)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
            continue
        if r.status_code == 200:
            return r.json()
        if r.status_code in (429, 500, 502, 503, 504):
            time.sleep(float(r.headers.get("Retry-After", "0.2")))
            continue
        r.raise_for_status()
    raise RuntimeError(f"GET {url}: no answer after 30 attempts")


def outcome_json(out: Outcome) -> str:
    """The outcome's figures as JSON (for bench/README.md)."""
    return json.dumps({"rows": out.scenario.rows, "kills": len(out.kills), "sessions": out.sessions,
                       "kill_targets": out.kill_targets, "counts": out.counts, "duration_s": round(out.duration_s, 1),
                       "users_created": out.stats.get("users_created"), "faults": out.stats.get("faults"),
                       "token_requests": out.stats.get("token_requests"), "token_renewals": out.token_renewals,
                       "violations": out.violations}, indent=2)
