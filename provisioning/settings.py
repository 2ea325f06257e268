"""Settings: where the tenant is, who the app is, how it proves it, and how fast to write.

Precedence, highest first (DESIGN.md "Configuration"): command-line flag > environment > ``--env-file`` (default
``./.env`` when it exists) > ``--config parameters.json`` (the layout of Microsoft's daemon sample) > defaults.
With ``--sandbox`` the sandbox's own identity and endpoints replace the tenant settings from the environment and
the files. Secrets are :class:`graph.config.Secret` values: redacted in every ``repr``, log line and message.
"""
from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from graph.clouds import CLOUDS, clouds_of_authority, clouds_of_graph, normalize_root
from graph.config import CertificateCredential, GraphConfig, Secret, Timeouts
from graph.governor import GovernorConfig
from provisioning.errors import ConfigError, UsageError

#: Environment variable -> setting name (azure-identity names plus this tool's).
ENV_NAMES: dict[str, str] = {
    "AZURE_TENANT_ID": "tenant_id",
    "AZURE_CLIENT_ID": "client_id",
    "AZURE_CLIENT_SECRET": "client_secret",
    "AZURE_CLIENT_CERTIFICATE_PATH": "certificate_path",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD": "certificate_password",
    "AZURE_AUTHORITY_HOST": "authority_host",
    "GRAPH_ENDPOINT": "graph_endpoint",
    "PROVISION_CLOUD": "cloud",
    "PROVISION_CA_BUNDLE": "ca_bundle",
    "PROVISION_READ_TIMEOUT": "read_timeout",
}
_ENV_OF = {v: k for k, v in ENV_NAMES.items()}
#: Settings the sandbox decides when ``--sandbox`` is given (its env() names).
_SANDBOX_KEYS = ("tenant_id", "client_id", "client_secret", "authority_host", "graph_endpoint", "ca_bundle")
_NOT_A_TENANT = {"common", "organizations", "consumers"}
DEFAULT_CONCURRENCY = 4
DEFAULT_BATCH_SIZE = 20
DEFAULT_READ_TIMEOUT = Timeouts().read


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one run. ``sources`` says where each came from (for ``check`` and error messages)."""

    tenant_id: str
    client_id: str
    authority_host: str
    graph_endpoint: str
    scope: str
    cloud: str = "global"
    client_secret: Secret | None = None
    certificate_path: Path | None = None
    certificate_password: Secret | None = None
    ca_bundle: Path | None = None
    #: a cap on the write governor's rate; None: only Graph's own throttling answers pace the writes
    max_writes_per_s: float | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    #: seconds to wait for an answer (a $batch gets twice as long); PROVISION_READ_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    sandbox: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def credential_kind(self) -> str:
        """``"client secret"`` or ``"certificate"``."""
        return "client secret" if self.client_secret is not None else "certificate"

    def graph_config(self) -> GraphConfig:
        """The :class:`graph.config.GraphConfig` for these settings."""
        return GraphConfig(
            authority_host=self.authority_host, tenant_id=self.tenant_id, client_id=self.client_id,
            graph_endpoint=self.graph_endpoint, scope=self.scope, client_secret=self.client_secret,
            certificate=(CertificateCredential(self.certificate_path, self.certificate_password)
                         if self.certificate_path is not None and self.client_secret is None else None),
            ca_bundle=self.ca_bundle, concurrency=self.concurrency, batch_size=self.batch_size,
            timeouts=Timeouts(read=self.read_timeout, batch_read=2 * self.read_timeout),
            governor=GovernorConfig(rate_per_s=self.max_writes_per_s))


def _env_layer(env: Mapping[str, str | None]) -> dict[str, str]:
    return {ENV_NAMES[k]: v.strip() for k, v in env.items() if k in ENV_NAMES and v and v.strip()}


def _read_env_file(env_file: Path | None) -> tuple[dict[str, str], str]:
    if env_file is None:
        default = Path(".env")
        if not default.is_file():
            return {}, ""
        env_file = default
    if not env_file.is_file():
        raise ConfigError(f"--env-file {env_file}: no such file")
    from dotenv import dotenv_values

    return _env_layer(dotenv_values(stream=io.StringIO(_env_text(env_file)))), str(env_file)


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _env_text(path: Path) -> str:
    """The text of a .env file: UTF-8, or whatever its byte-order mark says (Windows Notepad's "Unicode" is
    UTF-16 with a BOM)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:  # UTF-16 saved without a BOM: every other byte of ASCII is NUL
        encoding = "utf-16-le" if data[1::2].count(0) * 2 >= len(data) // 2 else "utf-16-be"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not readable as {encoding.upper().replace('-SIG', '')} text; save it as UTF-8 "
                          "(in Notepad: Save as > Encoding: UTF-8)") from None


