"""Injected faults, latency, stats/reset, restart persistence, and `sandbox serve` / `reset` as real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from dotenv import dotenv_values
from sbtools import Graph, assert_error, new_user, token_for

ROOT = Path(__file__).resolve().parents[2]


def test_fault_503(sandbox_factory: Any) -> None:
    sb = sandbox_factory(faults={"503": 1.0})
    g = Graph(sb)  # the token endpoint is never faulted
    r = g.get("/users")
    assert_error(r, 503, "Request_ThrottledTemporarily",
                 "Your request is throttled temporarily. Please try after 1 seconds.")
    assert r.headers["Retry-After"] == "1"
    assert sb.stats()["faults"]["503"] == 1
    assert requests.get(f"{sb.base_url}/_sandbox/stats", verify=str(sb.ca_bundle)).status_code == 200


def test_fault_503_per_batch_item(sandbox_factory: Any) -> None:
    sb = sandbox_factory(faults={"503": 0.3}, seed=1)
    g = Graph(sb)
    inner: list[int] = []
    for _ in range(10):
        r = g.post("/$batch", {"requests": [{"id": str(i), "method": "GET", "url": "/domains"} for i in range(20)]})
        if r.status_code == 200:
            inner += [x["status"] for x in r.json()["responses"]]
    assert 503 in inner and 200 in inner


def test_fault_reset(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    sb.set_knobs(faults={"reset": 1.0})
    with pytest.raises(requests.ConnectionError):
        g.post("/users", new_user(1))
    sb.set_knobs(faults={"reset": 0.0})
    assert g.get("/users/test.user1@contoso.com").status_code == 404  # nothing was done
    assert sb.stats()["faults"]["reset"] >= 1


def test_fault_lost_write_is_committed(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    sb.set_knobs(faults={"lost": 1.0})
    assert g.get("/domains").status_code == 200  # reads are never "lost"
    with pytest.raises(requests.ConnectionError):
        g.post("/users", new_user(1))
    batch = [{"id": str(i), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
              "body": new_user(10 + i)} for i in range(3)]
    with pytest.raises(requests.ConnectionError):
        g.post("/$batch", {"requests": batch})
    sb.set_knobs(faults={"lost": 0.0})
    assert g.get("/users/test.user1@contoso.com").status_code == 200
    for i in range(3):
        assert g.get(f"/users/test.user{10 + i}@contoso.com").status_code == 200
    assert_error(g.post("/users", new_user(1)), 400, "Request_BadRequest",
                 "Another object with the same value for property userPrincipalName already exists.")
    assert sb.stats()["faults"]["lost"] == 2


def test_fault_slow_and_latency(sandbox_factory: Any) -> None:
    sb = sandbox_factory(faults={"slow": 1.0}, slow_ms=400)
    g = Graph(sb)
    t = time.monotonic()
    assert g.get("/domains").status_code == 200
    assert time.monotonic() - t >= 0.4
    with pytest.raises(requests.Timeout):
        g.get("/domains", timeout=0.15)
    sb.set_knobs(faults={"slow": 0.0}, latency_ms="120:10")
    t = time.monotonic()
    assert g.get("/domains").status_code == 200
    assert 0.11 <= time.monotonic() - t < 0.4


def test_stats_and_reset_endpoints(sandbox_factory: Any) -> None:
    sb = sandbox_factory(users=5)
    g = Graph(sb)
    g.post("/users", new_user(1))
    g.post("/users", new_user(1))
    stats = requests.get(f"{sb.base_url}/_sandbox/stats", verify=str(sb.ca_bundle)).json()
    assert stats == sb.stats()
    assert stats["users"] == 6 and stats["users_created"] == 1 and stats["writes"] == 2
    assert stats["by_status"] == {"200": 1, "201": 1, "400": 1} and stats["token_requests"] == 1
    assert set(stats) >= {"requests", "by_status", "throttled", "users_created", "writes", "users", "faults"}
    r = requests.post(f"{sb.base_url}/_sandbox/reset", verify=str(sb.ca_bundle))
    assert r.status_code == 200 and r.json() == {"reset": True, "users": 0}
    assert sb.stats()["users"] == 0 and sb.stats()["requests"] == 0
    assert g.get("/users").json()["value"] == []


def test_restart_keeps_users_credentials_and_tokens(tmp_path: Path) -> None:
    from sandbox import Sandbox
    with Sandbox.start(tmp_path, users=3) as sb:
        secret, token = sb.client_secret, token_for(sb)
        uid = Graph(sb, token).post("/users", new_user(1)).json()["id"]
        first_port = sb.port
    with Sandbox.start(tmp_path, users=3) as sb:
        assert sb.client_secret == secret and sb.port != 0
        g = Graph(sb, token)  # tokens survive a restart (same signing key)
        assert g.get(f"/users/{uid}").status_code == 200
        assert sb.stats()["users"] == 4
        sb.reset()
    with Sandbox.start(tmp_path) as sb:
        assert sb.stats()["users"] == 0
    # the port is freed, but a busy one is reported
    with pytest.raises(OSError), Sandbox.start(tmp_path, port=first_port), \
            Sandbox.start(tmp_path / "other", port=first_port):
        pass


def test_env_and_attributes(sandbox: Any) -> None:
    env = sandbox.env()
    assert env == {"AZURE_TENANT_ID": sandbox.tenant_id, "AZURE_CLIENT_ID": sandbox.client_id,
                   "AZURE_CLIENT_SECRET": sandbox.client_secret, "AZURE_AUTHORITY_HOST": sandbox.base_url,
                   "GRAPH_ENDPOINT": sandbox.base_url, "PROVISION_CA_BUNDLE": str(sandbox.ca_bundle.resolve())}
    assert sandbox.base_url.startswith("https://127.0.0.1:")
    assert sandbox.authority_host == sandbox.graph_endpoint == sandbox.base_url
    assert "BEGIN ENCRYPTED PRIVATE KEY" in sandbox.certificate_path.read_text()
    # the certificate is the alternative credential, commented out, with its password
    assert (sandbox.state_dir / "sandbox.env").read_text().splitlines() == [
        *(f"{k}={v}" for k, v in env.items()),
        "# the alternative credential: comment out AZURE_CLIENT_SECRET and uncomment these two",
        f"# AZURE_CLIENT_CERTIFICATE_PATH={sandbox.certificate_path.resolve()}",
        f"# AZURE_CLIENT_CERTIFICATE_PASSWORD={sandbox.certificate_password}"]
    with pytest.raises(TypeError):
        sandbox.set_knobs(nonsense=1)
    with pytest.raises(ValueError):
        sandbox.set_knobs(faults={"boom": 0.5})


def _env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def test_serve_subprocess_and_reset(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["PYTHONPATH"] = str(ROOT)
    state = tmp_path / "state"
    # a relative --state: sandbox.env still names absolute paths, usable from any folder
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", "state",
                             "--users", "4", "--write-quota", "2/60", "--latency-ms", "1:1", "--seed", "3",
                             "--fault", "503=0", "--token-lifetime", "600"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("sandbox listening on https://127.0.0.1:"), line
        values = _env_file(state / "sandbox.env")
        assert set(values) == {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                               "GRAPH_ENDPOINT", "PROVISION_CA_BUNDLE"}
        assert values["GRAPH_ENDPOINT"] in line
        assert values["PROVISION_CA_BUNDLE"] == str((state / "ca.pem").resolve())
        r = requests.post(f"{values['AZURE_AUTHORITY_HOST']}/{values['AZURE_TENANT_ID']}/oauth2/v2.0/token",
                          verify=values["PROVISION_CA_BUNDLE"],
                          data={"client_id": values["AZURE_CLIENT_ID"], "client_secret": values["AZURE_CLIENT_SECRET"],
                                "grant_type": "client_credentials", "scope": f"{values['GRAPH_ENDPOINT']}/.default"})
        assert r.json()["expires_in"] == 600
        s = requests.Session()
        s.verify = values["PROVISION_CA_BUNDLE"]
        s.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        graph = values["GRAPH_ENDPOINT"] + "/v1.0"
        assert len(s.get(graph + "/users").json()["value"]) == 4
        codes = [s.post(graph + "/users", json=new_user(i)).status_code for i in range(3)]
        assert codes == [201, 201, 429]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    r2 = subprocess.run([sys.executable, "provision.py", "sandbox", "reset", "--state", str(state)], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=60)
    assert r2.returncode == 0, r2.stderr
    assert "6 users removed" in r2.stdout
    bad = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--fault", "boom=1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "KIND=RATE" in bad.stderr


def test_clean_shutdown_with_open_keepalive_connections(tmp_path: Path) -> None:
    import socket
    import threading

    from sandbox import Sandbox
    before = {t.ident for t in threading.enumerate()}
    with Sandbox.start(tmp_path, latency_ms=(5, 0)) as sb:
        g = Graph(sb)
        assert g.get("/domains").status_code == 200  # the connection stays open (keep-alive)
        port = sb.port
        started = time.monotonic()
    assert time.monotonic() - started < 2
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == []
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
