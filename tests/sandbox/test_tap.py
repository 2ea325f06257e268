"""Temporary Access Pass: the tenant policy (and its knob), each user's pass (create, replace, list, get, delete),
the documented errors, $batch, permissions, and that the pass is shown once and never kept or logged."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from sbtools import Graph, assert_error, new_user

from sandbox import Sandbox
from sandbox.cli import build_parser, knobs_from_args
from sandbox.cli import main as cli_main
from sandbox.config import DEFAULT_ROLES

POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
CTX = "https://graph.microsoft.com/v1.0/$metadata#"
TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
DENIED = "Insufficient privileges to complete the operation."
NOT_FOUND = "Resource '{0}' does not exist or one of its queried reference-property objects are not present."
DISABLED = ("Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
            "AuthMethodType [TemporaryAccessPass].")
PASS_CHARS = re.compile(r"[A-Za-z0-9!#$%&*+\-=?@]+")
METHOD_KEYS = ["@odata.type", "id", "temporaryAccessPass", "createdDateTime", "startDateTime", "lifetimeInMinutes",
               "isUsableOnce", "isUsable", "methodUsabilityReason"]


def taps(key: str) -> str:
    return f"/users/{key}/authentication/temporaryAccessPassMethods"


def create(g: Graph, n: int | str, **extra: Any) -> str:
    r = g.post("/users", new_user(n, **extra))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def issue(g: Graph, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = g.post(taps(key), {} if body is None else body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def bad_request(r: Any, message: str) -> None:
    err = assert_error(r, 400, "badRequest", message)
    assert err["innerError"]["message"] == message


def test_policy_default_shape_knob_and_cli(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    r = g.get(POLICY)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "@odata.context": CTX + "authenticationMethodConfigurations/$entity",
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass", "state": "enabled", "defaultLifetimeInMinutes": 60, "defaultLength": 8,
        "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480, "isUsableOnce": False,
        "includeTargets@odata.context": CTX + "policies/authenticationMethodsPolicy/authenticationMethod"
                                              "Configurations('TemporaryAccessPass')/microsoft.graph.temporaryAccess"
                                              "PassAuthenticationMethodConfiguration/includeTargets",
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
        "excludeTargets": []}
    # the docs spell the id both ways
    assert g.get(POLICY.replace("TemporaryAccessPass", "temporaryAccessPass")).json()["id"] == "TemporaryAccessPass"
    assert g.patch(POLICY, {"state": "disabled"}).status_code == 405

    sb.set_knobs(tap_policy={"state": "disabled", "min": 30, "default": 45, "max": 120, "length": 12, "once": True})
    got = g.get(POLICY).json()
    assert [got[k] for k in ("state", "minimumLifetimeInMinutes", "defaultLifetimeInMinutes",
                             "maximumLifetimeInMinutes", "defaultLength", "isUsableOnce")] == [
        "disabled", 30, 45, 120, 12, True]
    sb.set_knobs(tap_policy="state=enabled")  # merged: the other settings stay
    got = g.get(POLICY).json()
    assert (got["state"], got["maximumLifetimeInMinutes"], got["isUsableOnce"]) == ("enabled", 120, True)

    other = sandbox_factory(tap_policy="maximumLifetimeInMinutes=600,defaultLength=10")
    got = Graph(other).get(POLICY).json()
    assert (got["maximumLifetimeInMinutes"], got["defaultLength"], got["state"]) == (600, 10, "enabled")
    with pytest.raises(ValueError, match="the default lifetime 500 is outside min 60 .. max 480"):
        sb.set_knobs(tap_policy={"state": "enabled", "min": 60, "max": 480, "default": 500})

    parser = build_parser("sandbox")
    args = parser.parse_args(["serve", "--tap-policy", "state=disabled,min=30,max=120,default=30,once=true"])
    assert knobs_from_args(args) == {"tap_policy": "state=disabled,min=30,max=120,default=30,once=true"}
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli_main(["serve", "--tap-policy", "min=5"], stdout=io.StringIO(), stderr=err, prog="sandbox") == 2
    assert err.getvalue() == ("error: tap_policy: lifetimes must satisfy 10 <= min <= max <= 43200, got min 5, "
                              "max 480\n")


def test_create_answers_the_pass_once_with_the_policy_defaults(sandbox: Any) -> None:
    g = Graph(sandbox)
    uid = create(g, 1)
    before = dt.datetime.now(dt.UTC)
    body = issue(g, uid)
    after = dt.datetime.now(dt.UTC)
    assert list(body) == ["@odata.context", *METHOD_KEYS]
    assert body["@odata.context"] == CTX + f"users('{uid}')/authentication/temporaryAccessPassMethods/$entity"
    assert body["@odata.type"] == TYPE and re.fullmatch(r"[0-9a-f-]{36}", body["id"])
    passcode = body["temporaryAccessPass"]
    assert len(passcode) == 8 and PASS_CHARS.fullmatch(passcode)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["createdDateTime"])
    assert before <= stamp(body["createdDateTime"]) <= after
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["startDateTime"])
    assert stamp(body["startDateTime"]) == stamp(body["createdDateTime"]).replace(microsecond=0)
    assert (body["lifetimeInMinutes"], body["isUsableOnce"], body["isUsable"], body["methodUsabilityReason"]) == (
        60, False, True, "EnabledByPolicy")
    assert sandbox.tap_matches(uid, passcode) and sandbox.tap_matches("test.user1@contoso.com", passcode)
    assert not sandbox.tap_matches(uid, passcode[:-1])
    assert sandbox.stats()["taps_issued"] == 1 and sandbox.stats()["taps_replaced"] == 0

    # addressed by UPN, also in the key form; another user's pass is their own
    create(g, 2)
    r = g.post("/users('test.user2@contoso.com')/authentication/temporaryAccessPassMethods", {})
    assert r.status_code == 201, r.text
    assert r.json()["temporaryAccessPass"] != passcode
    assert sandbox.tap_matches("test.user2@contoso.com", r.json()["temporaryAccessPass"])
    assert not sandbox.tap_matches(uid, r.json()["temporaryAccessPass"])

    sandbox.set_knobs(tap_policy={"length": 48})
    assert len(issue(g, uid)["temporaryAccessPass"]) == 48


def test_start_lifetime_and_one_time_options(sandbox: Any) -> None:
    g = Graph(sandbox)
    uid = create(g, 1)
    later = issue(g, uid, {"startDateTime": "2099-06-05T00:00:00.000Z", "lifetimeInMinutes": 480,
                           "isUsableOnce": True})
    assert (later["startDateTime"], later["lifetimeInMinutes"], later["isUsableOnce"], later["isUsable"],
            later["methodUsabilityReason"]) == ("2099-06-05T00:00:00Z", 480, True, False, "NotYetValid")
    past = issue(g, uid, {"startDateTime": "2022-06-05T02:00:00+02:00", "lifetimeInMinutes": 60})
    assert (past["startDateTime"], past["isUsableOnce"], past["isUsable"], past["methodUsabilityReason"]) == (
        "2022-06-05T00:00:00Z", False, False, "Expired")
    # a one-time policy makes every pass one-time; asking for one-time is fine
    sandbox.set_knobs(tap_policy={"once": True})
    assert issue(g, uid)["isUsableOnce"] is True
    assert issue(g, uid, {"isUsableOnce": True})["isUsableOnce"] is True
    # a disabled policy shows on the method that is left
    sandbox.set_knobs(tap_policy={"state": "disabled"})
    method = g.get(taps(uid)).json()["value"][0]
    assert (method["isUsable"], method["methodUsabilityReason"]) == (False, "DisabledByPolicy")


def test_second_create_replaces_the_first(sandbox: Any) -> None:
    g = Graph(sandbox)
    uid = create(g, 1)
    first = issue(g, uid, {"lifetimeInMinutes": 120})
    second = issue(g, uid)
    assert second["id"] != first["id"]
    value = g.get(taps(uid)).json()["value"]
    assert [m["id"] for m in value] == [second["id"]] and value[0]["lifetimeInMinutes"] == 60
    assert not sandbox.tap_matches(uid, first["temporaryAccessPass"])
    assert sandbox.tap_matches(uid, second["temporaryAccessPass"])
    assert_error(g.get(f"{taps(uid)}/{first['id']}"), 404, "Request_ResourceNotFound", NOT_FOUND.format(first["id"]))
    stats = sandbox.stats()
    assert (stats["taps_issued"], stats["taps_replaced"]) == (2, 1)


def test_list_get_delete_never_show_the_pass(sandbox: Any) -> None:
    g = Graph(sandbox)
    uid = create(g, 1)
    empty = g.get(taps(uid))
    assert empty.status_code == 200
    assert empty.json() == {"@odata.context": CTX + f"users('{uid}')/authentication/temporaryAccessPassMethods",
                            "value": []}
    made = issue(g, uid)
    shown = {**{k: v for k, v in made.items() if k != "@odata.context"}, "temporaryAccessPass": None}
    assert g.get(taps("test.user1@contoso.com")).json()["value"] == [shown]
    one = g.get(f"{taps(uid)}/{made['id']}")
    assert one.status_code == 200
    assert one.json() == {"@odata.context": CTX + f"users('{uid}')/authentication/temporaryAccessPassMethods/$entity",
                          **shown}
    assert made["temporaryAccessPass"] not in one.text
    assert g.delete(f"{taps(uid)}/{made['id']}").status_code == 204
    assert g.get(taps(uid)).json()["value"] == []
    assert not sandbox.tap_matches(uid, made["temporaryAccessPass"])
    assert_error(g.delete(f"{taps(uid)}/{made['id']}"), 404, "Request_ResourceNotFound",
                 NOT_FOUND.format(made["id"]))
    assert sandbox.stats()["taps_deleted"] == 1
    issue(g, uid)
    sandbox.reset()
    assert sandbox.stats()["taps_issued"] == 0
    create(g, 1)
    assert g.get(taps("test.user1@contoso.com")).json()["value"] == []


def test_documented_errors(sandbox: Any) -> None:
    g = Graph(sandbox)
    uid = create(g, 1)
    missing = "00000000-0000-0000-0000-000000000001"
    assert_error(g.post(taps(missing), {}), 404, "Request_ResourceNotFound", NOT_FOUND.format(missing))
    assert_error(g.get(taps("nobody@contoso.com")), 404, "Request_ResourceNotFound",
                 NOT_FOUND.format("nobody@contoso.com"))
    assert_error(g.post(taps(uid), ["lifetimeInMinutes"]), 400, "BadRequest",
                 "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
                 "valid JSON format.")
    assert_error(g.post(taps(uid), {"lifetime": 60}), 400, "BadRequest",
                 "The property 'lifetime' does not exist on type 'microsoft.graph.temporaryAccessPassAuthentication"
                 "Method'. Make sure to only use property names that are defined by the type or mark the type as "
                 "open type.")
    assert_error(g.post(taps(uid), {"lifetimeInMinutes": "60"}), 400, "BadRequest",
                 "Cannot convert the literal '60' to the expected type 'Edm.Int32'.")
    assert_error(g.post(taps(uid), {"startDateTime": "tomorrow"}), 400, "BadRequest",
                 "Cannot convert the literal 'tomorrow' to the expected type 'Edm.DateTimeOffset'.")
    assert_error(g.post(taps(uid), {"isUsableOnce": "yes"}), 400, "BadRequest",
                 "Cannot convert the literal 'yes' to the expected type 'Edm.Boolean'.")
    bad_request(g.post(taps(uid), {"lifetimeInMinutes": 59}),
                "Invalid LifetimeInMinutes specified. The valid range between 60 and 480.")
    bad_request(g.post(taps(uid), {"lifetimeInMinutes": 481}),
                "Invalid LifetimeInMinutes specified. The valid range between 60 and 480.")
    sandbox.set_knobs(tap_policy={"min": 10, "default": 10, "max": 43200})
    assert issue(g, uid, {"lifetimeInMinutes": 43200})["lifetimeInMinutes"] == 43200
    assert issue(g, uid, {"lifetimeInMinutes": 10})["lifetimeInMinutes"] == 10
    bad_request(g.post(taps(uid), {"lifetimeInMinutes": 9}),
                "Invalid LifetimeInMinutes specified. The valid range between 10 and 43200.")
    sandbox.set_knobs(tap_policy={"once": True})
    bad_request(g.post(taps(uid), {"isUsableOnce": False}),
                "Invalid IsUsableOnce specified. The Temporary Access Pass policy only allows one-time use passes.")
    guest = create(g, 2, userType="Guest")
    bad_request(g.post(taps(guest), {}), "Temporary Access Pass cannot be added to an external guest user.")
    sandbox.set_knobs(tap_policy={"state": "disabled"})
    bad_request(g.post(taps(uid), {}), DISABLED)
    assert sandbox.stats()["taps_issued"] == 2
    assert [m["lifetimeInMinutes"] for m in g.get(taps(uid)).json()["value"]] == [10]


def test_in_a_batch(sandbox: Any) -> None:
    g = Graph(sandbox)
    ids = [create(g, n) for n in (1, 2)]
    url = "/users/{0}/authentication/temporaryAccessPassMethods"
    json_headers = {"Content-Type": "application/json"}
    r = g.post("/$batch", {"requests": [
        {"id": "1", "method": "POST", "url": url.format(ids[0]), "headers": json_headers,
         "body": {"lifetimeInMinutes": 90}},
        {"id": "2", "method": "POST", "url": url.format("test.user2@contoso.com"), "headers": json_headers,
         "body": {}},
        {"id": "3", "method": "POST", "url": url.format(ids[0]), "headers": json_headers,
         "body": {"lifetimeInMinutes": 5}},
        {"id": "4", "method": "GET", "url": url.format(ids[0]), "dependsOn": ["1"]},
    ]})
    assert r.status_code == 200, r.text
    items = {item["id"]: item for item in r.json()["responses"]}
    assert [items[k]["status"] for k in "1234"] == [201, 201, 400, 200]
    assert items["3"]["body"]["error"]["message"] == (
        "Invalid LifetimeInMinutes specified. The valid range between 60 and 480.")
    for key, uid in (("1", ids[0]), ("2", ids[1])):
        assert sandbox.tap_matches(uid, items[key]["body"]["temporaryAccessPass"])
    assert items["1"]["body"]["lifetimeInMinutes"] == 90
    listed = items["4"]["body"]["value"]
    assert [m["id"] for m in listed] == [items["1"]["body"]["id"]] and listed[0]["temporaryAccessPass"] is None
    stats = sandbox.stats()
    assert (stats["taps_issued"], stats["batch_items"], stats["batch_by_status"]) == (
        2, 4, {"200": 1, "201": 2, "400": 1})


def test_permissions(sandbox: Any) -> None:
    assert {"UserAuthenticationMethod.ReadWrite.All", "Policy.Read.AuthenticationMethod"} <= set(DEFAULT_ROLES)
    g = Graph(sandbox)
    uid = create(g, 1)
    made = issue(g, uid)
    base = tuple(r for r in DEFAULT_ROLES if r not in ("UserAuthenticationMethod.ReadWrite.All",
                                                       "Policy.Read.AuthenticationMethod"))
    sandbox.set_knobs(roles=base)
    bare = Graph(sandbox)
    for r in (bare.post(taps(uid), {}), bare.get(taps(uid)), bare.get(f"{taps(uid)}/{made['id']}"),
              bare.delete(f"{taps(uid)}/{made['id']}"), bare.get(POLICY)):
        assert_error(r, 403, "Authorization_RequestDenied", DENIED)
    batch = bare.post("/$batch", {"requests": [{"id": "a", "method": "POST", "url": taps(uid), "body": {},
                                                "headers": {"Content-Type": "application/json"}}]})
    assert batch.json()["responses"][0]["status"] == 403
    sandbox.set_knobs(roles=(*base, "UserAuthMethod-TAP.Read.All", "Policy.Read.All"))
    reader = Graph(sandbox)
    assert reader.get(taps(uid)).status_code == 200 and reader.get(POLICY).status_code == 200
    assert_error(reader.post(taps(uid), {}), 403, "Authorization_RequestDenied", DENIED)
    sandbox.set_knobs(roles=(*base, "UserAuthenticationMethod.Read.All", "Policy.ReadWrite.AuthenticationMethod"))
    other = Graph(sandbox)
    assert other.get(taps(uid)).status_code == 200 and other.get(POLICY).status_code == 200
    assert_error(other.delete(f"{taps(uid)}/{made['id']}"), 403, "Authorization_RequestDenied", DENIED)
    assert sandbox.stats()["taps_issued"] == 1 and sandbox.tap_matches(uid, made["temporaryAccessPass"])


def test_the_pass_is_kept_only_as_a_hash(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Sandbox.start(tmp_path) as sb:
        g = Graph(sb)
        uid = create(g, 1)
        made = issue(g, uid, {"lifetimeInMinutes": 120})
        passcode = made["temporaryAccessPass"]
        assert passcode not in json.dumps(sb.stats())
        g.close()
    assert caplog.text and passcode not in caplog.text
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sandbox.sqlite"))
    assert made["id"].encode() in stored and passcode.encode() not in stored
    with Sandbox.start(tmp_path) as sb:  # durable like the rest of the tenant
        assert sb.tap_matches(uid, passcode)
        g = Graph(sb)
        assert [m["lifetimeInMinutes"] for m in g.get(taps(uid)).json()["value"]] == [120]
        g.close()


def test_a_user_not_yet_replicated_is_not_found(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=60000)
    g = Graph(sb)
    uid = create(g, 1)
    assert_error(g.post(taps(uid), {}), 404, "Request_ResourceNotFound", NOT_FOUND.format(uid))
    sb.set_knobs(replication_lag_ms=0)
    assert sb.tap_matches(uid, issue(g, uid)["temporaryAccessPass"])
