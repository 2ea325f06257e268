"""The run decides on Graph's refusals by their type (graph.errors), never by their text: conflicts, "already a
member", replication lag; and reads code, message and request-id with graph's one parser (pure)."""
from __future__ import annotations

import pytest

from graph.errors import error_from_parts
from provisioning.run.creates import is_conflict
from provisioning.run.followups import already_done
from provisioning.run.lagretry import Op, error_parts, is_lag

MEMBERS = Op("k", "POST", "/groups/g/members/$ref")
MANAGER = Op("k", "PUT", "/users/u/manager/$ref")


def body(code, message, details=()):
    return {"error": {"code": code, "message": message, "details": list(details),
                      "innerError": {"date": "2023-08-15T08:49:22", "request-id": "rid-1"}}}


@pytest.mark.parametrize("status, message, details, conflict, member", [
    (400, "Another object with the same value for property userPrincipalName already exists.", [], True, False),
    (400, "m", [{"target": "userPrincipalName", "code": "ObjectConflict"}], True, False),
    (400, "Another object with the same value for property mailNickname already exists.", [], False, False),
    (400, "One or more added object references already exist for the following modified properties: 'members'.",
     [], False, True),
    (409, "Another object with the same value for property userPrincipalName already exists.", [], True, False),
    (409, "m", [], False, False), (400, "m", [], False, False), (404, "m", [], False, False)])
def test_conflicts_and_already_a_member_are_told_by_type(status, message, details, conflict, member):
    err = error_from_parts(status, {}, body("Request_BadRequest", message, details))
    assert is_conflict(err) is conflict
    assert already_done(MEMBERS, err) is member
    assert not already_done(MANAGER, err)


def test_replication_lag_is_not_found_or_invalid_usage_location():
    usage = error_from_parts(400, {}, body("Request_BadRequest", "License assignment cannot be done for user with "
                                                                 "invalid usage location."))
    assert is_lag(usage) and is_lag(error_from_parts(404, {}, body("Request_ResourceNotFound", "gone")))
    assert not is_lag(error_from_parts(400, {}, body("Request_BadRequest", "m"))) and not is_lag(None)
    assert not is_conflict(usage) and not already_done(MEMBERS, usage)


def test_error_parts_prefer_the_error_then_the_body_then_the_headers():
    b = body("Request_BadRequest", "m")
    assert error_parts(b, None, {}) == ("Request_BadRequest", "m", "rid-1")
    assert error_parts(None, None, {"Request-Id": "hdr"}) == ("", "", "hdr")
    assert error_parts(b, error_from_parts(400, {"request-id": "h"}, body("Other", "n")), {}) == ("Other", "n", "rid-1")
