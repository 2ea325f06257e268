"""The sandbox tenant: a local, faithful stand-in for Microsoft Entra ID + Microsoft Graph over HTTPS.

``from sandbox import Sandbox``; see :mod:`sandbox.app` for the API, :mod:`sandbox.config` for the knobs and
``python -m sandbox serve --help`` for the command line. Imports nothing from ``graph`` or ``provisioning``.

Modules: ``app`` (Sandbox), ``server`` (HTTPS transport, transport faults, latency), ``service`` (dispatcher,
503 fault, throttling, roles, stats), ``auth`` (OIDC, token endpoint, bearer checks), ``users`` + ``userrules``
(/users), ``directory`` (/domains, /organization), ``groups`` (/groups, members/$ref, members@odata.bind),
``licenses`` (/subscribedSkus, assignLicense), ``manager`` (manager/$ref), ``mail`` (sendMail, recorded for
``GET /_sandbox/mail``), ``deleted`` (/directory/deletedItems: list, get, restore, purge), ``tap`` (Temporary
Access Pass policy and methods), ``refs`` (user
addressing, replication-lag lookups, @odata.id parsing), ``batch``
($batch), ``throttle``, ``odata`` ($filter), ``store`` (SQLite + indexes), ``keys`` (key material), ``config``
(tenant constants, knobs), ``cli``. A resource family is a module with a ``register(router)`` function called
from ``Service.__init__``.

graph-facts behaviours implemented: 1.1-1.8 (POST /users permissions, required properties, length limits,
UPN characters/lengths/verified domain, federated domain needs onPremisesImmutableId, mailNickname rules, 201
body with @odata.context/@odata.id and default properties, error envelope with innerError date/request-id/
client-request-id, ObjectConflict details, the catalogue's messages); 2 (password 8-256 ASCII, 3 of 4 classes,
DisableStrongPassword); 3 (RU bucket by tenant size, 3,000 writes/150 s, tenant 18,000/300 s, costs and
modifiers, x-ms-resource-unit, x-ms-throttle-limit-percentage from 80 %, 429 + Retry-After + scope/information,
refused requests charged too); 3.6 object quota; 4 ($batch: 20 max, relative URLs, per-item throttling,
dependsOn/424, shuffled order); 5
(replication lag, immediate uniqueness; ConsistencyLevel advanced queries); 6.1 (filters, $select, $top 1-999,
nextLink paging); 6.2 (domains); 7.1-7.3 and 7.5 (client credentials with secret, Basic or certificate
assertion; AADSTS errors and shape); 1.8 401/403 for tokens and roles; 9.1 (subscribedSkus with seats from the
``skus`` knob and consumedUnits, assignLicense 200 with the user, "invalid usage location" including a
usageLocation set within the replication lag, "Subscription {skuId} does not have any available licenses.");
9.2 (fixed groups incl. a role-assignable one, members/$ref 204 / 400 "One or more added object references
already exist ..." / 404, members@odata.bind up to 20 all-or-nothing, GroupMember.ReadWrite.All + User.ReadWrite.All,
RoleManagement.ReadWrite.Directory for role-assignable groups, GET members 3 RU); 9.3 (manager/$ref 204, GET
manager, 404 "Resource 'manager' ..."); replication lag on all of them (404 while the user is not replicated);
sendMail 202 with Mail.Send, ErrorInvalidUser [OBS text], messages recorded; all usable inside $batch.

graph-facts addendum behaviours (issue 17, checked against msgraph-sdk, azure-identity, MSAL, the v1.0 CSDL and
Learn; sources in each module): AADSTS7000222 for an expired secret (knob ``secret_expired``, :mod:`.auth`);
AADSTS70011 text of the client-credentials page; > 15 ``or`` clauses (``in`` values counted) -> 400
Request_UnsupportedQuery (:mod:`.odata`); DELETE /users -> 204 into /directory/deletedItems, restore
(:mod:`.users`, :mod:`.deleted`); ``$expand=manager``, ``identities`` as a collection, ``@odata.context`` naming
the ``$select`` list (:mod:`.users`); ``SaveToSentItems``/``Message`` as the CSDL spells them (:mod:`.mail`);
$batch ids case-insensitive, ``/v1.0/...`` item urls 400 for the segment 'v1.0', absolute urls "Invalid batch
payload format.", item headers Cache-Control / OData-Version (:mod:`.batch`); mailNickname ``details``,
"Property {name} value is required but is empty or missing.", the federated-domain text (:mod:`.userrules`);
405 "...for the request target." (:mod:`.wire`); no ``creationOptions`` on groups (:mod:`.groups`); empty path
segments collapsed (``/v1.0//users`` is ``/v1.0/users``, as Graph answered manicminer/hamilton#223's
``GET /v1.0//servicePrincipals``; :mod:`.server`); the sandbox host without port as a ``/.default`` resource
(what kiota derives, :mod:`.auth`).

UNCONFIRMED items and what the sandbox does: (1) >20 batch -> 400 BadRequest, own text; (2) inner header spelled
``Retry-After``; (3) 429 code ``TooManyRequests``, knob ``throttle_code``; (4) no extra per-second write limit;
(5) no Location header; (6) usageLocation -> "Invalid value specified ..." pattern, empty header -> "Access token
is empty.", "Password cannot contain username." -> 400 Request_BadRequest; (7) group mailNickname character rules
applied, mailNickname not unique, UPN unique case-insensitively; (8) legacy Directory_QuotaExceeded text, knob
``object_quota``; (9) Domain.Read.All accepted for domains; (10) assignLicense needs both arrays (400 with the
OData "missing parameters" text; knob ``assign_license_requires_both``), manager-not-found uses the general 404
text; (11) lag duration knob ``replication_lag_ms``; (13) AADSTS7000216 answered 401.
Follow-up texts chosen by the sandbox (UNCONFIRMED): unknown skuId "License {id} does not correspond to a valid
company License.", removing an unheld licence "User does not have a corresponding license {id}.", >20 binds,
bad or missing @odata.id, own manager "A user cannot be their own manager.", sendMail's 404 status for
ErrorInvalidUser, bad recipient / attachment texts; whether a mailbox needs an Exchange licence (knob
``mailbox_requires_license``, off by default). Not modelled: nested groups, group creation/editing, disabledPlans
validation, mail size limits, group-based licensing, the 30-day retention of deleted users, restored
memberships, ``$expand`` of anything but ``manager``, ``$orderBy``.
"""
from __future__ import annotations

from .app import Sandbox
from .config import CLIENT_ID, DOMAINS, TENANT_ID, TENANT_NAME, Knobs

__all__ = ["Sandbox", "Knobs", "TENANT_ID", "CLIENT_ID", "TENANT_NAME", "DOMAINS"]