def _read_config_file(path: Path | None) -> dict[str, str]:
    """Settings from a daemon-sample ``parameters.json``: authority, client_id, secret | private_key_file, scope,
    endpoint (a Graph URL: only its scheme and host are kept)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"--config {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a JSON object like Microsoft's daemon-sample parameters.json")
    out: dict[str, str] = {}

    def text(key: str, what: str) -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"--config {path}: {key!r} must be a text ({what}), not {_json_type(value)}")
        return value.strip()

    authority = text("authority", "like https://login.microsoftonline.com/<tenant id>")
    if authority:
        parts = urlsplit(normalize_root(authority))
        tenant = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else ""
        if not tenant:
            raise ConfigError(f"--config {path}: 'authority' must end with the tenant, like "
                              "https://login.microsoftonline.com/<tenant id>")
        out["authority_host"] = f"{parts.scheme}://{parts.netloc}"
        out["tenant_id"] = tenant
    scope = data.get("scope")
    if isinstance(scope, list):
        if len(scope) != 1:
            raise ConfigError(f"--config {path}: 'scope' must hold exactly one '<graph root>/.default' scope")
        data = {**data, "scope": scope[0]}
    scope = text("scope", "like https://graph.microsoft.com/.default")
    if scope:
        out["scope"] = scope
    endpoint = text("endpoint", "a Graph URL like https://graph.microsoft.com/v1.0/users")
    if endpoint:
        parts = urlsplit(normalize_root(endpoint))
        out["graph_endpoint"] = f"{parts.scheme}://{parts.netloc}"
    for key, name, what in (("client_id", "client_id", "the application (client) ID"),
                            ("secret", "client_secret", "the client secret's Value"),
                            ("client_secret", "client_secret", "the client secret's Value"),
                            ("passphrase", "certificate_password", "the private key's password"),
                            ("certificate_password", "certificate_password", "the private key's password")):
        value = text(key, what)
        if value:
            out[name] = value
    cert = text("private_key_file", "the path of a PEM file") or text("certificate_path", "the path of a PEM file")
    if cert:
        cert_path = Path(cert)
        out["certificate_path"] = str(cert_path if cert_path.is_absolute() else path.parent / cert_path)
    return out


def _json_type(value: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _flag_layer(flags: Mapping[str, object]) -> dict[str, object]:
    names = ("max_writes_per_s", "batch_size", "concurrency", "tenant_id", "client_id", "cloud", "read_timeout")
    return {n: flags[n] for n in names if flags.get(n) not in (None, "")}


def _where(name: str) -> str:
    env = _ENV_OF.get(name)
    return env if env else f"--{name.replace('_', '-')}"


def load_settings(*, flags: Mapping[str, object], environ: Mapping[str, str], env_file: Path | None,
                  config_file: Path | None, sandbox_env: Mapping[str, str] | None) -> Settings:
    """Resolve settings by precedence; raise :class:`ConfigError` naming exactly what to set when incomplete."""
    env_layer, env_file_label = _read_env_file(env_file)
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("command line", _flag_layer(flags)),
        ("environment", _env_layer(environ)),
        (env_file_label or ".env", env_layer),
        (f"--config {config_file}" if config_file else "--config", _read_config_file(config_file)),
    ]
    if sandbox_env is not None:
        sandbox_layer = _env_layer(sandbox_env)
        layers = [("sandbox", sandbox_layer)] + [
            (label, {k: v for k, v in layer.items()
                     if k not in _SANDBOX_KEYS and k not in ("certificate_path", "certificate_password", "scope",
                                                             "cloud")})
            for label, layer in layers]

    def pick(name: str) -> tuple[Any, str, int]:
        for level, (label, layer) in enumerate(layers):
            if layer.get(name) not in (None, ""):
                return layer[name], label, level
        return None, "default", len(layers)

    sources: dict[str, str] = {}

    def get(name: str, default: Any = None) -> Any:
        value, label, _ = pick(name)
        sources[name] = label if value is not None else "default"
        return value if value is not None else default

    cloud_name = str(get("cloud", "global")).lower()
    if cloud_name not in CLOUDS:
        raise ConfigError(f"PROVISION_CLOUD={cloud_name!r} is not a cloud; use one of {', '.join(CLOUDS)}")
    cloud = CLOUDS[cloud_name]
    authority_host = _https_root(get("authority_host", cloud.authority_host), "AZURE_AUTHORITY_HOST")
    graph_endpoint = _https_root(get("graph_endpoint", cloud.graph_endpoint), "GRAPH_ENDPOINT")
    scope = str(get("scope", f"{graph_endpoint}/.default"))
    _check_cloud_consistency(authority_host, graph_endpoint, scope, sources)

    tenant_id = str(get("tenant_id", "")).strip()
    if not tenant_id:
        raise ConfigError("no tenant configured: set AZURE_TENANT_ID (environment or .env) or 'authority' in "
                          "--config parameters.json, or use --sandbox")
    if tenant_id.lower() in _NOT_A_TENANT:
        raise ConfigError(f"AZURE_TENANT_ID={tenant_id!r} is not a tenant: app-only access needs the tenant's GUID "
                          "or domain name")
    client_id = str(get("client_id", "")).strip()
    if not client_id:
        raise ConfigError("no application configured: set AZURE_CLIENT_ID (environment or .env) or 'client_id' in "
                          "--config parameters.json")

    secret, secret_src, secret_level = pick("client_secret")
    cert, cert_src, cert_level = pick("certificate_path")
    if secret is None and cert is None:
        raise ConfigError("no credential configured: set AZURE_CLIENT_SECRET (the secret's Value) or "
                          "AZURE_CLIENT_CERTIFICATE_PATH (a PEM with certificate and private key)")
    if secret is not None and cert is not None and secret_level == cert_level:
        raise ConfigError(f"both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set in {secret_src}: "
                          "set only one of them")
    use_secret = secret is not None and (cert is None or secret_level < cert_level)
    cert_path = cert_password = None
    if use_secret:
        sources["client_secret"] = secret_src
    else:
        cert_path = Path(str(cert)).expanduser()
        sources["certificate_path"] = cert_src
        if not cert_path.is_file():
            raise ConfigError(f"AZURE_CLIENT_CERTIFICATE_PATH={cert_path}: no such file (from {cert_src})")
        password = get("certificate_password")
        cert_password = Secret(str(password)) if password else None

    ca_value = get("ca_bundle")
    ca_bundle = Path(str(ca_value)).expanduser() if ca_value else None
    if ca_bundle is not None and not ca_bundle.is_file():
        raise ConfigError(f"PROVISION_CA_BUNDLE={ca_bundle}: no such file (from {sources['ca_bundle']})")

    rate_value = get("max_writes_per_s")
    rate = None if rate_value is None else _number(rate_value, "--max-writes-per-s", float, 0.01, 10_000)
    batch_size = int(_number(get("batch_size", DEFAULT_BATCH_SIZE), "--batch-size", int, 1, 20))
    concurrency = int(_number(get("concurrency", DEFAULT_CONCURRENCY), "--concurrency", int, 1, 64))
    read_timeout = float(_number(get("read_timeout", DEFAULT_READ_TIMEOUT), "PROVISION_READ_TIMEOUT", float, 0.1,
                                 3600))
    return Settings(
        tenant_id=tenant_id, client_id=client_id, authority_host=authority_host, graph_endpoint=graph_endpoint,
        scope=scope, cloud=cloud_name if sandbox_env is None else "sandbox",
        client_secret=Secret(str(secret)) if use_secret else None, certificate_path=cert_path,
        certificate_password=cert_password, ca_bundle=ca_bundle, max_writes_per_s=rate, batch_size=batch_size,
        concurrency=concurrency, read_timeout=read_timeout, sandbox=sandbox_env is not None, sources=dict(sources))


def _https_root(value: Any, name: str) -> str:
    root = normalize_root(str(value))
    parts = urlsplit(root)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(f"{name}={value!r} must be an https:// URL (MSAL and Graph speak TLS only)")
    return f"https://{parts.netloc}"


def _check_cloud_consistency(authority_host: str, graph_endpoint: str, scope: str, sources: dict[str, str]) -> None:
    auth_clouds, graph_clouds = clouds_of_authority(authority_host), clouds_of_graph(graph_endpoint)
    if auth_clouds and graph_clouds and not auth_clouds & graph_clouds:
        raise ConfigError(
            f"AZURE_AUTHORITY_HOST={authority_host} ({sources['authority_host']}) belongs to "
            f"{'/'.join(sorted(auth_clouds))} but GRAPH_ENDPOINT={graph_endpoint} ({sources['graph_endpoint']}) to "
            f"{'/'.join(sorted(graph_clouds))}: tokens do not cross clouds; set PROVISION_CLOUD and unset the other")
    if not scope.endswith("/.default"):
        raise ConfigError(f"scope {scope!r} ({sources['scope']}) must be the Graph root followed by /.default, "
                          f"e.g. {graph_endpoint}/.default")
    if normalize_root(scope[: -len("/.default")]) != graph_endpoint:
        raise ConfigError(f"scope {scope!r} ({sources['scope']}) is not for GRAPH_ENDPOINT={graph_endpoint}: "
                          f"use {graph_endpoint}/.default")


def _number(value: Any, name: str, kind: Callable[[Any], Any], low: float, high: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{name} must be a number, not {value!r}") from None
    if not low <= number <= high:  # (also refuses nan)
        raise UsageError(f"{name} must be between {low:g} and {high:g}, not {value}")
    return number
