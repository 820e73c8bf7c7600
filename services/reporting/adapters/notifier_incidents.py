"""The notifier's incident API, as the incident console needs it: list, read and act on incidents.

Incidents belong to the notifier (it opens, escalates and resolves them), so reporting keeps no copy for the
console: it calls the notifier over HTTP with the notifier's admin token, which stays on the server side, and
names the signed-in user it checked in `X-PPE-Acting-User` so the incident's history and the audit trail
name the person (the notifier takes that header from its admin token only; docs/access.md).
"""

from typing import Any

import httpx

from services.reporting.adapters.ingest_admin import IngestRefused, IngestUnavailable, _message

ACTING_USER = "X-PPE-Acting-User"


class NotifierUnavailable(IngestUnavailable):
    """The notifier did not answer, or answered with a server error: try again later."""


class NotifierRefused(IngestRefused):
    """The notifier refused the call (unknown incident, invalid body): its status and message."""


class NotifierIncidents:
    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport`: how to reach the notifier (default: the network; tests pass its app in process)."""
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
            raise NotifierUnavailable(f"the notifier's incident API did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in (401, 403):
            # 401 / 403: REPORTING_NOTIFIER_ADMIN_TOKEN is not the notifier's NOTIFIER_ADMIN_TOKEN
            raise NotifierUnavailable(f"the notifier answered {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise NotifierRefused(response.status_code, _message(response))
        return response.json()

    async def incidents(self, *, site_id: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"limit": limit}
        if site_id is not None:
            params["site_id"] = site_id
        if status is not None:
            params["status"] = status
        found: list[dict[str, Any]] = await self._call("GET", "/v1/incidents", params=params)
        return found

    async def incident(self, incident_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/v1/incidents/{incident_id}")
        return found

    async def act(self, incident_id: str, action: str, body: dict[str, Any] | None, *, user: str) -> dict[str, Any]:
        """`action`: acknowledge, comment, resolve or false-positive; `user`: who acts (checked by reporting)."""
        done: dict[str, Any] = await self._call(
            "POST", f"/v1/incidents/{incident_id}/{action}", json=body, headers={ACTING_USER: user}
        )
        return done
