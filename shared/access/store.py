"""Users, site roles, sessions and personal API tokens in PostgreSQL (tables of the access branch)."""

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.access import credentials
from shared.access.roles import Principal, Role, user_principal
from shared.access.tables import api_tokens, sessions, site_roles, users

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
MIN_PASSWORD_CHARS = 12
# argon2id takes ~0.1-0.5 s of CPU and 64 MiB per hash or verify: run it off the event loop (the library
# releases the GIL), two at a time, so sign-ins neither stall other requests nor add up in memory.
_PASSWORD_WORK = asyncio.Semaphore(2)


async def _hash(password: str) -> str:
    async with _PASSWORD_WORK:
        return await asyncio.to_thread(credentials.hash_password, password)


async def _verify(stored_hash: str | None, password: str) -> bool:
    async with _PASSWORD_WORK:
        return await asyncio.to_thread(credentials.verify_password, stored_hash, password)


class AccessError(Exception):
    """A refused change the caller can act on (the message says how)."""


class UserExists(AccessError):
    pass


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    global_role: Role | None
    site_roles: Mapping[str, Role]
    disabled: bool
    created_at: datetime


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccessError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


async def _roles_of(conn: AsyncConnection, user_ids: Iterable[int]) -> dict[int, dict[str, Role]]:
    found: dict[int, dict[str, Role]] = {}
    rows = await conn.execute(sa.select(site_roles).where(site_roles.c.user_id.in_(list(user_ids))))
    for row in rows:
        found.setdefault(row.user_id, {})[row.site_id] = Role(row.role)
    return found


def _record(row: Any, roles: Mapping[str, Role]) -> UserRecord:
    return UserRecord(
        id=row.id, username=row.username, global_role=Role(row.global_role) if row.global_role else None,
        site_roles=dict(roles), disabled=row.disabled, created_at=row.created_at,
    )


async def _principal(
    conn: AsyncConnection, user_id: int, *, via: str, session_id: str | None = None
) -> Principal | None:
    row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
    if row is None or row.disabled:
        return None
    roles = (await _roles_of(conn, [user_id])).get(user_id, {})
    return user_principal(
        user_id=row.id, name=row.username, global_role=Role(row.global_role) if row.global_role else None,
        site_roles=roles.items(), via=via, session_id=session_id,
    )


async def principal_for_session(engine: AsyncEngine, claims: credentials.SessionClaims) -> Principal | None:
    """The user of a signed session, if the session is neither signed out nor expired and the user is enabled.
    Roles are read on every request: a changed role or a disabled user takes effect on the next one."""
    async with engine.connect() as conn:
        live = await conn.scalar(
            sa.select(sa.literal(True)).where(
                sessions.c.id == claims.session_id, sessions.c.user_id == claims.user_id,
                sessions.c.revoked_at.is_(None), sessions.c.expires_at > sa.func.now(),
            )
        )
        if not live:
            return None
        return await _principal(conn, claims.user_id, via="session", session_id=claims.session_id)


async def principal_for_token(engine: AsyncEngine, token: str) -> Principal | None:
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.user_id).where(
                    api_tokens.c.token_hash == credentials.token_hash(token), api_tokens.c.revoked_at.is_(None),
                    sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > sa.func.now()),
                )
            )
        ).first()
        if row is None:
            return None
        await conn.execute(  # at most one write a minute per token
            api_tokens.update()
            .where(api_tokens.c.id == row.id, sa.or_(api_tokens.c.last_used_at.is_(None),
                                                    api_tokens.c.last_used_at < sa.func.now() - timedelta(minutes=1)))
            .values(last_used_at=sa.func.now())
        )
        return await _principal(conn, row.user_id, via="token")


async def check_login(engine: AsyncEngine, username: str, password: str) -> UserRecord | None:
    """The user whose password this is, if enabled; None otherwise (as slow for an unknown name).
    No connection is held while the hash is checked."""
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.username == username))).first()
    if not await _verify(row.password_hash if row else None, password) or row is None or row.disabled:
        return None
    async with engine.begin() as conn:
        if credentials.needs_rehash(row.password_hash):  # the library's parameters changed since
            await conn.execute(users.update().where(users.c.id == row.id).values(password_hash=await _hash(password)))
        roles = (await _roles_of(conn, [row.id])).get(row.id, {})
    return _record(row, roles)


async def open_session(engine: AsyncEngine, user_id: int, *, ttl_s: float) -> tuple[str, datetime]:
    session_id = credentials.new_session_id()
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    async with engine.begin() as conn:
        await conn.execute(sessions.insert().values(id=session_id, user_id=user_id, expires_at=expires_at))
    return session_id, expires_at


async def close_session(engine: AsyncEngine, session_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sessions.update().where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )


