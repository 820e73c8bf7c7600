"""Sign-in, personal API tokens, user management and the audit trail (reporting serves the web UI, so it
serves these too; ingest and notifier verify the same sessions and tokens through shared.access)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from services.reporting.api.deps import PRINTABLE, SignedIn, access_of
from services.reporting.api.schemas import InvalidOut
from shared.access import audit, credentials, store
from shared.access.http import Access, Forbidden
from shared.access.roles import Principal
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(
    prefix="/api/v1",
    responses={
        422: {"model": InvalidOut, "description": "Invalid input: a sentence, or FastAPI's list of field errors."}
    },
)
LOGIN_PATH = "/api/v1/auth/login"  # the one route that answers without credentials
# After this many failed sign-ins of one user name within the window, sign-in is refused (429) until the
# window has passed: password guessing gets 10 tries per 15 minutes (at ~0.5 s of argon2 each).
LOGIN_MAX_FAILURES = 10
MAX_ID = 2**31 - 1  # the id columns are PostgreSQL integers
LOGIN_WINDOW_S = 15 * 60

RoleName = Literal["viewer", "operator", "analyst", "admin"]
SiteId = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Schema):
    username: str = Field(min_length=1, max_length=128, description="User name.")
    password: str = Field(min_length=1, max_length=1024, description="Password.")


class MeOut(_Schema):
    name: str = Field(description="User name, or the service token's name.")
    kind: Literal["user", "service"] = Field(description="A person's account, or a service token (machine use).")
    via: str = Field(description="session, token (personal API token) or service-token.")
    global_role: RoleName | None = Field(description="Role on every site, if any.")
    site_roles: dict[str, RoleName] = Field(description="Role per site.")


class SessionOut(_Schema):
    me: MeOut = Field(description="Who signed in, with which roles.")
    expires_at: datetime = Field(description="When the session ends (sign in again then).")


class PasswordIn(_Schema):
    current_password: str = Field(min_length=1, max_length=1024, description="The password in use.")
    new_password: str = Field(min_length=store.MIN_PASSWORD_CHARS, max_length=1024, description="The new one.")


class TokenIn(_Schema):
    name: str = Field(min_length=1, max_length=128, pattern=PRINTABLE, description="What the token is for.")
    expires_in_days: int | None = Field(default=90, ge=1, le=3650, description="None: until revoked.")


class TokenOut(_Schema):
    id: int = Field(description="Token id (to revoke it).")
    name: str = Field(description="What the token is for.")
    created_at: datetime = Field(description="When it was issued.")
    expires_at: datetime | None = Field(description="When it stops working; null: when revoked.")
    revoked_at: datetime | None = Field(description="When it was revoked, if it was.")
    last_used_at: datetime | None = Field(description="Last use (to the minute).")


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once: send it as `Authorization: Bearer <token>`.")


def _me(principal: Principal) -> MeOut:
    return MeOut(
        name=principal.name, kind="user" if principal.kind == "user" else "service", via=principal.via,
        global_role=principal.global_role.value if principal.global_role else None,
        site_roles={site: role.value for site, role in principal.site_roles.items()},
    )


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise Forbidden("a service token has no account: sign in as a user for this")
    return principal.user_id


async def _audit(access: Access, actor: str, action: str, *, target: str | None, **details: Any) -> None:
    assert access.engine is not None
    await audit.record(access.engine, actor=actor, action=action, target=target, details=details)


@router.post(LOGIN_PATH.removeprefix("/api/v1"), response_model=SessionOut, summary="Sign in (sets the session cookie)")
async def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    access = access_of(request)
    key = access.settings.session_key
    if key is None:
        # not a failure of the server: this deployment has not switched sign-in on
        raise HTTPException(404, "sign-in is off: set PPE_SESSION_KEY (>= 32 characters) on every service")
    assert access.engine is not None
    actor = f"user:{body.username[:128]}"
    failures = await audit.recent(access.engine, actor=actor, action="auth.login_failed", within_s=LOGIN_WINDOW_S)
    if failures >= LOGIN_MAX_FAILURES:
        log.warning("sign-in throttled", username=body.username[:128], failures=failures)
        raise HTTPException(429, f"{failures} failed sign-ins in {LOGIN_WINDOW_S // 60} minutes: wait, or ask an "
                            "admin to reset the password", headers={"Retry-After": str(LOGIN_WINDOW_S)})
    user = await store.check_login(access.engine, body.username, body.password)
    client = request.client.host if request.client else None
    if user is None:
        await _audit(access, actor, "auth.login_failed", target=None, client=client)
        log.info("sign-in refused", username=body.username[:128])
        raise HTTPException(401, "wrong user name or password (or the account is disabled)")
    ttl_s = access.settings.session_ttl_s
    session_id, expires_at = await store.open_session(access.engine, user.id, ttl_s=ttl_s)
    token = credentials.issue_session(key, user_id=user.id, session_id=session_id, ttl_s=ttl_s)
    response.set_cookie(
        credentials.SESSION_COOKIE, token, max_age=int(ttl_s), httponly=True, samesite="strict",
        secure=access.settings.cookie_secure, path="/",
    )
    await _audit(access, f"user:{user.username}", "auth.login", target=f"user:{user.id}", client=client)
    principal = await store.principal_for_session(
        access.engine, credentials.SessionClaims(user.id, session_id, expires_at)
    )
    assert principal is not None
    return SessionOut(me=_me(principal), expires_at=expires_at)


@router.post("/auth/logout", status_code=204, summary="Sign out (ends this session)")
async def logout(who: SignedIn, request: Request) -> Response:
    access = access_of(request)
    if who.session_id is not None:
        assert access.engine is not None
        await store.close_session(access.engine, who.session_id)
        await _audit(access, who.audit_name(), "auth.logout", target=f"user:{who.user_id}")
    response = Response(status_code=204)
    response.delete_cookie(credentials.SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=MeOut, summary="Who am I, with which roles where")
async def me(who: SignedIn) -> MeOut:
    return _me(who)


@router.post("/auth/password", status_code=204, summary="Change my password (ends my other sessions)")
async def change_password(body: PasswordIn, who: SignedIn, request: Request) -> Response:
    access = access_of(request)
    assert access.engine is not None
    if await store.check_login(access.engine, who.name, body.current_password) is None or who.user_id is None:
        raise HTTPException(422, "the current password is wrong")
    async with access.engine.begin() as conn:
        await store.update_user(
            conn, who.user_id, global_role=who.global_role, roles=dict(who.site_roles), disabled=False,
            password=body.new_password,
        )
        await audit.append(conn, actor=who.audit_name(), action="user.password", target=f"user:{who.user_id}",
                           details={"via": who.via})
    return Response(status_code=204)


@router.get("/auth/tokens", response_model=list[TokenOut], summary="My personal API tokens")
async def list_tokens(who: SignedIn, request: Request) -> list[TokenOut]:
    access = access_of(request)
    assert access.engine is not None
    return [TokenOut(**row) for row in await store.list_tokens(access.engine, _user_id(who))]


@router.post("/auth/tokens", response_model=NewTokenOut, status_code=201, summary="New personal API token")
async def create_token(body: TokenIn, who: SignedIn, request: Request) -> NewTokenOut:
    """The token acts with my roles (as they are when it is used); it is shown once."""
    access = access_of(request)
    assert access.engine is not None
    expires = datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = await store.create_token(access.engine, user_id=_user_id(who), name=body.name, expires_at=expires)
    await _audit(access, who.audit_name(), "token.create", target=f"token:{row['id']}", name=body.name, via=who.via)
    return NewTokenOut(**row, token=token)


@router.delete("/auth/tokens/{token_id}", status_code=204, summary="Revoke one of my personal API tokens")
async def revoke_token(
    token_id: Annotated[int, PathParam(ge=1, le=MAX_ID, description="The token's id.")], who: SignedIn,
    request: Request,
) -> Response:
    access = access_of(request)
    assert access.engine is not None
    if not await store.revoke_token(access.engine, user_id=_user_id(who), token_id=token_id):
        raise HTTPException(404, f"you have no live token {token_id}")
    await _audit(access, who.audit_name(), "token.revoke", target=f"token:{token_id}", via=who.via)
    return Response(status_code=204)
