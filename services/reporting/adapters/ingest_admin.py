"""Ingest's admin API, as the zone editor needs it: list cameras, replace a camera's zones.

Cameras and their zones belong to ingest (it attaches the zones to every frame it accepts), so reporting does
not keep a copy: it calls ingest over HTTP with ingest's admin token, which stays on the server side. The
browser only ever holds a reporting token.
"""

from typing import Any

import httpx

from services.reporting.adapters.service_client import ServiceClient, ServiceRefused, ServiceUnavailable
from shared.contracts import ZoneLayout


class IngestUnavailable(ServiceUnavailable):
    """Ingest did not answer, or answered with a server error: try again later."""


class IngestRefused(ServiceRefused):
    """Ingest refused the call (unknown camera, invalid zones): its status and message, for the user."""


class IngestAdmin(ServiceClient):
    unavailable = IngestUnavailable
    refused = IngestRefused

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        # 401: reporting's REPORTING_INGEST_ADMIN_TOKEN is not ingest's INGEST_ADMIN_TOKEN (a deployment error)
        super().__init__(base_url, token, service="ingest's admin API", misconfigured={401}, timeout_s=timeout_s,
                         transport=transport)

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
