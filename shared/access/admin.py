"""The first admin (and the recovery of a locked-out one), outside any HTTP API: the database is the authority."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access import audit, store
from shared.access.roles import Role
from shared.access.tables import users


async def ensure_admin(engine: AsyncEngine, *, username: str, password: str, reset: bool = False) -> str:
    """Create a global admin named `username`; with `reset`, an existing one gets this password, the global
    admin role and is enabled again. Returns "created", "reset" or "exists" (left as it was)."""
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(users.c.id).where(users.c.username == username))).first()
        if row is None:
            user = await store.create_user(conn, username=username, password=password, global_role=Role.ADMIN)
            outcome, user_id = "created", user.id
        elif reset:
            existing = await store.get_user(conn, row.id)
            assert existing is not None
            await store.update_user(conn, row.id, global_role=Role.ADMIN, roles=existing.site_roles,
                                    disabled=False, password=password)
            outcome, user_id = "reset", row.id
        else:
            return "exists"
        await audit.append(conn, actor="service:access-cli", action=f"user.admin_{outcome}",
                           target=f"user:{user_id}", details={"username": username})
    return outcome
