"""Microsoft's own Python clients against the sandbox, set up as the README's sandbox section tells a user to:
azure-identity (secret and certificate) for the token, msgraph-sdk (kiota + msgraph-core) for Graph.

The SDK is async; each test drives it with ``asyncio.run``. Nothing here reaches a Microsoft host: instance
discovery is off and every URL is the sandbox's.
"""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from azure.identity.aio import CertificateCredential, ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.user import User
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

GRAPH = "https://graph.microsoft.com/v1.0"


def secret_credential(sb: Any) -> ClientSecretCredential:
    """azure-identity with the client secret: the sandbox's authority, its CA, no instance discovery."""
    return ClientSecretCredential(sb.tenant_id, sb.client_id, sb.client_secret, authority=sb.authority_host,
                                  disable_instance_discovery=True, connection_verify=str(sb.ca_bundle))


def certificate_credential(sb: Any) -> CertificateCredential:
    """azure-identity with the certificate credential (PEM holding the certificate and its encrypted key)."""
    return CertificateCredential(sb.tenant_id, sb.client_id, certificate_path=str(sb.certificate_path),
                                 password=sb.certificate_password, authority=sb.authority_host,
                                 disable_instance_discovery=True, connection_verify=str(sb.ca_bundle))


def graph_client(sb: Any, credential: Any, base_url: str = "/v1.0") -> GraphServiceClient:
    """msgraph-sdk at the sandbox: the host allowed for tokens, the CA, the base URL (scopes are derived)."""
    auth = AzureIdentityAuthenticationProvider(credential, allowed_hosts=[sb.host])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=str(sb.ca_bundle))))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = sb.graph_endpoint + base_url
    return GraphServiceClient(request_adapter=adapter)


def run(sb: Any, body: Callable[[GraphServiceClient], Awaitable[Any]], *, certificate: bool = False,
        base_url: str = "/v1.0") -> Any:
    async def main() -> Any:
        credential = certificate_credential(sb) if certificate else secret_credential(sb)
        async with credential:
            return await body(graph_client(sb, credential, base_url))
    return asyncio.run(main())


def new_user(n: int) -> User:
    return User(account_enabled=True, display_name=f"SDK User {n}", mail_nickname=f"sdk.user{n}",
                user_principal_name=f"sdk.user{n}@contoso.com",
                password_profile=PasswordProfile(password="Xk9#mq2Lp!", force_change_password_next_sign_in=True))


@pytest.mark.parametrize("certificate", [False, True], ids=["secret", "certificate"])
def test_token_with_azure_identity(sandbox: Any, certificate: bool) -> None:
    async def body(client: GraphServiceClient) -> Any:
        return await client.domains.get()
    domains = run(sandbox, body, certificate=certificate)
    assert "contoso.com" in {d.id for d in domains.value}


def test_base_url_with_a_trailing_slash(sandbox: Any) -> None:
    # the SDK then sends /v1.0//users, which Graph answers as /v1.0/users
    async def body(client: GraphServiceClient) -> Any:
        await client.users.post(new_user(1))
        return await client.users.by_user_id("sdk.user1@contoso.com").get()
    assert run(sandbox, body, base_url="/v1.0/").user_principal_name == "sdk.user1@contoso.com"


@pytest.mark.slow
def test_page_iterator_over_more_than_999_users(sandbox_factory: Any) -> None:
    sb = sandbox_factory(users=1005)

    async def body(client: GraphServiceClient) -> list[str]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=999, select=["id", "userPrincipalName"])
        first = await client.users.get(RequestConfiguration(query_parameters=query))
        assert len(first.value) == 999 and first.odata_next_link
        seen: list[str] = []

        def collect(user: User) -> bool:
            seen.append(user.user_principal_name)
            return True
        await PageIterator(first, client.request_adapter).iterate(collect)
        return seen
    seen = run(sb, body)
    assert len(seen) == len(set(seen)) == 1005
    assert seen[0] == "seed.user00001@contoso.com" and seen[-1] == "seed.user01005@contoso.com"


