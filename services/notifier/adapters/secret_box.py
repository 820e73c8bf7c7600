"""Channel secrets (webhook signing keys) encrypted at rest with Fernet (the `cryptography` library).

NOTIFIER_SECRETS_KEY holds one or more comma-separated keys of at least 32 characters (generated per deployment:
Secrets Manager on AWS, var/secrets.env under `make run`, the compose secrets volume). Each is stretched to a
Fernet key with HKDF-SHA256, so any high-entropy string works. The first key encrypts; every key decrypts, so
a key is rotated by putting the new one first and keeping the old one until `reencrypt_all` has run (the
notifier runs it at every start).

Stored form: `fernet:` + the Fernet token. A value without the prefix is a plain-text secret written before
encryption existed (or by an old task during a rolling deploy); it is still readable and is encrypted by the
next start's `reencrypt_all`.
"""

import base64

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from shared.logging import get_logger

log = get_logger(__name__)
PREFIX = "fernet:"
MIN_KEY_CHARS = 32


class SecretUnreadable(Exception):
    """A stored secret was encrypted with a key NOTIFIER_SECRETS_KEY no longer holds."""


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ppe-notifier-channel-secrets").derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def parse_keys(value: str) -> list[str]:
    """Comma-separated keys; refuses short ones, naming the variable."""
    keys = [key.strip() for key in value.split(",") if key.strip()]
    if not keys or any(len(key) < MIN_KEY_CHARS for key in keys):
        raise ValueError(
            f"NOTIFIER_SECRETS_KEY must hold keys of at least {MIN_KEY_CHARS} characters, comma-separated "
            "(the first encrypts); generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return keys


class SecretBox:
    def __init__(self, keys: str) -> None:
        fernets = [_fernet(key) for key in parse_keys(keys)]
        self._first = fernets[0]
        self._fernet = MultiFernet(fernets)

    def seal(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(PREFIX):
            return stored  # None, or plain text from before encryption (encrypted at the next start)
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(
                "a channel secret was encrypted with a key that NOTIFIER_SECRETS_KEY no longer lists; put the old "
                "key back after the new one, or set the channel's secret again"
            ) from exc

    def needs_sealing(self, stored: str | None) -> bool:
        """Plain text, or sealed by a key other than the first (rotation)."""
        if stored is None:
            return False
        if not stored.startswith(PREFIX):
            return True
        try:
            self._first.decrypt(stored[len(PREFIX) :].encode())
        except InvalidToken:
            return True
        return False


async def reencrypt_all(engine: AsyncEngine, box: SecretBox) -> int:
    """Encrypt every plain-text channel secret and re-encrypt those under an old key; returns rows changed.

    The data migration of issue 19 row 10 (secrets were stored in plain text): idempotent, one transaction,
    rows locked so two notifier tasks starting together do not both rewrite a row.
    """
    changed = 0
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(db.channels.c.id, db.channels.c.secret)
                .where(db.channels.c.secret.is_not(None))
                .with_for_update()
            )
        ).all()
        for row in rows:
            if box.needs_sealing(row.secret):
                sealed = box.seal(box.open(row.secret))
                await conn.execute(db.channels.update().where(db.channels.c.id == row.id).values(secret=sealed))
                changed += 1
    if changed:
        log.warning("channel secrets encrypted with the current key", rows=changed)
    return changed
