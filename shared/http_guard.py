"""One door for every service's HTTP app: credentials first, then a bounded body, then the route.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so a token check written as a
dependency answers `{bad` with 422 before it answers 401, and reads a body of any size first. `Guard` is an
ASGI middleware that runs before routing: a request to anything but the open paths (health, readiness,
metrics, the API docs) is refused unless `accepts(headers)` says its credentials are valid, and its body is
counted as it arrives and refused over `max_body_bytes` (`own_body_limit` paths read their own, larger,
bodies with their own limit; `public_paths`, such as sign-in, need no credentials but keep the limit). The
route's own dependency still does the fine-grained check (which role, which site, which camera).
"""

import json
from collections.abc import Awaitable, Callable, Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answer without credentials: liveness, readiness (no error text), metrics, and the API description.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
DEFAULT_MAX_BODY_BYTES = 256 * 1024

Refusal = tuple[int, dict[str, object], dict[str, str]]  # status, JSON body, extra headers


def bearer_token(headers: Headers) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        accepts: Callable[[Scope, Headers], bool | Awaitable[bool]],
        unauthorised: Callable[[Scope], Refusal],
        too_large: Callable[[int], Refusal],
        open_paths: Iterable[str] = OPEN_PATHS,
        open_prefixes: Iterable[str] = (),
        public_paths: Iterable[str] = (),
        own_body_limit: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self._accepts = accepts
        self._unauthorised = unauthorised
        self._too_large = too_large
        self._open = frozenset(open_paths)
        self._open_prefixes = tuple(open_prefixes)
        self._public = frozenset(public_paths)  # no credentials, but a bounded body (sign-in)
        self._own_body_limit = tuple(own_body_limit)
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self._open or path.startswith(self._open_prefixes):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if path not in self._public:
            verdict = self._accepts(scope, headers)
            if not isinstance(verdict, bool):
                verdict = await verdict
            if not verdict:
                await _respond(send, self._unauthorised(scope))
                return
        if path.startswith(self._own_body_limit):
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            await _respond(send, self._too_large(self._max_body))
            return
        # Small bodies (JSON admin requests): read it all, bounded, then hand it on unchanged.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                await _respond(send, self._too_large(self._max_body))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _respond(send: Send, refusal: Refusal) -> None:
    status, body, extra = refusal
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
