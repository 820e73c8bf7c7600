"""Real local receivers for the notifier's channels: an HTTP server that checks webhook signatures
(written here independently of the notifier's signing code) and an SMTP server (aiosmtpd)."""

import asyncio
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signature_valid(secret: str, header: str, body: bytes, *, max_age_s: float = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        return False
    if abs(time.time() - int(parts["t"])) > max_age_s:
        return False
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    signature_ok: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every request. `script` holds responses to give first, e.g. [(429, {"Retry-After": "1"})]."""

    secret: str
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    always: int | None = None  # answer every request with this status
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("x-ppe-signature")
        ok = signature_valid(self.secret, header, body) if header is not None else None
        self.received.append(Received(request.url.path, dict(request.headers), body, time.time(), ok))
        self._arrived.set()
        if self.script:
            status, headers = self.script.pop(0)
            return Response(status_code=status, headers=headers)
        if self.always is not None:
            return Response(status_code=self.always)
        if header is not None and not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return JSONResponse({"ok": True})

    async def start(self) -> "HttpReceiver":
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def wait_for(self, count: int, *, timeout_s: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        return self.received


class _MailBox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = _MailBox()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
