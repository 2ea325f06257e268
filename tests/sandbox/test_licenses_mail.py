"""subscribedSkus, assignLicense (seats, usageLocation, errors), sendMail recording, persistence and reset."""
from __future__ import annotations

import base64
import contextlib
import io
from pathlib import Path
from typing import Any

import requests
from sbtools import Graph, assert_error, new_user

from sandbox import Sandbox
from sandbox.cli import build_parser, knobs_from_args
from sandbox.cli import main as cli_main
from sandbox.config import DEFAULT_ROLES

E3, E5 = "6fd2c87f-b296-42f0-b197-1e91e994b900", "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
EXO, FLOW = "4b9405b0-7788-4568-add1-99614e613b69", "f30db892-07e9-47e9-837c-80727f46fd3d"
ALL_STAFF = "3eb50601-ad06-45a4-ab30-12e4a5c86829"
USAGE = "License assignment cannot be done for user with invalid usage location."
DENIED = "Insufficient privileges to complete the operation."


def add(*skus: str, remove: tuple[str, ...] = (), disabled: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"addLicenses": [{"skuId": s, "disabledPlans": list(disabled)} for s in skus],
            "removeLicenses": list(remove)}


def create(g: Graph, n: int | str, **extra: Any) -> str:
    r = g.post("/users", new_user(n, **extra))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def skus(g: Graph) -> dict[str, dict[str, Any]]:
    r = g.get("/subscribedSkus")
    assert r.status_code == 200, r.text
    return {s["skuPartNumber"]: s for s in r.json()["value"]}


def mail_body(*attachments: dict[str, Any], to: str = "hr@example.org") -> dict[str, Any]:
    return {"message": {"subject": "Welcome", "body": {"contentType": "HTML", "content": "<p>Hi</p>"},
                        "toRecipients": [{"emailAddress": {"address": to}}], "attachments": list(attachments)},
            "saveToSentItems": False}


def attachment(name: str, data: bytes) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.fileAttachment", "name": name,
            "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "contentBytes": base64.b64encode(data).decode()}