async def create_user(
    conn: AsyncConnection, *, username: str, password: str, global_role: Role | None,
    roles: Mapping[str, Role] | None = None,
) -> UserRecord:
    check_password(password)
    try:
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    users.insert().values(
                        username=username, password_hash=await _hash(password),
                        global_role=global_role.value if global_role else None,
                    ).returning(*users.c)
                )
            ).one()
    except IntegrityError as exc:
        raise UserExists(f"a user named {username!r} exists: change it with PUT /api/v1/users/{{id}}") from exc
    await _set_roles(conn, row.id, roles or {})
    return _record(row, roles or {})


async def _set_roles(conn: AsyncConnection, user_id: int, roles: Mapping[str, Role]) -> None:
    await conn.execute(site_roles.delete().where(site_roles.c.user_id == user_id))
    if roles:
        await conn.execute(
            site_roles.insert(), [{"user_id": user_id, "site_id": s, "role": r.value} for s, r in roles.items()]
        )


async def update_user(
    conn: AsyncConnection, user_id: int, *, global_role: Role | None, roles: Mapping[str, Role], disabled: bool,
    password: str | None = None,
) -> UserRecord | None:
    values: dict[str, Any] = {"global_role": global_role.value if global_role else None, "disabled": disabled,
                              "updated_at": sa.func.now()}
    if password is not None:
        check_password(password)
        values["password_hash"] = await _hash(password)
    row = (await conn.execute(users.update().where(users.c.id == user_id).values(**values).returning(*users.c))).first()
    if row is None:
        return None
    await _set_roles(conn, user_id, roles)
    if disabled or password is not None:  # a disabled user or a reset password ends every open session
        await conn.execute(
            sessions.update().where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )
    return _record(row, roles)


async def list_users(engine: AsyncEngine, *, sites: frozenset[str] | None = None) -> list[UserRecord]:
    """Every user (`sites` None), or the users holding a role on one of `sites`, with only those sites' roles."""
    query = sa.select(users).order_by(users.c.id)
    if sites is not None:
        query = query.where(users.c.id.in_(sa.select(site_roles.c.user_id).where(site_roles.c.site_id.in_(sites))))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        roles = await _roles_of(conn, [row.id for row in rows])
    if sites is not None:
        roles = {user: {s: r for s, r in held.items() if s in sites} for user, held in roles.items()}
    return [_record(row, roles.get(row.id, {})) for row in rows]


async def set_site_role(conn: AsyncConnection, user_id: int, site_id: str, role: Role | None) -> Role | None:
    """Give the user `role` on one site (None: take it away), leaving their other roles; returns the role they
    held there before. LookupError: no such user."""
    if await conn.scalar(sa.select(users.c.id).where(users.c.id == user_id)) is None:
        raise LookupError(f"no user {user_id}")
    where = (site_roles.c.user_id == user_id, site_roles.c.site_id == site_id)
    before = await conn.scalar(sa.select(site_roles.c.role).where(*where).with_for_update())
    await conn.execute(site_roles.delete().where(*where))
    if role is not None:
        await conn.execute(site_roles.insert().values(user_id=user_id, site_id=site_id, role=role.value))
    await conn.execute(users.update().where(users.c.id == user_id).values(updated_at=sa.func.now()))
    return Role(before) if before else None


async def site_members(engine: AsyncEngine, site_id: str, *, at_least: Role) -> list[str]:
    """Names of the enabled users holding `at_least` on the site (their site role or a global one)."""
    ranks = [role.value for role in Role if role.covers(at_least)]
    on_site = sa.select(site_roles.c.user_id).where(site_roles.c.site_id == site_id, site_roles.c.role.in_(ranks))
    query = sa.select(users.c.username).where(
        users.c.disabled.is_(False), sa.or_(users.c.global_role.in_(ranks), users.c.id.in_(on_site))
    ).order_by(users.c.username)
    async with engine.connect() as conn:
        return list((await conn.scalars(query)).all())


async def get_user(conn: AsyncConnection, user_id: int) -> UserRecord | None:
    row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
    return None if row is None else _record(row, (await _roles_of(conn, [user_id])).get(user_id, {}))


async def create_token(
    engine: AsyncEngine, *, user_id: int, name: str, expires_at: datetime | None
) -> tuple[dict[str, Any], str]:
    token = credentials.new_api_token()
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                api_tokens.insert()
                .values(user_id=user_id, name=name, token_hash=credentials.token_hash(token), expires_at=expires_at)
                .returning(*_TOKEN_COLUMNS)
            )
        ).one()
    return dict(row._mapping), token


_TOKEN_COLUMNS = (api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.expires_at,
                  api_tokens.c.revoked_at, api_tokens.c.last_used_at)


async def list_tokens(engine: AsyncEngine, user_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
        )
        return [dict(row._mapping) for row in rows]


async def revoke_token(engine: AsyncEngine, *, user_id: int, token_id: int) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )
    return bool(result.rowcount)
