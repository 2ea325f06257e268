"""The :class:`Sandbox` API used by tests, benchmarks, ``--sandbox`` and ``sandbox serve``.

```python
with Sandbox.start(state_dir, **knobs) as sb:   # binds 127.0.0.1, port 0 unless port= is given
    sb.base_url, sb.tenant_id, sb.client_id, sb.client_secret, sb.certificate_path, sb.certificate_password
    sb.authority_host, sb.graph_endpoint, sb.ca_bundle, sb.env(), sb.stats(), sb.reset(), sb.set_knobs(...)
    sb.mail()                                   # messages recorded by sendMail (as GET /_sandbox/mail)
    sb.groups                                   # the predefined groups {displayName: id}
    sb.sku_ids                                  # {skuPartNumber: skuId} of GET /subscribedSkus
    sb.tap_matches(user, passcode)              # whether passcode is the user's current Temporary Access Pass
```
The state folder holds the key material (:mod:`sandbox.keys`), ``sandbox.sqlite`` and ``sandbox.env``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import CLIENT_ID, TENANT_ID, Knobs, make_knobs
from .groups import GROUPS
from .keys import load_or_create, write_private
from .licenses import sku_id
from .server import SandboxHTTPServer
from .service import Service
from .store import Store
from .tap import matches

log = logging.getLogger("sandbox")
ENV_FILE = "sandbox.env"
DB_FILE = "sandbox.sqlite"


class Sandbox:
    """A running sandbox tenant (create it with :meth:`start`)."""

    tenant_id = TENANT_ID
    client_id = CLIENT_ID

    def __init__(self, state_dir: Path, port: int, host: str, knobs: Knobs):
        self.state_dir = state_dir
        keys = load_or_create(state_dir)
        self.client_secret = keys.client_secret
        self.certificate_path = keys.app_cert_path
        self.certificate_password = keys.app_cert_password
        self.ca_bundle = keys.ca_path
        self._store = Store(state_dir / DB_FILE)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(keys.server_cert_path), str(keys.server_key_path))
        try:
            self._service = Service(self._store, keys, knobs, "https://placeholder")
            self._httpd = SandboxHTTPServer((host, port), ctx, self._service)
        except BaseException:
            self._store.close()
            raise
        self.port = self._httpd.server_address[1]
        self.host = host
        self.base_url = f"https://{host}:{self.port}"
        self._service.base_url = self.base_url
        self._service.authority.base_url = self.base_url
        self._httpd.sandbox_reset = self.reset
        self._service.seed_users(knobs.users)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._stopped = False

    @classmethod
    @contextlib.contextmanager
    def start(cls, state_dir: str | os.PathLike[str], *, port: int = 0, host: str = "127.0.0.1",
              **knobs: Any) -> Iterator[Sandbox]:
        """Start a sandbox serving HTTPS on ``host:port`` with the state in ``state_dir``; stop it on exit."""
        sb = cls(Path(state_dir), port, host, make_knobs(None, **knobs))
        try:
            sb._thread.start()
            sb.write_env_file()
            log.info("sandbox listening on %s (state %s)", sb.base_url, sb.state_dir)
            yield sb
        finally:
            sb.stop()

    # -- the contract ----------------------------------------------------------------------------------
    @property
    def authority_host(self) -> str:
        """The authority host: authority = f"{authority_host}/{tenant_id}"."""
        return self.base_url

    @property
    def graph_endpoint(self) -> str:
        """The Graph root: v1.0 at f"{graph_endpoint}/v1.0", scope f"{graph_endpoint}/.default"."""
        return self.base_url

    @property
    def knobs(self) -> Knobs:
        """The knobs in force."""
        return self._service.knobs

    def env(self) -> dict[str, str]:
        """Environment variables pointing any client at this sandbox (paths absolute)."""
        return {"AZURE_TENANT_ID": self.tenant_id, "AZURE_CLIENT_ID": self.client_id,
                "AZURE_CLIENT_SECRET": self.client_secret, "AZURE_AUTHORITY_HOST": self.authority_host,
                "GRAPH_ENDPOINT": self.graph_endpoint, "PROVISION_CA_BUNDLE": str(Path(self.ca_bundle).resolve())}

    def write_env_file(self) -> Path:
        """Write ``state_dir/sandbox.env`` (mode 0600; it holds the client secret and the certificate password):
        :meth:`env`, then the certificate credential commented out, to use instead of the secret. Every path is
        absolute so the file works from any folder."""
        path = self.state_dir / ENV_FILE
        lines = [f"{k}={v}\n" for k, v in self.env().items()]
        lines += ["# the alternative credential: comment out AZURE_CLIENT_SECRET and uncomment these two\n",
                  f"# AZURE_CLIENT_CERTIFICATE_PATH={Path(self.certificate_path).resolve()}\n",
                  f"# AZURE_CLIENT_CERTIFICATE_PASSWORD={self.certificate_password}\n"]
        write_private(path, "".join(lines).encode("utf-8"))
        return path

    def stats(self) -> dict[str, Any]:
        """Counters, as ``GET /_sandbox/stats``."""
        return self._service.stats()

    def mail(self) -> list[dict[str, Any]]:
        """The messages recorded by ``sendMail``, oldest first (``GET /_sandbox/mail``)."""
        return self._store.list_mail()

    @property
    def groups(self) -> dict[str, str]:
        """The tenant's predefined groups: displayName -> id."""
        return {g["displayName"]: g["id"] for g in GROUPS}

    @property
    def sku_ids(self) -> dict[str, str]:
        """The tenant's SKUs: skuPartNumber -> skuId."""
        return {part: sku_id(part) for part in self._service.knobs.skus}

    def tap_matches(self, user: str, passcode: str) -> bool:
        """Whether ``passcode`` is the current Temporary Access Pass of ``user`` (id or UPN); the sandbox keeps only a
        salted hash of it."""
        return matches(self._service, user, passcode)

    def reset(self) -> None:
        """Delete every user with their memberships, licences and managers, and the recorded mail; refill the
        throttling buckets and zero the counters (``POST /_sandbox/reset``). Groups and SKUs stay as defined."""
        self._store.clear()
        self._service.throttle.reset()
        self._service.reset_stats()

    def set_knobs(self, **knobs: Any) -> None:
        """Change knobs while running (faults, latency, quotas, lag, roles, ...)."""
        new = make_knobs(self._service.knobs, **knobs)
        self._service.set_knobs(new)
        if "users" in knobs:
            self._service.seed_users(new.users)

    def stop(self) -> None:
        """Stop serving, close connections and the database; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.close_all()
        self._httpd.server_close()
        if self._thread.is_alive():
            self._thread.join(2)
        self._store.close()