def test_subscribed_skus(sandbox_factory: Any) -> None:
    sb = sandbox_factory(skus={"ENTERPRISEPACK": 2, "CUSTOM_SKU": 7})
    g = Graph(sb)
    r = g.get("/subscribedSkus")
    assert r.status_code == 200 and r.headers["x-ms-resource-unit"] == "3"
    assert r.json()["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus"
    got = skus(g)
    assert set(got) == {"ENTERPRISEPACK", "SPE_E5", "EXCHANGESTANDARD", "FLOW_FREE", "CUSTOM_SKU"}
    assert {p: s["skuId"] for p, s in got.items() if p != "CUSTOM_SKU"} == {
        "ENTERPRISEPACK": E3, "SPE_E5": E5, "EXCHANGESTANDARD": EXO, "FLOW_FREE": FLOW}
    assert sb.sku_ids == {p: s["skuId"] for p, s in got.items()}
    e3 = got["ENTERPRISEPACK"]
    assert e3["prepaidUnits"] == {"enabled": 2, "lockedOut": 0, "suspended": 0, "warning": 0}
    assert e3["consumedUnits"] == 0 and e3["capabilityStatus"] == "Enabled" and e3["appliesTo"] == "User"
    assert e3["id"] == f"{sb.tenant_id}_{E3}"
    assert "EXCHANGE_S_ENTERPRISE" in {p["servicePlanName"] for p in e3["servicePlans"]}
    assert got["SPE_E5"]["prepaidUnits"]["enabled"] == 5 and got["CUSTOM_SKU"]["prepaidUnits"]["enabled"] == 7
    one = g.get(f"/subscribedSkus/{sb.tenant_id}_{E5}")
    assert one.status_code == 200 and one.json()["skuPartNumber"] == "SPE_E5"
    assert g.get("/subscribedSkus?$select=skuId,skuPartNumber").headers["x-ms-resource-unit"] == "2"
    sb.set_knobs(roles=("User.Read.All",))
    assert_error(Graph(sb).get("/subscribedSkus"), 403, "Authorization_RequestDenied", DENIED)


def test_assign_license_seats_and_select(sandbox_factory: Any) -> None:
    sb = sandbox_factory(skus={"ENTERPRISEPACK": 2})
    g = Graph(sb)
    u1, u2, u3 = (create(g, i, usageLocation="US") for i in (1, 2, 3))
    r = g.post(f"/users/{u1}/assignLicense", add(E3, disabled=("57ff2da0-773e-42df-b2af-ffb7a2317929",)))
    assert r.status_code == 200 and r.headers["x-ms-resource-unit"] == "1"
    body = r.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    assert body["id"] == u1 and body["userPrincipalName"] == "test.user1@contoso.com" and "businessPhones" in body
    sel = g.get(f"/users/{u1}?$select=assignedLicenses").json()
    assert sel["assignedLicenses"] == [{"disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"], "skuId": E3}]
    assert g.get(f"/users/{u2}?$select=assignedLicenses").json()["assignedLicenses"] == []
    assert g.post("/users/test.user2@contoso.com/assignLicense", add(E3)).status_code == 200  # by UPN
    assert skus(g)["ENTERPRISEPACK"]["consumedUnits"] == 2
    assert_error(g.post("/users('test.user3@contoso.com')/assignLicense", add(E3)), 400, "Request_BadRequest",
                 f"Subscription {E3} does not have any available licenses.")
    assert_error(g.post(f"/users/{u3}/assignLicense", add(EXO, E3)), 400, "Request_BadRequest",
                 f"Subscription {E3} does not have any available licenses.")
    assert g.get(f"/users/{u3}?$select=assignedLicenses").json()["assignedLicenses"] == []  # all or nothing
    assert g.post(f"/users/{u1}/assignLicense", add(E3)).status_code == 200  # held: disabledPlans updated only
    assert g.get(f"/users/{u1}?$select=assignedLicenses").json()["assignedLicenses"] == [
        {"disabledPlans": [], "skuId": E3}]
    assert skus(g)["ENTERPRISEPACK"]["consumedUnits"] == 2
    r = g.post(f"/users/{u1}/assignLicense", add(EXO, remove=(E3,)))
    assert r.status_code == 200
    assert g.get(f"/users/{u1}?$select=assignedLicenses").json()["assignedLicenses"] == [
        {"disabledPlans": [], "skuId": EXO}]
    got = skus(g)
    assert got["ENTERPRISEPACK"]["consumedUnits"] == 1 and got["EXCHANGESTANDARD"]["consumedUnits"] == 1
    assert g.post(f"/users/{u3}/assignLicense", add(E3)).status_code == 200
    sb.set_knobs(skus={"ENTERPRISEPACK": 50})  # more seats bought
    assert skus(g)["ENTERPRISEPACK"]["prepaidUnits"]["enabled"] == 50
    assert sb.stats()["licenses_assigned"] == 4 and sb.stats()["writes"] >= 9


