"""The outbox: messages written in the transaction that decided them, published after commit and then marked.

A row left unpublished (a crash, SQS down) is taken by the frame's redelivery or the periodic sweep, locked
with FOR UPDATE SKIP LOCKED so two workers never publish the same rows at once. A repository on the caller's
connection (its transaction).
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.db import outbox
from shared.contracts import Payload


class OutboxRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, camera_id: str, frame_id: str, payload: Payload) -> int:
        """Write a message to publish after commit; returns its row id."""
        row_id = await self._conn.scalar(
            outbox.insert()
            .values(
                camera_id=camera_id,
                frame_id=frame_id,
                message_type=payload.MESSAGE_TYPE,
                payload=payload.model_dump(mode="json"),
            )
            .returning(outbox.c.id)
        )
        return int(row_id)

    async def take_unsent(
        self, *, camera_id: str | None, frame_ids: Sequence[str | None], older_than_s: float | None, limit: int
    ) -> Sequence["sa.Row[Any]"]:
        """Unsent rows, oldest first, locked (rows another worker holds are skipped): of these frames of a camera
        (when `camera_id` is given), written more than `older_than_s` ago (when given)."""
        query = sa.select(outbox).where(outbox.c.published_at.is_(None))
        if camera_id is not None:
            query = query.where(outbox.c.camera_id == camera_id, outbox.c.frame_id.in_(frame_ids))
        if older_than_s is not None:
            cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
            query = query.where(outbox.c.created_at < cutoff)
        query = query.order_by(outbox.c.id).limit(limit).with_for_update(skip_locked=True)
        return (await self._conn.execute(query)).all()

    async def mark_published(self, ids: Sequence[int], *, unless_marked: bool = False) -> None:
        """Mark rows sent; `unless_marked`: leave rows another worker marked already as they are."""
        where = [outbox.c.id.in_(ids)]
        if unless_marked:
            where.append(outbox.c.published_at.is_(None))
        await self._conn.execute(outbox.update().where(*where).values(published_at=sa.func.now()))
