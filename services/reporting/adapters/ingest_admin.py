"""Ingest's admin API, as the zone editor needs it: list cameras, replace a camera's zones.

Cameras and their zones belong to ingest (it attaches the zones to every frame it accepts), so reporting does
not keep a copy: it calls ingest over HTTP with ingest's admin token, which stays on the server side. The
browser only ever holds a reporting token.
"""

from dataclasses import dataclass
from typing import Any

import httpx

from shared.contracts import ZoneLayout


class IngestUnavailable(Exception):
    """Ingest did not answer, or answered with a server error: try again later."""


@dataclass
class IngestRefused(Exception):
    """Ingest refused the call (unknown camera, invalid zones): its status and message, for the user."""

    status: int
    message: str


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    message = str(body.get("message") or body.get("detail") or body)
    details = body.get("details") or []
    reasons = [f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}" for d in details]
    return "; ".join([message, *reasons]) if reasons else message


class IngestAdmin:
    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport`: how to reach ingest (default: the network; tests pass ingest's app in process)."""
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s,
            transport=transport,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise IngestUnavailable(f"ingest's admin API did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            # 401: reporting's REPORTING_INGEST_ADMIN_TOKEN is not ingest's INGEST_ADMIN_TOKEN (a deployment error)
            raise IngestUnavailable(f"ingest's admin API answered {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise IngestRefused(response.status_code, _message(response))
        return response.json()

    async def cameras(self) -> list[dict[str, Any]]:
        cameras: list[dict[str, Any]] = await self._call("GET", "/v1/admin/cameras")
        return cameras

    async def camera(self, camera_id: str) -> dict[str, Any]:
        camera: dict[str, Any] = await self._call("GET", f"/v1/admin/cameras/{camera_id}")
        return camera

    async def put_zones(self, camera_id: str, layout: ZoneLayout) -> dict[str, Any]:
        camera: dict[str, Any] = await self._call(
            "PUT", f"/v1/admin/cameras/{camera_id}/zones", json=layout.model_dump(mode="json")
        )
        return camera