def test_assign_license_errors(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    nowhere, located = create(g, 1), create(g, 2, usageLocation="GB")
    assert_error(g.post(f"/users/{nowhere}/assignLicense", add(E3)), 400, "Request_BadRequest", USAGE)
    assert g.post(f"/users/{nowhere}/assignLicense", add()).status_code == 200  # nothing to add: no check
    bogus = "00000000-1111-4222-8333-444444444444"
    assert_error(g.post(f"/users/{located}/assignLicense", add(bogus)), 400, "Request_BadRequest",
                 f"License {bogus} does not correspond to a valid company License.")
    assert_error(g.post(f"/users/{located}/assignLicense", add(remove=(E5,))), 400, "Request_BadRequest",
                 f"User does not have a corresponding license {E5}.")
    assert_error(g.post(f"/users/{located}/assignLicense", {"addLicenses": [{"skuId": E3, "disabledPlans": []}]}),
                 400, "BadRequest", "One or more parameters of the operation 'assignLicense' are missing from the "
                                    "request payload. The missing parameters are: removeLicenses.")
    assert_error(g.post(f"/users/{located}/assignLicense", {"addLicenses": "E3", "removeLicenses": []}), 400,
                 "Request_BadRequest", "Invalid value specified for property 'addLicenses' of resource 'User'.")
    ghost = "55555555-1111-4222-8333-444444444444"
    assert_error(g.post(f"/users/{ghost}/assignLicense", add(E3)), 404, "Request_ResourceNotFound",
                 f"Resource '{ghost}' does not exist or one of its queried reference-property objects are not present.")
    sb.set_knobs(assign_license_requires_both=False)
    assert g.post(f"/users/{located}/assignLicense", {"addLicenses": [{"skuId": E3}]}).status_code == 200
    sb.set_knobs(roles=("User.Read.All", "Organization.Read.All"))
    assert_error(Graph(sb).post(f"/users/{located}/assignLicense", add(E5)), 403, "Authorization_RequestDenied",
                 DENIED)
    sb.set_knobs(roles=("LicenseAssignment.ReadWrite.All",))
    assert Graph(sb).post(f"/users/{located}/assignLicense", add(E5)).status_code == 200


def test_send_mail_is_recorded(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    create(g, 1)
    data = bytes(range(256)) * 40
    r = g.post("/users/test.user1@contoso.com/sendMail", mail_body(attachment("results.xlsx", data)))
    assert r.status_code == 202 and r.content == b"" and r.headers["x-ms-resource-unit"] == "1"
    recorded = requests.get(f"{sb.base_url}/_sandbox/mail", verify=str(sb.ca_bundle)).json()["value"]
    assert recorded == sb.mail() and len(recorded) == 1
    msg = recorded[0]
    assert msg["from"] == "test.user1@contoso.com" and msg["subject"] == "Welcome"
    assert msg["toRecipients"] == ["hr@example.org"] and msg["ccRecipients"] == [] and msg["saveToSentItems"] is False
    assert msg["body"] == {"contentType": "HTML", "content": "<p>Hi</p>"}
    att = msg["attachments"][0]
    assert att["name"] == "results.xlsx" and att["size"] == len(data) and base64.b64decode(att["contentBytes"]) == data
    assert att["contentType"].endswith("spreadsheetml.sheet")
    assert msg["requestId"] == r.headers["request-id"]
    assert_error(g.post("/users/nobody@contoso.com/sendMail", mail_body()), 404, "ErrorInvalidUser",
                 "The requested user 'nobody@contoso.com' is invalid.")
    none = mail_body()
    none["message"]["toRecipients"] = []
    assert_error(g.post("/users/test.user1@contoso.com/sendMail", none), 400, "ErrorInvalidRecipients",
                 "At least one recipient is required, but none were found.")
    assert_error(g.post("/users/test.user1@contoso.com/sendMail", mail_body(to="not-an-address")), 400,
                 "ErrorInvalidRecipients", "At least one recipient is not valid., Recipient 'not-an-address' is not "
                                           "resolved.")
    assert_error(g.post("/users/test.user1@contoso.com/sendMail", {"saveToSentItems": True}), 400, "BadRequest",
                 "One or more parameters of the operation 'sendMail' are missing from the request payload. The "
                 "missing parameters are: Message.")
    bad = attachment("x.bin", b"x")
    bad["contentBytes"] = "!!!not base64"
    assert_error(g.post("/users/test.user1@contoso.com/sendMail", mail_body(bad)), 400, "RequestBodyRead",
                 "Cannot convert the literal '!!!not base64' to the expected type 'Edm.Binary'.")
    assert len(sb.mail()) == 1 and sb.stats()["mail_sent"] == 1
    assert requests.delete(f"{sb.base_url}/_sandbox/mail", verify=str(sb.ca_bundle)).json() == {"deleted": 1}
    assert sb.mail() == []
    sb.set_knobs(roles=tuple(r for r in DEFAULT_ROLES if r != "Mail.Send"))
    assert_error(Graph(sb).post("/users/test.user1@contoso.com/sendMail", mail_body()), 403,
                 "Authorization_RequestDenied", DENIED)


def test_send_mail_needs_exchange_licence_when_asked(sandbox_factory: Any) -> None:
    sb = sandbox_factory(mailbox_requires_license=True)
    g = Graph(sb)
    uid = create(g, 1, usageLocation="US")
    assert_error(g.post(f"/users/{uid}/sendMail", mail_body()), 404, "MailboxNotEnabledForRESTAPI",
                 "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    assert g.post(f"/users/{uid}/assignLicense", add(FLOW)).status_code == 200  # no Exchange plan in it
    assert g.post(f"/users/{uid}/sendMail", mail_body()).status_code == 404
    assert g.post(f"/users/{uid}/assignLicense", add(EXO)).status_code == 200
    assert g.post(f"/users/{uid}/sendMail", mail_body()).status_code == 202


def test_followups_persist_across_restart_and_reset(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path, skus={"SPE_E5": 3}) as sb:
        g = Graph(sb)
        boss, emp = create(g, 1, usageLocation="US"), create(g, 2, usageLocation="US")
        assert g.post(f"/groups/{ALL_STAFF}/members/$ref", {"@odata.id": f"/v1.0/directoryObjects/{emp}"}
                      ).status_code == 204
        assert g.post(f"/users/{emp}/assignLicense", add(E5)).status_code == 200
        assert g.put(f"/users/{emp}/manager/$ref", {"@odata.id": f"/v1.0/users/{boss}"}).status_code == 204
        assert g.post(f"/users/{boss}/sendMail", mail_body(attachment("a.txt", b"hello"))).status_code == 202
    with Sandbox.start(tmp_path, skus={"SPE_E5": 3}) as sb:
        g = Graph(sb)
        assert [m["id"] for m in g.get(f"/groups/{ALL_STAFF}/members").json()["value"]] == [emp]
        assert g.get(f"/users/{emp}?$select=assignedLicenses").json()["assignedLicenses"][0]["skuId"] == E5
        assert skus(g)["SPE_E5"]["consumedUnits"] == 1
        assert g.get(f"/users/{emp}/manager").json()["id"] == boss
        assert [m["attachments"][0]["size"] for m in sb.mail()] == [5]
        assert g.post(f"/groups/{ALL_STAFF}/members/$ref", {"@odata.id": f"/v1.0/directoryObjects/{emp}"}
                      ).status_code == 400
        reset = requests.post(f"{sb.base_url}/_sandbox/reset", verify=str(sb.ca_bundle))
        assert reset.json() == {"reset": True, "users": 0}
        assert g.get(f"/groups/{ALL_STAFF}/members").json()["value"] == [] and sb.mail() == []
        assert skus(g)["SPE_E5"]["consumedUnits"] == 0 and len(g.get("/groups").json()["value"]) == 5
        boss = create(g, 1)
        emp = create(g, 2)
        assert g.post(f"/groups/{ALL_STAFF}/members/$ref", {"@odata.id": f"/v1.0/directoryObjects/{emp}"}
                      ).status_code == 204
        assert g.put(f"/users/{emp}/manager/$ref", {"@odata.id": f"/v1.0/users/{boss}"}).status_code == 204
    out, err = io.StringIO(), io.StringIO()
    assert cli_main(["reset", "--state", str(tmp_path)], stdout=out, stderr=err, prog="sandbox") == 0
    with Sandbox.start(tmp_path) as sb:
        g = Graph(sb)
        assert g.get(f"/groups/{ALL_STAFF}/members").json()["value"] == []
        assert sb.stats()["users"] == 0


def test_cli_sku_options() -> None:
    parser = build_parser("sandbox")
    args = parser.parse_args(["serve", "--sku", "enterprisepack=50", "--sku", "NEW_SKU=3",
                              "--mailbox-requires-license", "--lenient-assign-license"])
    assert knobs_from_args(args) == {"skus": {"ENTERPRISEPACK": 50, "NEW_SKU": 3}, "mailbox_requires_license": True,
                                     "assign_license_requires_both": False}
    assert knobs_from_args(parser.parse_args(["serve"])) == {}
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli_main(["serve", "--sku", "E3"], stdout=io.StringIO(), stderr=err, prog="sandbox") == 2
    assert "expected PART=SEATS" in err.getvalue()
