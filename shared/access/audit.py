"""The audit trail: append-only, hash-chained records of who did what, where.

Each record carries `prev_hash` (the previous record's hash) and `hash` = SHA-256 over `prev_hash` and the
record's own fields in canonical JSON; `seq` counts 1, 2, 3... with no gaps. `verify` recomputes the chain:
an edited record no longer matches its hash, a deleted one leaves a gap in `seq` and a `prev_hash` that
points at nothing. (Deleting the newest records leaves a shorter valid chain: keep the head `verify`
prints somewhere else, e.g. in the data-lake export, to detect that too.) Appends are serialised by a
transaction-scoped advisory lock, so concurrent writers in any service build one chain.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.access.tables import audit

GENESIS = "0" * 64
_LOCK_KEY = 0x5050455F41554454  # "PPE_AUDT": one advisory lock for the whole chain


def record_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {**fields, "occurred_at": fields["occurred_at"].astimezone(UTC).isoformat()},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _fields(row: Any) -> dict[str, Any]:
    names = ("seq", "occurred_at", "actor", "action", "site_id", "target", "details")
    return {name: getattr(row, name) for name in names}


async def append(
    conn: AsyncConnection, *, actor: str, action: str, site_id: str | None = None, target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append one record inside the caller's transaction (the change and its record commit together)."""
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
    last = (await conn.execute(sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1))).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
    fields = {
        "seq": seq, "occurred_at": datetime.now(UTC), "actor": actor[:200], "action": action,
        "site_id": site_id, "target": None if target is None else target[:300],
        # a JSON round trip, so what is hashed is what PostgreSQL gives back
        "details": json.loads(json.dumps(dict(details or {}), default=str)),
    }
    await conn.execute(audit.insert().values(**fields, prev_hash=prev_hash, hash=record_hash(prev_hash, fields)))
    return seq


async def record(engine: AsyncEngine, **kwargs: Any) -> int:
    async with engine.begin() as conn:
        return await append(conn, **kwargs)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None


async def verify(engine: AsyncEngine, *, chunk: int = 5000) -> Verdict:
    """Walk the whole chain; the first broken link is reported with what is wrong with it."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    async with engine.connect() as conn:
        result = await conn.stream(sa.select(audit).order_by(audit.c.seq).execution_options(yield_per=chunk))
        async for row in result:
            if row.seq != expected_seq:
                return Verdict(False, count, expected_seq - 1, prev_hash,
                               f"records {expected_seq}..{row.seq - 1} are missing (deleted)", expected_seq)
            if row.prev_hash != prev_hash:
                return Verdict(False, count, row.seq - 1, prev_hash,
                               f"record {row.seq} does not follow record {row.seq - 1} (prev_hash differs)", row.seq)
            if record_hash(row.prev_hash, _fields(row)) != row.hash:
                return Verdict(False, count, row.seq - 1, prev_hash,
                               f"record {row.seq} was changed after it was written (hash differs)", row.seq)
            expected_seq, prev_hash, count = row.seq + 1, row.hash, count + 1
    return Verdict(True, count, expected_seq - 1, prev_hash)


async def recent(engine: AsyncEngine, *, actor: str, action: str, within_s: float) -> int:
    """How many `action` records `actor` has in the last `within_s` seconds (e.g. failed sign-ins)."""
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(audit).where(
                audit.c.actor == actor[:200], audit.c.action == action,
                audit.c.occurred_at > sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, within_s),
            )
        )
    return int(count or 0)


async def read(
    engine: AsyncEngine, *, sites: frozenset[str] | None, site_id: str | None = None, action: str | None = None,
    actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
    before_seq: int | None = None, limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. `sites`: the caller's sites (None = every site and the records of no site).
    `action` ending in "." is a prefix (`incident.` = every incident action); `since` inclusive, `until`
    exclusive; `before_seq` pages on (the last page's smallest seq)."""
    query = sa.select(audit).order_by(audit.c.seq.desc()).limit(limit)
    if sites is not None:
        query = query.where(audit.c.site_id.in_(sorted(sites)))
    if site_id is not None:
        query = query.where(audit.c.site_id == site_id)
    if action is not None:
        query = query.where(audit.c.action.startswith(action, autoescape=True) if action.endswith(".")
                            else audit.c.action == action)
    if actor is not None:
        query = query.where(audit.c.actor == actor)
    if since is not None:
        query = query.where(audit.c.occurred_at >= since)
    if until is not None:
        query = query.where(audit.c.occurred_at < until)
    if before_seq is not None:
        query = query.where(audit.c.seq < before_seq)
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]

