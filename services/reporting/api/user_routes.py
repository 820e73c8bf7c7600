"""User management: accounts, their roles per site, disabling them, their personal tokens (docs/access.md).

A global admin manages every user. A site admin manages roles on the sites they administer, and nothing else:
they list the users holding a role on those sites (seeing only those sites' roles), create users with roles on
those sites only, and grant or take away a role on one of them; giving a global role, disabling a user,
resetting a password or revoking someone's token needs a global admin. Every change is an audit record.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import Field

from services.reporting.api.access_routes import MAX_ID, RoleName, SiteId, TokenOut
from services.reporting.api.deps import PRINTABLE, GlobalAdmin, access_engine
from services.reporting.api.schemas import Schema, error_responses
from shared.access import audit, store
from shared.access.http import ANY, Forbidden, Require, path
from shared.access.roles import Principal, Role

router = APIRouter(
    prefix="/api/v1",
    responses=error_responses(
        forbidden="The caller is not an admin of the site concerned (or, for global roles, state, passwords and "
        "other users' tokens, of every site).",
        not_found="Unknown user or token.",
    ),
)
UserId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="The user's id.")]
SitePath = Annotated[str, PathParam(max_length=128, pattern=PRINTABLE, description="The site.")]


class UserIn(Schema):
    username: str = Field(min_length=1, max_length=128, pattern=store.USERNAME_PATTERN, description="Unique name.")
    password: str = Field(min_length=store.MIN_PASSWORD_CHARS, max_length=1024, description="First password.")
    global_role: RoleName | None = Field(default=None, description="Role on every site (a global admin: 'admin').")
    site_roles: dict[SiteId, RoleName] = Field(default_factory=dict, description="Role per site.")


class UserUpdate(Schema):
    global_role: RoleName | None = Field(default=None, description="Role on every site; null: none.")
    site_roles: dict[SiteId, RoleName] = Field(default_factory=dict, description="Role per site (replaces all).")
    disabled: bool = Field(default=False, description="A disabled user cannot sign in; their sessions end.")
    password: str | None = Field(default=None, min_length=store.MIN_PASSWORD_CHARS, max_length=1024,
                                 description="A new password (ends the user's sessions).")


class SiteRoleIn(Schema):
    role: RoleName = Field(description="The role the user gets on this site (replaces the one they held there).")


class UserOut(Schema):
    id: int = Field(description="User id.")
    username: str = Field(description="Unique name.")
    global_role: RoleName | None = Field(description="Role on every site, if any.")
    site_roles: dict[str, RoleName] = Field(description="Role per site (a site admin sees only their sites).")
    disabled: bool = Field(description="Whether the user is locked out.")
    created_at: datetime = Field(description="When the account was created.")


class SiteRoleOut(Schema):
    user_id: int = Field(description="User id.")
    site_id: str = Field(description="The site.")
    role: RoleName | None = Field(description="The role held there now; null: none.")
    before: RoleName | None = Field(description="The role held there before the change.")


def _user_out(user: store.UserRecord) -> UserOut:
    return UserOut(
        id=user.id, username=user.username, global_role=user.global_role.value if user.global_role else None,
        site_roles={site: role.value for site, role in user.site_roles.items()}, disabled=user.disabled,
        created_at=user.created_at,
    )


AnySiteAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, ANY))]
SiteAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, path()))]


@router.get("/users", response_model=list[UserOut], summary="Users and their roles (a site admin: of their sites)")
async def list_users(who: AnySiteAdmin, request: Request) -> list[UserOut]:
    engine = access_engine(request)
    return [_user_out(user) for user in await store.list_users(engine, sites=who.sites(Role.ADMIN))]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user")
async def create_user(body: UserIn, who: AnySiteAdmin, request: Request) -> UserOut:
    """A site admin creates users with roles on the sites they administer only (and no global role)."""
    engine = access_engine(request)
    sites = who.sites(Role.ADMIN)
    if sites is not None:
        if body.global_role is not None:
            raise Forbidden(f"{who.name} lacks the admin role on every site (a global role needs it)")
        if not body.site_roles:
            raise HTTPException(422, "give the new user a role on one of your sites")
        outside = sorted(set(body.site_roles) - sites)
        if outside:
            raise Forbidden(f"{who.name} lacks the admin role on site {outside[0]}")
    roles = {site: Role(role) for site, role in body.site_roles.items()}
    try:
        async with engine.begin() as conn:
            user = await store.create_user(
                conn, username=body.username, password=body.password,
                global_role=Role(body.global_role) if body.global_role else None, roles=roles,
            )
            record_sites: list[str | None] = [*sorted(body.site_roles)] or [None]
            for site in record_sites:  # one record per site, so each site's admins see it
                await audit.append(conn, actor=who.audit_name(), action="user.create", site_id=site,
                                   target=f"user:{user.id}",
                                   details={"username": user.username, "global_role": body.global_role,
                                            "site_roles": {site: body.site_roles[site]} if site else {},
                                            "via": who.via})
    except store.UserExists as exc:
        raise HTTPException(409, str(exc)) from exc
    return _user_out(user)


@router.put("/users/{user_id}", response_model=UserOut, summary="Change a user's roles, state or password")
async def update_user(user_id: UserId, body: UserUpdate, who: GlobalAdmin, request: Request) -> UserOut:
    """Global admin: the roles given replace all of the user's roles; `disabled` locks them out."""
    engine = access_engine(request)
    async with engine.begin() as conn:
        user = await store.update_user(
            conn, user_id, global_role=Role(body.global_role) if body.global_role else None,
            roles={site: Role(role) for site, role in body.site_roles.items()}, disabled=body.disabled,
            password=body.password,
        )
        if user is None:
            raise HTTPException(404, f"no user {user_id}")
        await audit.append(conn, actor=who.audit_name(), action="user.update", target=f"user:{user_id}",
                           details={"global_role": body.global_role, "site_roles": body.site_roles,
                                    "disabled": body.disabled, "password_reset": body.password is not None,
                                    "via": who.via})
    return _user_out(user)


