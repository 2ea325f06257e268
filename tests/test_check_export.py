"""`check` and `export-users` end to end through provision.main, against sandboxes over HTTPS."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

import provision
from provisioning.exitcodes import ExitStatus

ENV_NAMES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
             "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST", "GRAPH_ENDPOINT", "PROVISION_CLOUD",
             "PROVISION_CA_BUNDLE")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def use_env(monkeypatch, tmp_path):
    """Point the tool at a sandbox through the environment (as for a real tenant)."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)

    def apply(sb, **override: str) -> None:
        for key, value in {**sb.env(), **override}.items():
            monkeypatch.setenv(key, str(value))

    return apply


def test_check_with_sandbox_flag(tmp_path):
    code, out, err = run_cli("--sandbox", "--sandbox-dir", str(tmp_path / "sb"), "check")
    assert (code, err) == (ExitStatus.OK, "")
    assert "Token:        acquired, valid for" in out
    assert "  ok       create users                   User.ReadWrite.All\n" in out
    assert "Verified domains:\n  contoso.com (default)\n" in out
    assert ("Licences:\n  ENTERPRISEPACK: 25 of 25 free (skuId 6fd2c87f-b296-42f0-b197-1e91e994b900)\n" in out
            and "  SPE_E5: 5 of 5 free (skuId 06ebc4ee-1bb5-47dd-8120-11324bc54e06)\n" in out)
    assert out.endswith("Ready: the app can provision users in this tenant.\n")


def test_check_bad_credentials_exit_3_one_line(sandbox, use_env):
    use_env(sandbox, AZURE_CLIENT_SECRET="definitely-wrong")
    code, out, err = run_cli("check")
    assert code == ExitStatus.CONFIG
    assert err.count("\n") == 1 and err.startswith(
        "error: authentication failed (AADSTS7000215, invalid_client): the client secret is wrong: set "
        "AZURE_CLIENT_SECRET to the secret's Value")
    assert "definitely-wrong" not in out + err


def test_check_missing_required_role_exit_3(sandbox_factory, use_env):
    sb = sandbox_factory(roles=("User.Read.All", "Domain.Read.All"))
    use_env(sb)
    code, out, err = run_cli("check")
    assert code == ExitStatus.CONFIG
    assert "Granted application permissions: Domain.Read.All, User.Read.All\n" in out
    assert "  MISSING  create users                   needs one of User.ReadWrite.All, Directory.ReadWrite.All\n" in out
    assert "  missing  add to groups                  needs one of GroupMember.ReadWrite.All" in out
    assert err == ("error: not ready: create users needs the application permission User.ReadWrite.All; grant it "
                   "under App registrations > API permissions > Add a permission > Microsoft Graph > Application "
                   "permissions, then Grant admin consent; then run check again\n")
    assert "Ready" not in out


def test_check_user_readwrite_only_is_not_ready(sandbox_factory, use_env):
    """Only User.ReadWrite.All: `run` reads the verified domains in pre-flight and would fail, so check says so."""
    use_env(sandbox_factory(roles=("User.ReadWrite.All",)))
    code, out, err = run_cli("check")
    assert code == ExitStatus.CONFIG
    assert "  MISSING  read verified domains          needs one of Domain.Read.All," in out
    assert err.startswith("error: not ready: read verified domains needs the application permission "
                          "Domain.Read.All; grant it under App registrations")
    assert "Ready" not in out


