"""The notifier's API, as the incident console needs it: list, read and act on incidents; and its rules and
channels, as the admins' page manages them.

Incidents belong to the notifier (it opens, escalates and resolves them), so reporting keeps no copy for the
console: it calls the notifier over HTTP with the notifier's admin token, which stays on the server side, and
names the signed-in user it checked in `X-PPE-Acting-User` so the incident's history and the audit trail
name the person (the notifier takes that header from its admin token only; docs/access.md).
"""

from typing import Any

import httpx

from services.reporting.adapters.service_client import ServiceClient, ServiceRefused, ServiceUnavailable

ACTING_USER = "X-PPE-Acting-User"


class NotifierUnavailable(ServiceUnavailable):
    """The notifier did not answer, or answered with a server error: try again later."""


class NotifierRefused(ServiceRefused):
    """The notifier refused the call (unknown incident, invalid body): its status and message."""


class NotifierIncidents(ServiceClient):
    unavailable = NotifierUnavailable
    refused = NotifierRefused

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        # 401 / 403: REPORTING_NOTIFIER_ADMIN_TOKEN is not the notifier's NOTIFIER_ADMIN_TOKEN
        super().__init__(base_url, token, service="the notifier", misconfigured={401, 403}, timeout_s=timeout_s,
                         transport=transport)

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
        """`action`: acknowledge, assign, comment, resolve, false-positive or confirm; `user`: who acts (checked
        by reporting)."""
        done: dict[str, Any] = await self._call(
            "POST", f"/v1/incidents/{incident_id}/{action}", json=body, headers={ACTING_USER: user}
        )
        return done

    async def manage(
        self, method: str, path: str, *, user: str | None, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Rules and channels (`/v1/rules...`, `/v1/channels...`) in the name of `user` (checked by reporting;
        None: reporting itself, to look a site up); the notifier records a change as theirs."""
        headers = {} if user is None else {ACTING_USER: user}
        return await self._call(method, path, json=body, params=params, headers=headers)