async def _set_role(request: Request, who: Principal, user_id: int, site_id: str, role: Role | None) -> SiteRoleOut:
    engine = access_engine(request)
    async with engine.begin() as conn:
        try:
            before = await store.set_site_role(conn, user_id, site_id, role)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        await audit.append(conn, actor=who.audit_name(), action="user.role_grant" if role else "user.role_revoke",
                           site_id=site_id, target=f"user:{user_id}",
                           details={"role": role, "before": before, "via": who.via})
    return SiteRoleOut(user_id=user_id, site_id=site_id, role=role.value if role else None,
                       before=before.value if before else None)


@router.put("/users/{user_id}/sites/{site_id}", response_model=SiteRoleOut, summary="Grant a role on one site")
async def grant_site_role(
    user_id: UserId, site_id: SitePath, body: SiteRoleIn, who: SiteAdmin, request: Request
) -> SiteRoleOut:
    """Needs admin on that site; the user's roles on other sites stay as they are."""
    return await _set_role(request, who, user_id, site_id, Role(body.role))


@router.delete("/users/{user_id}/sites/{site_id}", response_model=SiteRoleOut, summary="Take away a site role")
async def revoke_site_role(user_id: UserId, site_id: SitePath, who: SiteAdmin, request: Request) -> SiteRoleOut:
    """Needs admin on that site; the user's roles on other sites stay as they are."""
    return await _set_role(request, who, user_id, site_id, None)


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut], summary="A user's personal API tokens")
async def user_tokens(user_id: UserId, _: GlobalAdmin, request: Request) -> list[TokenOut]:
    engine = access_engine(request)
    return [TokenOut(**row) for row in await store.list_tokens(engine, user_id)]


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204, summary="Revoke a user's personal API token")
async def revoke_user_token(
    user_id: UserId, token_id: Annotated[int, PathParam(ge=1, le=MAX_ID, description="The token's id.")],
    who: GlobalAdmin, request: Request,
) -> Response:
    """A leaked token, or one of someone who left: a global admin revokes it (its owner can too)."""
    engine = access_engine(request)
    if not await store.revoke_token(engine, user_id=user_id, token_id=token_id):
        raise HTTPException(404, f"user {user_id} has no live token {token_id}")
    await audit.record(engine, actor=who.audit_name(), action="token.revoke", target=f"token:{token_id}",
                       details={"owner": f"user:{user_id}", "via": who.via})
    return Response(status_code=204)


