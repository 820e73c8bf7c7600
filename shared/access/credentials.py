"""Credentials, with maintained libraries only: argon2 (argon2-cffi) for passwords, PyJWT for sessions.

Personal API tokens are 256 random bits: they are stored as their SHA-256 (a slow hash protects guessable
secrets such as passwords; a random token has nothing to guess, and every API request looks one up).
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "ppe_pat_"
SESSION_COOKIE = "ppe_session"
CSRF_HEADER = "x-ppe-csrf"  # a cookie-authenticated write must carry it (no other site can set a custom header)
_ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id, the library's current recommended parameters
# verifying against this keeps an unknown user name as slow as a wrong password (no timing oracle)
_DUMMY_HASH = _hasher.hash("no-such-user-" + secrets.token_hex(8))


class InvalidSession(Exception):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    session_id: str
    expires_at: datetime


def new_session_id() -> str:
    return uuid.uuid4().hex


def issue_session(key: str, *, user_id: int, session_id: str, ttl_s: float, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "sid": session_id, "iat": issued, "exp": issued + timedelta(seconds=ttl_s),
              "typ": "ppe-session"}
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def read_session(key: str, token: str) -> SessionClaims:
    """The claims of a session JWT signed with `key`; InvalidSession when forged, expired or malformed."""
    try:
        claims = jwt.decode(token, key, algorithms=[_ALGORITHM], options={"require": ["sub", "sid", "exp"]})
        if claims.get("typ") != "ppe-session":
            raise InvalidSession("not a session token")
        return SessionClaims(
            user_id=int(claims["sub"]), session_id=str(claims["sid"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidSession(str(exc)) from exc