def _roster(tmp_path, *rows: str):
    path = tmp_path / "people.csv"
    path.write_text("givenName,surname,usageLocation,groups,licenses,manager\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return str(path)


def test_check_accepts_least_privileged_licence_permissions(sandbox_factory, use_env, tmp_path):
    roles = ("User.ReadWrite.All", "Domain.Read.All", "LicenseAssignment.Read.All")
    use_env(sandbox_factory(roles=roles))
    code, out, err = run_cli("check", _roster(tmp_path, "Ann,Lee,US,,ENTERPRISEPACK,"))
    assert (code, err) == (ExitStatus.OK, ""), out + err
    assert "Needed for people.csv (licences):\n" in out
    assert "  ok       read licences (SKUs)           LicenseAssignment.Read.All\n" in out
    assert "  ok       assign licences                User.ReadWrite.All\n" in out
    assert "Licences:\n  ENTERPRISEPACK: 25 of 25 free" in out
    assert out.endswith("Ready: the app can provision users with the licences of people.csv in this tenant.\n")


def test_check_roster_with_groups_needs_group_permissions(sandbox_factory, use_env, tmp_path):
    use_env(sandbox_factory(roles=("User.ReadWrite.All", "Domain.Read.All")))
    code, out, err = run_cli("check", _roster(tmp_path, "Ann,Lee,US,Finance,,"))
    assert code == ExitStatus.CONFIG
    assert err.startswith("error: not ready: find groups needs the application permission GroupMember.Read.All; "
                          "add to groups needs the application permission GroupMember.ReadWrite.All; grant it")
    code, out, err = run_cli("check")  # the same app is ready for a roster without groups
    assert (code, err) == (ExitStatus.OK, "")


def test_check_role_assignable_group_needs_role_management(sandbox_factory, use_env, tmp_path):
    roles = ("User.ReadWrite.All", "Domain.Read.All", "GroupMember.ReadWrite.All")
    sb = sandbox_factory(roles=roles)
    use_env(sb)
    roster = _roster(tmp_path, "Hd,One,US,Helpdesk Admins,,")
    code, out, err = run_cli("check", roster)
    assert code == ExitStatus.CONFIG
    assert "  MISSING  add to role-assignable groups  needs one of RoleManagement.ReadWrite.Directory\n" in out
    assert err.startswith("error: not ready: add to role-assignable groups needs the application permission "
                          "RoleManagement.ReadWrite.Directory;")
    sb.set_knobs(roles=roles + ("RoleManagement.ReadWrite.Directory",))
    code, out, err = run_cli("check", roster)
    assert (code, err) == (ExitStatus.OK, "")


def test_check_reset_passwords_needs_a_directory_role(sandbox_factory, use_env):
    sb = sandbox_factory(directory_roles=())
    use_env(sb)
    code, out, err = run_cli("check", "--existing", "update", "--reset-passwords")
    assert code == ExitStatus.CONFIG
    assert "Directory roles of the app: none that may reset passwords\n" in out
    assert ("  MISSING  reset passwords                User.ReadWrite.All granted, but needs a directory role "
            "such as User Administrator\n") in out
    assert err.startswith("error: not ready: reset passwords needs a directory role such as User Administrator; "
                          "grant User.ReadWrite.All (App registrations")
    assert "Roles and administrators > User Administrator > Add assignments" in err
    code, out, err = run_cli("check", "--existing", "update")  # no reset: no role needed
    assert (code, err) == (ExitStatus.OK, "")


def test_check_notify_says_how_to_scope_mail_send(sandbox, use_env):
    use_env(sandbox)
    code, out, err = run_cli("check", "--notify-from", "ops@contoso.com")
    assert (code, err) == (ExitStatus.OK, "")
    assert "  ok       send notification mail         Mail.Send\n" in out
    assert "Note: Mail.Send lets the app send as any mailbox in the tenant: scope it" in out
    assert "New-ApplicationAccessPolicy" in out and "RBAC for Applications" in out


def test_run_403_names_the_call_and_the_permission(sandbox_factory, use_env, tmp_path):
    use_env(sandbox_factory(roles=("User.ReadWrite.All",)))
    code, out, err = run_cli("run", _roster(tmp_path, "Ann,Lee,US,,,"), "--out", str(tmp_path / "run"),
                             "--no-progress")
    assert code == ExitStatus.CONFIG
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: Graph refused GET /domains (403 Authorization_RequestDenied: Insufficient "
                                "privileges to complete the operation.")
    assert lines[-1].endswith("): read verified domains needs the application permission Domain.Read.All; grant it "
                              "under App registrations > API permissions > Add a permission > Microsoft Graph > "
                              "Application permissions, then Grant admin consent")


def test_reset_password_without_directory_role_names_the_role(sandbox_factory, use_env, tmp_path):
    sb = sandbox_factory()
    use_env(sb)
    roster = _roster(tmp_path, "Ann,Lee,US,,,")
    code, out, err = run_cli("run", roster, "--out", str(tmp_path / "r1"), "--no-progress")
    assert code == ExitStatus.OK, err
    sb.set_knobs(directory_roles=())
    code, out, err = run_cli("run", roster, "--out", str(tmp_path / "r2"), "--no-progress", "--existing", "update",
                             "--reset-passwords", "--yes")  # no terminal here: --yes confirms the reset
    assert code == ExitStatus.ROWS_FAILED, err
    with open(tmp_path / "r2" / "results.csv", encoding="utf-8-sig", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "failed"
    assert "Graph refused PATCH /users/" in row["message"]
    assert row["message"].endswith("reset passwords needs the application permission User.ReadWrite.All and a "
                                   "directory role such as User Administrator held by the app; grant "
                                   "User.ReadWrite.All (App registrations > API permissions > Add a permission > "
                                   "Microsoft Graph > Application permissions, then Grant admin consent) and assign "
                                   "the role to the app under Roles and administrators > User Administrator > Add "
                                   "assignments (select the app's enterprise application)")


def test_check_with_certificate(sandbox, use_env, monkeypatch):
    use_env(sandbox)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(sandbox.certificate_path))
    if sandbox.certificate_password:
        monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", sandbox.certificate_password)
    code, out, err = run_cli("check")
    assert (code, err) == (ExitStatus.OK, "")
    assert "Certificate:  SHA-1 thumbprint " in out


def test_export_users_xlsx(sandbox_factory, use_env, tmp_path):
    sb = sandbox_factory(users=1200)
    use_env(sb)
    target = tmp_path / "users.xlsx"
    code, out, err = run_cli("export-users", str(target))
    assert (code, out, err) == (ExitStatus.OK, f"exported 1200 users to {target}\n", "")
    ws = load_workbook(target)["Users"]
    header = [c.value for c in ws[1]]
    assert header[:15] == ["id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "jobTitle",
                           "department", "officeLocation", "mobilePhone", "businessPhones", "usageLocation",
                           "accountEnabled", "employeeId", "createdDateTime"][:len(header)]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{ws.cell(1, len(header)).column_letter}1201"
    assert ws.max_row == 1201 and ws.column_dimensions["B"].width >= len("seed.user00001@contoso.com")
    upns = [ws.cell(r, 2).value for r in range(2, 1202)]
    assert len(set(upns)) == 1200 and "seed.user00001@contoso.com" in upns


def test_export_users_csv_with_filter_and_formula_safety(sandbox, use_env, tmp_path):
    use_env(sandbox)
    import os

    from graph.batch import BatchRequest
    from graph.client import GraphClient
    from provisioning.settings import load_settings

    settings = load_settings(flags={}, environ=os.environ, env_file=None, config_file=None, sandbox_env=None)
    body = {"accountEnabled": True, "displayName": "=HYPERLINK(\"x\")", "mailNickname": "evil",
            "userPrincipalName": "o'evil@contoso.com", "department": "Sales", "businessPhones": ["+1 555 0100"],
            "passwordProfile": {"password": "Xy9!kq2#Lm7z"}}
    with GraphClient(settings.graph_config()) as client:
        assert client.send_batch([BatchRequest("1", "POST", "/users", body)])[0].status == 201
    target = tmp_path / "sales.csv"
    code, out, err = run_cli("export-users", str(target), "--filter", "userPrincipalName eq 'o''evil@contoso.com'")
    assert (code, out, err) == (ExitStatus.OK, f"exported 1 user to {target}\n", "")
    rows = list(csv.DictReader(target.open(encoding="utf-8-sig")))
    assert len(rows) == 1
    row = rows[0]
    assert row["userPrincipalName"] == "o'evil@contoso.com"
    assert row["displayName"] == "'=HYPERLINK(\"x\")"
    assert row["businessPhones"] == "'+1 555 0100" and row["accountEnabled"] == "true"
    assert row["department"] == "Sales"  # non-default property: returned because it is $select-ed


def test_export_users_rejects_other_extensions(sandbox, use_env, tmp_path):
    use_env(sandbox)
    code, _, err = run_cli("export-users", str(tmp_path / "users.txt"))
    assert code == ExitStatus.USAGE
    assert err == f"error: {tmp_path / 'users.txt'}: the output must end in .xlsx or .csv\n"


@pytest.mark.slow
def test_token_endpoint_500_is_retried_then_exit_4_one_line(sandbox_factory, use_env):
    sb = sandbox_factory(faults={"token500": 1.0})
    use_env(sb)
    code, out, err = run_cli("check")
    assert code == ExitStatus.UNAVAILABLE and "Token:" not in out
    assert err.startswith(f"error: the token endpoint of {sb.authority_host} kept failing (HTTP 500, 8 attempts "
                          "over ")
    assert err.endswith(" s): Microsoft Entra ID is unavailable; try again later\n") and err.count("\n") == 1
    assert sb.stats()["token_requests"] == 8  # each retry reached the endpoint (not MSAL's replay cache)


@pytest.mark.parametrize("kind", ["token500", "token429"])
def test_transient_token_endpoint_failures_are_retried(sandbox_factory, use_env, kind):
    sb = sandbox_factory(faults={kind: 0.5}, seed=3)
    use_env(sb)
    code, out, err = run_cli("check")
    assert (code, err) == (ExitStatus.OK, "")
    stats = sb.stats()
    assert stats["faults"][kind] >= 1 and stats["token_requests"] == stats["faults"][kind] + 1


def test_fast_clock_with_a_certificate_names_the_clock(sandbox_factory, use_env, monkeypatch):
    sb = sandbox_factory(clock_offset_s=-7200)  # the token endpoint's clock is 2 h behind this machine's
    use_env(sb)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(sb.certificate_path))
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", sb.certificate_password)
    code, out, err = run_cli("check")
    assert code == ExitStatus.CONFIG and "Token:" not in out
    assert err.startswith(
        "error: authentication failed (AADSTS700024, invalid_client): the token endpoint says the client assertion "
        "is not yet valid or expired: this machine's clock is probably wrong (it is 2 h 0 min ahead of the token "
        "endpoint's) — check the time and time zone [server said: Client assertion is not within its valid time "
        "range. Current time: ")
    assert err.count("\n") == 1 and "upload the certificate" not in err


def test_export_users_bad_filter_is_a_usage_error_with_graphs_message(sandbox, use_env, tmp_path):
    use_env(sandbox)
    target = tmp_path / "users.csv"
    code, out, err = run_cli("export-users", str(target), "--filter", "bogus eq 'x'")
    assert (code, out) == (ExitStatus.USAGE, "")
    assert err.startswith("error: --filter \"bogus eq 'x'\": Graph refused it: Unsupported or invalid query filter "
                          "clause specified for property 'bogus' of resource 'User'. (request-id ")
    assert err.endswith("); fix the filter, e.g. \"department eq 'Sales'\" or \"startsWith(displayName,'A')\"\n")
    assert err.count("\n") == 1 and not target.exists() and not list(tmp_path.glob("*.part"))