def test_users_create_get_duplicate_patch_delete(sandbox: Any) -> None:
    async def body(client: GraphServiceClient) -> dict[str, Any]:
        created = await client.users.post(new_user(1))
        by_id = await client.users.by_user_id(created.id).get()
        by_upn = await client.users.by_user_id("SDK.User1@contoso.com").get()
        with pytest.raises(ODataError) as dup:
            await client.users.post(new_user(1))
        await client.users.by_user_id(created.id).patch(User(job_title="Boss", department="Ops"))
        patched = await client.users.by_user_id(created.id).get(RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=["jobTitle", "department"])))
        await client.users.by_user_id(created.id).delete()
        with pytest.raises(ODataError) as gone:
            await client.users.by_user_id(created.id).get()
        deleted = await client.directory.deleted_items.graph_user.get()
        return {"created": created, "by_id": by_id, "by_upn": by_upn, "dup": dup.value, "patched": patched,
                "gone": gone.value, "deleted": deleted}
    r = run(sandbox, body)
    assert r["created"].user_principal_name == "sdk.user1@contoso.com" and r["created"].id
    assert r["by_id"].id == r["by_upn"].id == r["created"].id
    dup = r["dup"]
    assert dup.response_status_code == 400 and dup.error.code == "Request_BadRequest"
    assert dup.error.message == "Another object with the same value for property userPrincipalName already exists."
    assert [(d.code, d.target) for d in dup.error.details] == [("ObjectConflict", "userPrincipalName")]
    assert (r["patched"].job_title, r["patched"].department) == ("Boss", "Ops")
    assert r["gone"].response_status_code == 404 and r["gone"].error.code == "Request_ResourceNotFound"
    assert [u.id for u in r["deleted"].value] == [r["created"].id]
    assert sandbox.stats()["users"] == 0


def test_group_members_manager_and_send_mail(sandbox: Any) -> None:
    sales = sandbox.groups["Sales"]

    async def body(client: GraphServiceClient) -> dict[str, Any]:
        user = await client.users.post(new_user(1))
        boss = await client.users.post(new_user(2))
        await client.groups.by_group_id(sales).members.ref.post(
            ReferenceCreate(odata_id=f"{GRAPH}/directoryObjects/{user.id}"))
        members = await client.groups.by_group_id(sales).members.get()
        await client.users.by_user_id(user.id).manager.ref.put(ReferenceUpdate(odata_id=f"{GRAPH}/users/{boss.id}"))
        manager = await client.users.by_user_id(user.id).manager.get()
        message = Message(subject="Welcome", body=ItemBody(content_type=BodyType.Text, content="Hello"),
                          to_recipients=[Recipient(email_address=EmailAddress(address="hr@example.org"))])
        await client.users.by_user_id(boss.id).send_mail.post(
            SendMailPostRequestBody(message=message, save_to_sent_items=False))
        return {"user": user, "boss": boss, "members": members, "manager": manager}
    r = run(sandbox, body)
    assert [m.id for m in r["members"].value] == [r["user"].id]
    assert r["manager"].id == r["boss"].id and r["manager"].odata_type == "#microsoft.graph.user"
    [mail] = sandbox.mail()
    assert mail["from"] == "sdk.user2@contoso.com" and mail["subject"] == "Welcome"
    assert mail["toRecipients"] == ["hr@example.org"] and mail["saveToSentItems"] is False


def test_batch_request_content_with_relative_urls(sandbox: Any, graph: Any) -> None:
    async def body(client: GraphServiceClient) -> Any:
        batch = BatchRequestContent()
        for n in (1, 2):
            batch.add_request(f"create{n}", BatchRequestItem(client.users.to_post_request_information(new_user(n)),
                                                             id=f"create{n}"))
        get = BatchRequestItem(client.users.by_user_id("sdk.user1@contoso.com").to_get_request_information(),
                               id="get", depends_on=["create1"])
        batch.add_request(get.id, get)
        assert [item.url for item in batch.requests.values()] == \
            ["/users", "/users", "/users/sdk.user1%40contoso.com"]  # relative to the version, as Graph wants
        return await client.batch.post(batch_request_content=batch)
    response = run(sandbox, body)
    assert response.get_response_status_codes() == {"create1": 201, "create2": 201, "get": 200}
    assert sorted(u["userPrincipalName"] for u in graph.get("/users").json()["value"]) == \
        ["sdk.user1@contoso.com", "sdk.user2@contoso.com"]


def test_batch_item_with_an_absolute_url_is_refused_as_graph_does(sandbox: Any) -> None:
    async def body(client: GraphServiceClient) -> Any:
        batch = BatchRequestContent()
        item = BatchRequestItem(client.users.to_post_request_information(new_user(1)), id="1")
        item.url = f"{sandbox.graph_endpoint}/v1.0/users"  # what users of msgraph-sdk-python#1015 ended up sending
        batch.add_request(item.id, item)
        return await client.batch.post(batch_request_content=batch)
    with pytest.raises(APIError) as exc:
        run(sandbox, body)
    assert exc.value.response_status_code == 400
    assert sandbox.stats()["users"] == 0


def test_429_is_retried_by_the_sdks_retry_handler(sandbox_factory: Any) -> None:
    sb = sandbox_factory(write_quota="1/1")

    async def body(client: GraphServiceClient) -> list[str]:
        return [(await client.users.post(new_user(n))).user_principal_name for n in (1, 2)]
    assert run(sb, body) == ["sdk.user1@contoso.com", "sdk.user2@contoso.com"]
    stats = sb.stats()
    assert stats["throttled"] >= 1 and stats["by_status"]["429"] == stats["throttled"]
    assert stats["users_created"] == 2
