"""The sandbox in a process of its own (``python -m sandbox serve``), for benchmarks and tests that kill or time
the tool: started on port 0, its ``sandbox.env`` values read back, its counters fetched over HTTPS.

A separate process keeps the server off the client's GIL (benchmarks) and lets a test SIGKILL the tool without the
tenant going with it. Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


def serve(state: Path, args: Sequence[str] = (), *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
          stderr: int | IO[Any] = subprocess.PIPE) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``python -m sandbox serve --port 0 --state STATE ARGS...``; once it says it is listening, return the
    process and the values of its ``sandbox.env``. Raises RuntimeError with its output when it does not start.
    ``stderr``: a file for a long run (a full pipe would stall the server)."""
    cmd = [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(state), *args]
    proc = subprocess.Popen(cmd, cwd=cwd or ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=dict(env) if env is not None else None)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr and stderr == subprocess.PIPE else ""
        raise RuntimeError(f"sandbox did not start: {line}{err}")
    return proc, env_values(state / "sandbox.env")


def env_values(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a sandbox.env file."""
    return dict(ln.split("=", 1) for ln in path.read_text(encoding="utf-8").splitlines() if "=" in ln)


def stats(env: Mapping[str, str]) -> dict[str, Any]:
    """``GET /_sandbox/stats`` of a served sandbox (trusting its own CA only, no proxy)."""
    base = env["GRAPH_ENDPOINT"].rstrip("/").removesuffix("/v1.0")
    context = ssl.create_default_context(cafile=env["PROVISION_CA_BUNDLE"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    with opener.open(f"{base}/_sandbox/stats", timeout=30) as answer:
        return dict(json.loads(answer.read()))
