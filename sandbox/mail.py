"""Graph ``POST /users/{id | upn}/sendMail``, recorded so tests can read what was "sent".

Request: ``{"message": {subject, body{contentType, content}, toRecipients/ccRecipients/bccRecipients
[{emailAddress{address, name}}], attachments[{"@odata.type": "#microsoft.graph.fileAttachment", name, contentType,
contentBytes (base64)}]}, "saveToSentItems": bool}``; the parameters are also read as the CSDL spells them,
``Message`` and ``SaveToSentItems`` (msgraph-sdk sends those), so ``SaveToSentItems: false`` is honoured too.
Needs the Mail.Send application permission (403 Authorization_RequestDenied otherwise). Success: **202
Accepted**, no body. Nothing leaves the machine: the message is recorded in the store and listed by
``GET /_sandbox/mail`` (``DELETE /_sandbox/mail`` forgets them; ``reset`` too), with each attachment's ``name``,
``contentType``, decoded ``size`` and ``contentBytes``.

Errors, in order:
- sender missing or within replication lag -> 404 ErrorInvalidUser "The requested user '{id or upn}' is invalid."
  [OBS: microsoftgraph/aspnet-snippets-sample#25, InnoGE/laravel-msgraph-mail#16; the status is UNCONFIRMED];
- with the ``mailbox_requires_license`` knob, a sender holding no SKU with an Exchange plan -> 404
  MailboxNotEnabledForRESTAPI "The mailbox is either inactive, soft-deleted, or is hosted on-premise." [OBS];
- no ``message`` -> 400 BadRequest ``MSG_MISSING`` (the OData reader's wording, UNCONFIRMED for sendMail);
- no recipient -> 400 ErrorInvalidRecipients "At least one recipient is required, but none were found." [OBS];
  an address without ``@`` -> 400 ErrorInvalidRecipients ``MSG_BAD_RECIPIENT`` (UNCONFIRMED);
- an attachment that is not a fileAttachment with a name and valid base64 ``contentBytes`` -> 400
  ErrorInvalidRequest / RequestBodyRead (UNCONFIRMED texts).
Not modelled: size limits (4 MB request, 3 MB attachments -> upload sessions), delivery, the Sent Items folder.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

from .licenses import exchange_skus
from .refs import USER, user_key, visible_user
from .wire import Request, Response, Router, error

SEND = ("Mail.Send",)
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
MSG_INVALID_USER = "The requested user '{0}' is invalid."
MSG_NO_MAILBOX = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
MSG_MISSING = ("One or more parameters of the operation 'sendMail' are missing from the request payload. "
               "The missing parameters are: Message.")
MSG_NO_RECIPIENTS = "At least one recipient is required, but none were found."
MSG_BAD_RECIPIENT = "At least one recipient is not valid., Recipient '{0}' is not resolved."
MSG_ATTACHMENT_TYPE = "Only '#microsoft.graph.fileAttachment' attachments with a name are supported by the sandbox."
MSG_BASE64 = "Cannot convert the literal '{0}' to the expected type 'Edm.Binary'."
RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients")


def register(router: Router) -> None:
    """Add the sendMail route."""
    router.add("POST", USER + r"/sendMail", SEND, send_mail)


def _addresses(req: Request, message: dict[str, Any], field: str) -> list[str] | Response:
    out = []
    for item in message.get(field) or []:
        address = ((item or {}).get("emailAddress") or {}).get("address") if isinstance(item, dict) else None
        if not isinstance(address, str) or address.count("@") != 1 or address.startswith("@") \
                or address.endswith("@"):
            return error(req, 400, "ErrorInvalidRecipients", MSG_BAD_RECIPIENT.format(address))
        out.append(address)
    return out


def _attachments(req: Request, message: dict[str, Any]) -> list[dict[str, Any]] | Response:
    out = []
    for item in message.get("attachments") or []:
        if not isinstance(item, dict) or item.get("@odata.type") != FILE_ATTACHMENT \
                or not isinstance(item.get("name"), str) or not isinstance(item.get("contentBytes"), str):
            return error(req, 400, "ErrorInvalidRequest", MSG_ATTACHMENT_TYPE)
        try:
            raw = base64.b64decode(item["contentBytes"], validate=True)
        except (binascii.Error, ValueError):
            return error(req, 400, "RequestBodyRead", MSG_BASE64.format(item["contentBytes"][:40]))
        out.append({"name": item["name"], "contentType": item.get("contentType") or "application/octet-stream",
                    "size": len(raw), "isInline": bool(item.get("isInline")),
                    "contentBytes": item["contentBytes"]})
    return out


def send_mail(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /users/{id | upn}/sendMail -> 202."""
    key = user_key(groups)
    sender = visible_user(svc, key)
    if sender is None:
        return error(req, 404, "ErrorInvalidUser", MSG_INVALID_USER.format(key))
    if svc.knobs.mailbox_requires_license:
        held = {str(lic.get("skuId")).lower() for lic in sender.data.get("assignedLicenses") or []}
        if not held & exchange_skus(svc):
            return error(req, 404, "MailboxNotEnabledForRESTAPI", MSG_NO_MAILBOX)
    body = req.body
    message = body.get("message", body.get("Message")) if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return error(req, 400, "BadRequest", MSG_MISSING)
    recipients: dict[str, list[str]] = {}
    for field in RECIPIENT_FIELDS:
        got = _addresses(req, message, field)
        if isinstance(got, Response):
            return got
        recipients[field] = got
    if not any(recipients.values()):
        return error(req, 400, "ErrorInvalidRecipients", MSG_NO_RECIPIENTS)
    attachments = _attachments(req, message)
    if isinstance(attachments, Response):
        return attachments
    given = message.get("body")
    content = given if isinstance(given, dict) else {}
    record = {
        "id": str(uuid.uuid4()),
        "sentDateTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "senderId": sender.data["id"], "from": sender.data["userPrincipalName"],
        "saveToSentItems": bool(body.get("saveToSentItems", body.get("SaveToSentItems", True))),
        "subject": message.get("subject"),
        "body": {"contentType": content.get("contentType", "text"), "content": content.get("content")},
        **recipients, "attachments": attachments, "requestId": req.request_id,
    }
    svc.store.add_mail(record)
    svc.count("mail_sent")
    return Response(202)
