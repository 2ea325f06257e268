"""OData quoting, user paths, and GraphError construction and messages (pure)."""
from __future__ import annotations

import pytest

from graph.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    GraphError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ThrottledError,
    UnauthorizedError,
    UsageLocationError,
    error_from_parts,
    parse_error_body,
)
from graph.odata import eq, in_, query_string, quote_string, user_path


def test_quote_doubles_single_quotes():
    assert quote_string("o'brien@contoso.com") == "'o''brien@contoso.com'"
    assert eq("userPrincipalName", "d'arcy@x.com") == "userPrincipalName eq 'd''arcy@x.com'"


def test_in_filter():
    assert in_("userPrincipalName", ["a@x.com", "o'k@x.com"]) == "userPrincipalName in ('a@x.com','o''k@x.com')"
    with pytest.raises(ValueError):
        in_("id", [])


def test_query_string_encodes_spaces_hash_and_ampersand_but_keeps_odata_syntax():
    qs = query_string({"$filter": "userPrincipalName eq 'a#b&c+d@x.com'", "$select": "id,displayName"})
    assert qs == "$filter=userPrincipalName%20eq%20'a%23b%26c%2Bd@x.com'&$select=id,displayName"


def test_user_paths():
    assert user_path("adele@contoso.com") == "/users/adele@contoso.com"
    assert user_path("guest_x.com#EXT#@contoso.com") == "/users/guest_x.com%23EXT%23@contoso.com"
    assert user_path("$admin@contoso.com") == "/users('$admin@contoso.com')"


def body(code, message, **inner):
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": "2023-08-15T08:49:22", "request-id": "rid-1", **inner}}}


@pytest.mark.parametrize("status, code, cls", [
    (400, "Request_BadRequest", BadRequestError), (401, "InvalidAuthenticationToken", UnauthorizedError),
    (403, "Authorization_RequestDenied", PermissionDeniedError), (404, "Request_ResourceNotFound", NotFoundError),
    (429, "TooManyRequests", ThrottledError), (503, "serviceNotAvailable", ServiceUnavailableError),
    (504, "GatewayTimeout", ServiceUnavailableError), (418, "Teapot", GraphError)])
def test_error_classes(status, code, cls):
    err = error_from_parts(status, {}, body(code, "m"))
    assert type(err) is cls
    assert (err.status, err.code, err.message, err.request_id, err.date) == (
        status, code, "m", "rid-1", "2023-08-15T08:49:22")


def test_auth_and_permission_errors_map_to_exit_3_via_authError():
    assert issubclass(UnauthorizedError, AuthError) and issubclass(PermissionDeniedError, AuthError)


def test_duplicate_upn_is_a_conflict():
    b = body("Request_BadRequest", "Another object with the same value for property userPrincipalName already "
             "exists.")
    b["error"]["details"] = [{"target": "userPrincipalName", "code": "ObjectConflict"}]
    err = error_from_parts(400, {}, b)
    assert isinstance(err, ConflictError) and isinstance(err, BadRequestError)
    assert err.details == [{"target": "userPrincipalName", "code": "ObjectConflict"}]


@pytest.mark.parametrize("status, message, details, properties", [
    (400, "Another object with the same value for property userPrincipalName already exists.", [],
     ("userPrincipalName",)),
    (400, "Another object with the same value for property mailNickname already exists.", [], ("mailNickname",)),
    (400, "m", [{"target": "userPrincipalName", "code": "ObjectConflict"}], ("userPrincipalName",)),
    (400, "One or more added object references already exist for the following modified properties: 'members'.",
     [], ("members",)),
    (409, "m", [], ())])
def test_a_conflict_names_the_properties_taken_and_is_recognised_by_type(status, message, details, properties):
    b = body("Request_BadRequest", message)
    b["error"]["details"] = details
    err = error_from_parts(status, {}, b)
    assert type(err) is ConflictError and err.properties == properties


def test_invalid_usage_location_is_its_own_bad_request():
    usage = error_from_parts(400, {}, body("Request_BadRequest", "License assignment cannot be done for user with "
                                                                 "invalid usage location."))
    assert type(usage) is UsageLocationError and isinstance(usage, BadRequestError)


def test_one_parser_reads_the_error_body():
    b = body("Request_BadRequest", "m")
    parsed = parse_error_body(b)
    assert (parsed.code, parsed.message, parsed.request_id, parsed.date, parsed.details) == (
        "Request_BadRequest", "m", "rid-1", "2023-08-15T08:49:22", [])
    assert parse_error_body(None) == parse_error_body({"error": "x"}) == parse_error_body({})


def test_str_is_one_actionable_line():
    err = error_from_parts(404, {}, body("Request_ResourceNotFound", "Resource 'x' does not exist."))
    assert str(err) == ("404 Request_ResourceNotFound: Resource 'x' does not exist. "
                        "(request-id rid-1, date 2023-08-15T08:49:22)")


def test_request_id_and_date_fall_back_to_headers():
    err = error_from_parts(500, {"Request-Id": "hdr-rid", "Date": "Tue, 01 Jan 2030 00:00:00 GMT"},
                           {"error": {"code": "x", "message": "boom"}})
    assert (err.request_id, err.date) == ("hdr-rid", "Tue, 01 Jan 2030 00:00:00 GMT")


def test_non_json_body_and_throttle_hint():
    err = error_from_parts(429, {"retry-after": "9"}, b"<html>busy</html>")
    assert isinstance(err, ThrottledError) and err.retry_after == 9.0 and err.message == "<html>busy</html>"
    assert error_from_parts(502, {}, b"").message == "Bad gateway"
