"""Roles per site and the credentials' primitives (no I/O)."""

import pytest

from shared.access import credentials
from shared.access.config import AccessSettings
from shared.access.roles import Role, service_principal, user_principal

SITE_ROLES = [("a", Role.OPERATOR), ("b", Role.VIEWER)]


@pytest.mark.parametrize(
    ("needed", "site", "allowed"),
    [
        (Role.VIEWER, "a", True), (Role.OPERATOR, "a", True), (Role.ANALYST, "a", False),
        (Role.VIEWER, "b", True), (Role.OPERATOR, "b", False),
        (Role.VIEWER, "c", False), (Role.VIEWER, None, False),
    ],
)
def test_a_user_holds_a_role_per_site(needed: Role, site: str | None, allowed: bool) -> None:
    user = user_principal(user_id=1, name="u", global_role=None, site_roles=SITE_ROLES, via="session")
    assert user.may(needed, site) is allowed


def test_a_global_role_holds_everywhere_and_adds_to_site_roles() -> None:
    user = user_principal(user_id=1, name="u", global_role=Role.VIEWER, site_roles=[("a", Role.ADMIN)], via="token")
    assert user.may(Role.VIEWER, "anywhere") and user.may(Role.VIEWER, None)
    assert user.may(Role.ADMIN, "a") and not user.may(Role.OPERATOR, "b")
    assert user.sites(Role.VIEWER) is None and user.sites(Role.ADMIN) == frozenset({"a"})
    assert service_principal("svc", Role.ANALYST).sites(Role.ANALYST) is None


def test_sessions_are_signed_and_expire() -> None:
    key = "k" * 40
    token = credentials.issue_session(key, user_id=7, session_id="s1", ttl_s=60)
    claims = credentials.read_session(key, token)
    assert (claims.user_id, claims.session_id) == (7, "s1")
    with pytest.raises(credentials.InvalidSession):
        credentials.read_session("x" * 40, token)
    with pytest.raises(credentials.InvalidSession):
        credentials.read_session(key, credentials.issue_session(key, user_id=7, session_id="s1", ttl_s=-5))
    with pytest.raises(credentials.InvalidSession):
        credentials.read_session(key, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


def test_passwords_and_tokens() -> None:
    stored = credentials.hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert credentials.verify_password(stored, "a long enough password")
    assert not credentials.verify_password(stored, "another password")
    assert not credentials.verify_password(None, "a long enough password")
    token = credentials.new_api_token()
    assert credentials.is_api_token(token) and credentials.token_hash(token) != token


@pytest.mark.parametrize("key", ["changeme", "short-but-not-placeholder", "x" * 20])
def test_the_session_key_must_be_a_real_long_secret(key: str) -> None:
    with pytest.raises(ValueError, match="PPE_SESSION_KEY"):
        AccessSettings(session_key=key)
