"""Issue 19 row 10, notifier: webhook targets on private / link-local / metadata addresses are refused unless
configured, and channel secrets are encrypted at rest (with the migration of rows stored in plain text)."""

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters.channels import ChannelConfig, DeliveryFailed, WebhookSender
from services.notifier.adapters.secret_box import SecretBox, SecretUnreadable, reencrypt_all
from services.notifier.adapters.targets import parse_networks
from services.notifier.api import build_app
from services.notifier.config import NotifierSettings
from services.notifier.messages import Alert
from tests.integration.notifier.conftest import ADMIN_TOKEN, SECRETS_KEY, WEBHOOK_SECRET
from tests.integration.notifier.receivers import HttpReceiver


@pytest.fixture
async def strict_admin(engine: AsyncEngine, notifier_settings: NotifierSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The channels API as deployed on AWS: no private network allowed."""
    app = build_app(
        engine=engine,
        admin_token=ADMIN_TOKEN,
        default_policy=notifier_settings.default_policy(),
        secret_box=SecretBox(SECRETS_KEY),
        webhook_networks=parse_networks(["169.254.0.0/16"]),  # even this does not open the metadata address
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://notifier",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:9000/hook",  # loopback
        "http://localhost:9000/hook",  # a name resolving to loopback
        "http://10.1.2.3/hook",  # private
        "http://192.168.0.10/hook",
        "http://[::1]:9000/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://169.254.169.254/latest/meta-data/",  # instance metadata, although 169.254.0.0/16 is allowed
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://0.0.0.0:9000/hook",
    ],
)
async def test_a_webhook_to_a_private_or_metadata_address_is_refused(
    strict_admin: httpx.AsyncClient, engine: AsyncEngine, target: str
) -> None:
    response = await strict_admin.post(
        "/v1/channels", json={"name": "evil", "kind": "webhook", "target": target, "secret": WEBHOOK_SECRET}
    )
    assert response.status_code == 422, response.text
    assert "webhook target refused" in response.json()["detail"]
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM notifier_channels"))).scalar() == 0


@pytest.mark.parametrize("target", ["json://127.0.0.1:9000/chat", "forms://169.254.169.254/x", "xml://10.0.0.1/x"])
async def test_an_apprise_url_posting_to_a_private_host_is_refused_too(
    strict_admin: httpx.AsyncClient, target: str
) -> None:
    response = await strict_admin.post("/v1/channels", json={"name": "chat", "kind": "apprise", "target": target})
    assert response.status_code == 422, response.text
    assert "apprise target refused" in response.json()["detail"]
    # a vendor scheme goes to the vendor's hosts: not resolved, accepted
    vendor = {"name": "slack", "kind": "apprise", "target": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F"}
    assert (await strict_admin.post("/v1/channels", json=vendor)).status_code == 201


async def test_a_webhook_to_a_public_address_or_an_allowed_network_is_accepted(
    strict_admin: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    public = {"name": "public", "kind": "webhook", "target": "https://93.184.215.14/hook", "secret": WEBHOOK_SECRET}
    assert (await strict_admin.post("/v1/channels", json=public)).status_code == 201
    # the tests' own app allows 127.0.0.0/8, as `make run` does
    local = {"name": "local", "kind": "webhook", "target": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET}
    assert (await admin.post("/v1/channels", json=local)).status_code == 201


async def test_the_sender_checks_again_and_sends_nothing_to_a_refused_address(webhook: HttpReceiver) -> None:
    # GIVEN a channel stored while loopback was allowed, and a sender configured without it
    channel = ChannelConfig(1, "old-local", "webhook", webhook.url, WEBHOOK_SECRET)
    alert = Alert(delivery_id="d-1", title="t", text="t", document={"event": "open"})
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, attempts=1)
        # WHEN an alert is sent  THEN it fails for good and the receiver saw nothing
        with pytest.raises(DeliveryFailed, match="target refused") as refused:
            await sender.send(channel, alert)
        assert refused.value.permanent
        assert webhook.received == []
        # AND with the network allowed, the same alert arrives
        await WebhookSender(client, attempts=1, allowed_networks=parse_networks(["127.0.0.0/8"])).send(channel, alert)
    assert len(webhook.received) == 1


async def test_channel_secrets_are_stored_encrypted(admin: httpx.AsyncClient, engine: AsyncEngine) -> None:
    body = {"name": "ops", "kind": "webhook", "target": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET}
    response = await admin.post("/v1/channels", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["has_secret"] is True and "secret" not in response.json()
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT secret FROM notifier_channels"))).scalar_one()
    assert stored.startswith("fernet:") and WEBHOOK_SECRET not in stored
    assert SecretBox(SECRETS_KEY).open(stored) == WEBHOOK_SECRET
    with pytest.raises(SecretUnreadable, match="NOTIFIER_SECRETS_KEY"):
        SecretBox("another-key-that-is-long-enough-0123456789").open(stored)


async def test_plain_text_secrets_are_encrypted_at_start_and_a_rotated_key_re_encrypts(engine: AsyncEngine) -> None:
    # GIVEN a channel secret stored in plain text (as before issue 19)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO notifier_channels (name, kind, target, secret) "
                "VALUES ('legacy', 'webhook', 'https://example.org/hook', :secret)"
            ),
            {"secret": WEBHOOK_SECRET},
        )

    async def stored() -> str:
        async with engine.connect() as conn:
            return str((await conn.execute(sa.text("SELECT secret FROM notifier_channels"))).scalar_one())

    # WHEN the notifier starts (its data migration), twice
    old = SecretBox(SECRETS_KEY)
    assert await reencrypt_all(engine, old) == 1
    assert await reencrypt_all(engine, old) == 0
    # THEN the row is encrypted and still reads back
    assert (await stored()).startswith("fernet:") and old.open(await stored()) == WEBHOOK_SECRET

    # WHEN the key is rotated (new key first, old kept) and the notifier starts
    new_key = "rotated-secrets-key-0123456789abcdefghijkl"
    assert await reencrypt_all(engine, SecretBox(f"{new_key},{SECRETS_KEY}")) == 1
    # THEN the new key alone reads it
    assert SecretBox(new_key).open(await stored()) == WEBHOOK_SECRET
