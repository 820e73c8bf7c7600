"""Settings of sign-in and sessions, the same in every HTTP service (env prefix `PPE_`). No I/O.

- `PPE_SESSION_KEY` (secret, >= 32 chars): signs the web UI's session cookies; every service that accepts
  them must hold the same key. Unset: no sign-in (service tokens and personal API tokens still work).
- `PPE_SESSION_TTL_S` (28800 = one 8 h shift): a session's lifetime.
- `PPE_COOKIE_SECURE` (false): send the session cookie only over HTTPS; set true behind TLS.
"""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import require_secret


class AccessSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PPE_", extra="ignore", env_file=None)

    session_key: str | None = Field(
        default=None, repr=False, description="HMAC key of session tokens (PPE_SESSION_KEY)."
    )
    session_ttl_s: float = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600, description="Session lifetime.")
    cookie_secure: bool = Field(default=False, description="Mark the session cookie Secure (HTTPS only).")

    @field_validator("session_key")
    @classmethod
    def _real_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        require_secret("PPE_SESSION_KEY", value)
        if len(value) < 32:
            raise ValueError("PPE_SESSION_KEY must be at least 32 characters (it signs every session)")
        return value
