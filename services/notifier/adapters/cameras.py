"""Per-camera state and the applied-frames ledger, inside the frame transaction.

Per-camera state is one row locked for the whole frame transaction, so any number of workers apply a camera's
frames one at a time and agree on tracks, incidents and cooldowns. A frame is applied once, keyed on its id.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.db import applied_frames, camera_state
from services.notifier.domain import CameraState


class CameraRepository:
    """The camera's state row and its applied frames, on the caller's connection (its transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, camera_id: str) -> CameraState:
        """Create the camera's row if needed and lock it until the transaction ends (one round trip).

        ON CONFLICT DO UPDATE takes the row lock like SELECT ... FOR UPDATE and returns the current state.
        """
        upsert = insert(camera_state).values(camera_id=camera_id, state=CameraState().model_dump(mode="json"))
        statement = upsert.on_conflict_do_update(
            index_elements=["camera_id"], set_={"camera_id": upsert.excluded.camera_id}
        ).returning(camera_state.c.state)
        row = (await self._conn.execute(statement)).one()
        return CameraState.model_validate(row.state)

    async def save(self, camera_id: str, state: CameraState) -> None:
        await self._conn.execute(
            camera_state.update()
            .where(camera_state.c.camera_id == camera_id)
            .values(state=state.model_dump(mode="json"), updated_at=sa.func.now())
        )

    async def mark_applied(self, camera_id: str, frame_ids: list[str]) -> set[str]:
        """Record frames as applied in one statement; returns those that were not applied before (a frame not
        returned is a redelivery or a duplicate send)."""
        result = await self._conn.execute(
            insert(applied_frames)
            .values([{"camera_id": camera_id, "frame_id": frame_id} for frame_id in frame_ids])
            .on_conflict_do_nothing()
            .returning(applied_frames.c.frame_id)
        )
        return {row.frame_id for row in result}
