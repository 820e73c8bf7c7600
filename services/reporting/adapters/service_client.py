"""One small HTTP client for the platform services reporting calls server-side (ingest's admin API, the
notifier's API) with their admin token, which stays on the server: the browser only ever holds a reporting
session or token.

Its answers fall in two kinds: `ServiceUnavailable` (no answer, a server error, or a status that means this
deployment is misconfigured, e.g. a wrong token: try later, tell the operator) and `ServiceRefused` (the
service refused this call: its status and message, for the user).
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx


class ServiceUnavailable(Exception):
    """The service did not answer, answered with a server error, or is misconfigured: try again later."""


@dataclass
class ServiceRefused(Exception):
    """The service refused the call (unknown object, invalid body): its status and message, for the user."""

    status: int
    message: str


def message_of(response: httpx.Response) -> str:
    """The service's error message, with FastAPI's field errors as `field: reason`."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors
        message, details = "invalid input", detail
    else:
        message, details = str(body.get("message") or detail or body), body.get("details") or []
    reasons = [f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}" for d in details]
    return "; ".join([message, *reasons]) if reasons else message


class ServiceClient:
    unavailable: type[ServiceUnavailable] = ServiceUnavailable
    refused: type[ServiceRefused] = ServiceRefused

    def __init__(
        self, base_url: str, token: str, *, service: str, misconfigured: Collection[int], timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`service`: its name in messages; `misconfigured`: statuses that mean our token is not the service's
        (reported as unavailable, not as the user's fault); `transport`: how to reach it (default: the
        network; tests pass the service's app in process)."""
        self._service = service
        self._misconfigured = frozenset(misconfigured)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s,
            transport=transport,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unavailable(f"{self._service} did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in self._misconfigured:
            raise self.unavailable(f"{self._service} answered {response.status_code}: {message_of(response)}")
        if response.status_code >= 400:
            raise self.refused(response.status_code, message_of(response))
        return None if response.status_code == 204 else response.json()
