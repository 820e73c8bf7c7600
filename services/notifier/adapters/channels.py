"""Notification channels behind one small Protocol: signed webhooks, SMTP email, Apprise chat, Amazon SNS.

A sender either returns (delivered) or raises `DeliveryFailed`, saying whether trying again can help and,
when the receiver said so (429 Retry-After), after how long.
"""

import asyncio
import email.utils
import json
import smtplib
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import apprise
import httpx
from botocore.exceptions import BotoCoreError, ClientError

from services.notifier.adapters.targets import IPNetwork, TargetRefused, check_apprise_url, check_webhook_url
from services.notifier.messages import DELIVERY_HEADER, SIGNATURE_HEADER, Alert, sign
from shared.backoff import backoff_delay
from shared.logging import get_logger

log = get_logger(__name__)


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ChannelConfig:
    id: int
    name: str
    kind: str
    target: str
    secret: str | None = None


class Sender(Protocol):
    wants_snapshot: bool

    async def send(self, channel: ChannelConfig, alert: Alert) -> None: ...


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class WebhookSender:
    """POST the alert as JSON, signed with HMAC-SHA256 over timestamp and body."""

    wants_snapshot = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_retry_after_s: float = 10.0,
        default_secret: str | None = None,
        allowed_networks: tuple[IPNetwork, ...] = (),
    ) -> None:
        self._client = client
        self._allowed_networks = allowed_networks
        self._default_secret = default_secret
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._max_retry_after_s = max_retry_after_s

    async def send(self, channel: ChannelConfig, alert: Alert) -> None:
        secret = channel.secret or self._default_secret
        if not secret:
            raise DeliveryFailed(
                f"webhook channel {channel.name} has no signing secret; set one or NOTIFIER_WEBHOOK_SECRET",
                permanent=True,
            )
        try:
            # again at send time: the host may resolve elsewhere than when the channel was saved
            await check_webhook_url(channel.target, self._allowed_networks)
        except TargetRefused as exc:
            raise DeliveryFailed(f"webhook channel {channel.name}: target refused: {exc}", permanent=True) from exc
        body = json.dumps(alert.document, separators=(",", ":")).encode()
        error = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self._attempts):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                DELIVERY_HEADER: alert.delivery_id,
                "User-Agent": "ppe-notifier/1",
            }
            retry_after = None
            try:
                response = await self._client.post(channel.target, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                error = f"HTTP {response.status_code} from {channel.target}"
                if response.status_code == 429:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                elif response.status_code not in (408, 425) and response.status_code < 500:
                    raise DeliveryFailed(f"{error}: the receiver refused the alert", permanent=True)
            if attempt == self._attempts - 1:
                break
            delay = retry_after if retry_after is not None else backoff_delay(attempt, first_s=self._backoff_s)
            if delay > self._max_retry_after_s:
                break  # too long to hold a worker: requeue with that delay
            log.info("webhook retry", channel=channel.name, attempt=attempt + 1, delay_s=round(delay, 3), error=error)
            await asyncio.sleep(delay)
        raise DeliveryFailed(error, permanent=False, retry_after_s=retry_after)


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    username: str | None
    password: str | None
    starttls: bool
    sender: str
    timeout_s: float = 10.0


class EmailSender:
    """Email over SMTP (smtplib in a worker thread); the snapshot is attached as JPEG."""

    wants_snapshot = True

    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    async def send(self, channel: ChannelConfig, alert: Alert) -> None:
        if not self._smtp.host:
            raise DeliveryFailed("email channel needs NOTIFIER_SMTP_HOST; set it and redrive the DLQ", permanent=True)
        recipients = [address.strip() for address in channel.target.split(",") if address.strip()]
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self._smtp.sender
        message["To"] = ", ".join(recipients)
        message["Message-ID"] = email.utils.make_msgid(idstring=alert.delivery_id)
        message[DELIVERY_HEADER] = alert.delivery_id
        message.set_content(alert.text)
        if alert.snapshot is not None:
            message.add_attachment(alert.snapshot, maintype="image", subtype="jpeg", filename="snapshot.jpg")
        await asyncio.to_thread(self._send_blocking, message, recipients)

    def _send_blocking(self, message: EmailMessage, recipients: list[str]) -> None:
        try:
            with smtplib.SMTP(self._smtp.host or "", self._smtp.port, timeout=self._smtp.timeout_s) as smtp:
                if self._smtp.starttls:
                    smtp.starttls()
                if self._smtp.username:
                    smtp.login(self._smtp.username, self._smtp.password or "")
                smtp.send_message(message, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"SMTP refused every recipient: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP server {self._smtp.host}:{self._smtp.port}: {exc}", permanent=False) from exc


class AppriseSender:
    """Chat and everything else Apprise speaks (slack://, msteams://, discord://, json://, ...)."""

    wants_snapshot = True

    def __init__(self, *, allowed_networks: tuple[IPNetwork, ...] = ()) -> None:
        self._allowed_networks = allowed_networks

    async def send(self, channel: ChannelConfig, alert: Alert) -> None:
        try:
            await check_apprise_url(channel.target, self._allowed_networks)
        except TargetRefused as exc:
            raise DeliveryFailed(f"apprise channel {channel.name}: target refused: {exc}", permanent=True) from exc
        notifier = apprise.Apprise()
        if not notifier.add(channel.target):
            raise DeliveryFailed(f"Apprise does not understand the URL of channel {channel.name}", permanent=True)
        with tempfile.TemporaryDirectory(prefix="ppe-snapshot-") as folder:
            attach = None
            if alert.snapshot is not None:
                path = Path(folder) / "snapshot.jpg"
                path.write_bytes(alert.snapshot)
                attach = apprise.AppriseAttachment(str(path))
            ok = await notifier.async_notify(body=alert.text, title=alert.title, attach=attach)
        if not ok:
            raise DeliveryFailed(f"Apprise could not deliver to channel {channel.name} (see its log)", permanent=False)


class SnsSender:
    """Amazon SNS publish through aiobotocore (one JSON document per alert)."""

    wants_snapshot = False

    def __init__(self, sns: Any) -> None:
        self._sns = sns

    async def send(self, channel: ChannelConfig, alert: Alert) -> None:
        try:
            await self._sns.publish(
                TopicArn=channel.target,
                Subject=alert.title[:100],
                Message=json.dumps({**alert.document, "title": alert.title, "text": alert.text}),
                MessageAttributes={"event": {"DataType": "String", "StringValue": alert.document["event"]}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            permanent = code in ("NotFound", "InvalidParameter", "AuthorizationError", "InvalidParameterValue")
            raise DeliveryFailed(f"SNS {code or 'error'} for {channel.target}: {exc}", permanent=permanent) from exc
        except BotoCoreError as exc:
            raise DeliveryFailed(f"SNS unreachable: {exc}", permanent=False) from exc


def now_utc() -> datetime:
    return datetime.now(UTC)
