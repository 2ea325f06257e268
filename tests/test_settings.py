"""Settings: precedence, parameters.json, clouds, sandbox override, redaction, and exact ConfigError messages."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.clouds import CLOUDS
from graph.config import Secret
from provisioning.errors import ConfigError, UsageError
from provisioning.settings import load_settings

SECRET = "s3cr3t~VALUE.xyz"
BASE_ENV = {"AZURE_TENANT_ID": "env-tenant", "AZURE_CLIENT_ID": "env-client", "AZURE_CLIENT_SECRET": SECRET}


def load(tmp_path: Path, *, flags=None, environ=None, env_text=None, config=None, sandbox_env=None):
    env_file = None
    if env_text is not None:
        env_file = tmp_path / "test.env"
        env_file.write_text(env_text)
    config_file = None
    if config is not None:
        config_file = tmp_path / "parameters.json"
        config_file.write_text(json.dumps(config))
    return load_settings(flags=flags or {}, environ=environ or {}, env_file=env_file, config_file=config_file,
                         sandbox_env=sandbox_env)


@pytest.fixture(autouse=True)
def _no_stray_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./.env is read by default; keep the developer's out of the tests


def test_defaults_are_the_global_cloud(tmp_path):
    s = load(tmp_path, environ=BASE_ENV)
    assert (s.authority_host, s.graph_endpoint, s.scope) == (
        "https://login.microsoftonline.com", "https://graph.microsoft.com", "https://graph.microsoft.com/.default")
    assert s.max_writes_per_s is None and s.batch_size == 20 and s.cloud == "global"  # no cap: Graph paces
    assert s.client_secret == Secret(SECRET) and s.credential_kind == "client secret"


@pytest.mark.parametrize("cloud, authority, graph", [
    ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
    ("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    ("china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"),
])
def test_national_clouds(tmp_path, cloud, authority, graph):
    s = load(tmp_path, environ={**BASE_ENV, "PROVISION_CLOUD": cloud})
    assert (s.authority_host, s.graph_endpoint, s.scope) == (authority, graph, f"{graph}/.default")
    cfg = s.graph_config()  # building the config contacts nothing
    assert cfg.authority == f"{authority}/env-tenant" and cfg.base_url == f"{graph}/v1.0"


def test_cloud_table_scopes():
    assert {c.scope for c in CLOUDS.values()} == {
        "https://graph.microsoft.com/.default", "https://graph.microsoft.us/.default",
        "https://dod-graph.microsoft.us/.default", "https://microsoftgraph.chinacloudapi.cn/.default"}


def test_precedence_flag_env_envfile_config_default(tmp_path):
    config = {"authority": "https://login.microsoftonline.com/cfg-tenant", "client_id": "cfg-client",
              "secret": "cfg-secret", "scope": ["https://graph.microsoft.com/.default"],
              "endpoint": "https://graph.microsoft.com/v1.0/users"}
    env_text = "AZURE_CLIENT_ID=file-client\nAZURE_CLIENT_SECRET=file-secret\n"
    s = load(tmp_path, config=config, env_text=env_text, environ={"AZURE_CLIENT_SECRET": "env-secret"},
             flags={"max_writes_per_s": 7.5, "batch_size": None})
    assert s.tenant_id == "cfg-tenant"                 # only in parameters.json
    assert s.client_id == "file-client"                # .env beats parameters.json
    assert s.client_secret == Secret("env-secret")     # environment beats .env
    assert s.max_writes_per_s == 7.5                   # flag beats default
    assert s.batch_size == 20                          # None flag = not given
    assert s.sources["tenant_id"].startswith("--config") and s.sources["client_id"].endswith("test.env")
    assert s.sources["client_secret"] == "environment" and s.sources["max_writes_per_s"] == "command line"


def test_default_env_file_is_dot_env_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("AZURE_TENANT_ID=dot-tenant\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=x\n")
    assert load(tmp_path).tenant_id == "dot-tenant"


def test_missing_env_file_named_on_the_command_line(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_settings(flags={}, environ=BASE_ENV, env_file=tmp_path / "nope.env", config_file=None, sandbox_env=None)
    assert str(exc.value) == f"--env-file {tmp_path / 'nope.env'}: no such file"


def test_certificate_variant_of_parameters_json(tmp_path):
    (tmp_path / "server.pem").write_text("pem")
    config = {"authority": "https://login.microsoftonline.com/t", "client_id": "c", "thumbprint": "ABCD",
              "private_key_file": "server.pem", "scope": ["https://graph.microsoft.com/.default"]}
    s = load(tmp_path, config=config, environ={"AZURE_CLIENT_CERTIFICATE_PASSWORD": "pw"})
    assert s.certificate_path == tmp_path / "server.pem" and s.credential_kind == "certificate"
    assert s.certificate_password == Secret("pw")
    assert s.graph_config().certificate.path == tmp_path / "server.pem"


def test_sandbox_overrides_tenant_identity_but_not_pacing(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    sandbox_env = {"AZURE_TENANT_ID": "sb-tenant", "AZURE_CLIENT_ID": "sb-client", "AZURE_CLIENT_SECRET": "sb-sec",
                   "AZURE_AUTHORITY_HOST": "https://127.0.0.1:4443", "GRAPH_ENDPOINT": "https://127.0.0.1:4443",
                   "PROVISION_CA_BUNDLE": str(ca)}
    environ = {**BASE_ENV, "AZURE_CLIENT_CERTIFICATE_PATH": "/nope.pem", "PROVISION_CLOUD": "china"}
    s = load(tmp_path, environ=environ, sandbox_env=sandbox_env, flags={"max_writes_per_s": 5})
    assert (s.tenant_id, s.client_id, s.client_secret) == ("sb-tenant", "sb-client", Secret("sb-sec"))
    assert (s.authority_host, s.graph_endpoint, s.scope) == (
        "https://127.0.0.1:4443", "https://127.0.0.1:4443", "https://127.0.0.1:4443/.default")
    assert s.ca_bundle == ca and s.sandbox and s.certificate_path is None and s.max_writes_per_s == 5


@pytest.mark.parametrize("environ, message", [
    ({}, "no tenant configured: set AZURE_TENANT_ID (environment or .env) or 'authority' in --config "
         "parameters.json, or use --sandbox"),
    ({"AZURE_TENANT_ID": "t"}, "no application configured: set AZURE_CLIENT_ID (environment or .env) or "
                               "'client_id' in --config parameters.json"),
    ({"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"},
     "no credential configured: set AZURE_CLIENT_SECRET (the secret's Value) or AZURE_CLIENT_CERTIFICATE_PATH "
     "(a PEM with certificate and private key)"),
    ({**BASE_ENV, "AZURE_TENANT_ID": "common"},
     "AZURE_TENANT_ID='common' is not a tenant: app-only access needs the tenant's GUID or domain name"),
    ({**BASE_ENV, "PROVISION_CLOUD": "mars"},
     "PROVISION_CLOUD='mars' is not a cloud; use one of global, usgov, usgov-dod, china"),
    ({**BASE_ENV, "AZURE_CLIENT_CERTIFICATE_PATH": "/no/such.pem"},
     "both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set in environment: set only one of them"),
    ({**BASE_ENV, "PROVISION_CA_BUNDLE": "/no/ca.pem"},
     "PROVISION_CA_BUNDLE=/no/ca.pem: no such file (from environment)"),
    ({**BASE_ENV, "AZURE_AUTHORITY_HOST": "http://login.example"},
     "AZURE_AUTHORITY_HOST='http://login.example' must be an https:// URL (MSAL and Graph speak TLS only)"),
    ({**BASE_ENV, "PROVISION_CLOUD": "usgov", "AZURE_AUTHORITY_HOST": "login.microsoftonline.com"},
     "AZURE_AUTHORITY_HOST=https://login.microsoftonline.com (environment) belongs to global but "
     "GRAPH_ENDPOINT=https://graph.microsoft.us (default) to usgov: tokens do not cross clouds; set "
     "PROVISION_CLOUD and unset the other"),
])
def test_config_errors_name_what_to_set(tmp_path, environ, message):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, environ=environ)
    assert str(exc.value) == message


def test_certificate_file_must_exist(tmp_path):
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH": "/no/such.pem"}
    with pytest.raises(ConfigError, match=r"^AZURE_CLIENT_CERTIFICATE_PATH=/no/such.pem: no such file "
                                          r"\(from environment\)$"):
        load(tmp_path, environ=env)


def test_flag_beats_env_credential_level_order(tmp_path):
    (tmp_path / "c.pem").write_text("pem")
    s = load(tmp_path, environ={"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c",
                                "AZURE_CLIENT_CERTIFICATE_PATH": str(tmp_path / "c.pem")},
             env_text="AZURE_CLIENT_SECRET=file-secret\n")
    assert s.credential_kind == "certificate"  # environment outranks .env


def test_scope_must_match_the_graph_root(tmp_path):
    config = {"scope": "https://graph.microsoft.com/User.Read"}
    with pytest.raises(ConfigError, match="must be the Graph root followed by /.default"):
        load(tmp_path, environ=BASE_ENV, config=config)


@pytest.mark.parametrize("flags, message", [({"batch_size": 21}, "--batch-size must be between 1 and 20, not 21"),
                                            ({"max_writes_per_s": "fast"}, "--max-writes-per-s must be a number, "
                                                                           "not 'fast'")])
def test_bad_flag_values_are_usage_errors(tmp_path, flags, message):
    with pytest.raises(UsageError) as exc:
        load(tmp_path, environ=BASE_ENV, flags=flags)
    assert str(exc.value) == message


def test_bad_parameters_json(tmp_path):
    (tmp_path / "parameters.json").write_text("{nope")
    with pytest.raises(ConfigError, match=r"parameters.json: not valid JSON"):
        load_settings(flags={}, environ=BASE_ENV, env_file=None, config_file=tmp_path / "parameters.json",
                      sandbox_env=None)


def test_secrets_are_redacted_everywhere(tmp_path):
    (tmp_path / "c.pem").write_text("pem")
    s = load(tmp_path, environ=BASE_ENV)
    c = load(tmp_path, environ={"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH":
                                str(tmp_path / "c.pem"), "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pem-pass-123"})
    for text in (repr(s), str(s), repr(s.graph_config()), f"{s.client_secret}", repr(c), repr(c.graph_config())):
        assert SECRET not in text and "pem-pass-123" not in text
    assert "client_secret=Secret('***')" in repr(s)
    assert s.client_secret.reveal() == SECRET


def test_read_timeout_from_the_environment(tmp_path):
    cfg = load(tmp_path, environ={**BASE_ENV, "PROVISION_READ_TIMEOUT": "2.5"}).graph_config()
    assert (cfg.timeouts.connect, cfg.timeouts.read, cfg.timeouts.batch_read) == (10.0, 2.5, 5.0)
    assert load(tmp_path, environ=BASE_ENV).graph_config().timeouts.read == 60.0


def test_bad_read_timeout_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as err:
        load(tmp_path, environ={**BASE_ENV, "PROVISION_READ_TIMEOUT": "soon"})
    assert str(err.value) == "PROVISION_READ_TIMEOUT must be a number, not 'soon'"


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("name", ["notepad-unicode.env", "utf16-be-no-bom.env"])
def test_utf16_env_file_is_read(tmp_path, name):
    s = load_settings(flags={}, environ={}, env_file=DATA / "env" / name, config_file=None, sandbox_env=None)
    assert (s.tenant_id, s.client_id) == ("contoso.onmicrosoft.com", "5c2b9e7a-1d3f-4a6b-8c9d-e0f1a2b3c4d5")
    assert s.client_secret.reveal() == "Zq8~notepad.secret-Ünicode"
    assert s.sources["client_secret"] == str(DATA / "env" / name)


def test_env_file_in_an_unknown_encoding_is_refused_in_one_line(tmp_path):
    import io

    import provision

    env_file = DATA / "env" / "latin1.env"
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["--env-file", str(env_file), "check"], stdout=out, stderr=err)
    assert (code, out.getvalue()) == (3, "")
    assert err.getvalue() == (f"error: {env_file}: not readable as UTF-8 text; save it as UTF-8 (in Notepad: Save "
                              "as > Encoding: UTF-8)\n")


def test_utf16_env_file_through_the_cli(sandbox, tmp_path, monkeypatch):
    import io

    import provision

    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                 "GRAPH_ENDPOINT", "PROVISION_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    text = "".join(f"{k}={v}\r\n" for k, v in sandbox.env().items())
    (tmp_path / ".env").write_bytes(text.encode("utf-16"))  # Notepad's "Unicode": UTF-16 LE with a BOM
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["check"], stdout=out, stderr=err)
    assert (code, err.getvalue()) == (0, "")
    assert out.getvalue().endswith("Ready: the app can provision users in this tenant.\n")


@pytest.mark.parametrize("name, message", [
    ("secret-list.json", "'secret' must be a text (the client secret's Value), not a list"),
    ("endpoint-true.json", "'endpoint' must be a text (a Graph URL like https://graph.microsoft.com/v1.0/users), "
                           "not true/false"),
])
def test_parameters_json_value_of_the_wrong_type_names_the_key(name, message):
    import io

    import provision

    config = DATA / "config" / name
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["--config", str(config), "check"], stdout=out, stderr=err)
    assert (code, out.getvalue(), err.getvalue()) == (3, "", f"error: --config {config}: {message}\n")
