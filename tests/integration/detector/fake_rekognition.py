"""A local HTTP server that speaks Rekognition's JSON 1.1 protocol, for testing the rekognition engine.

It checks what a real endpoint checks first (POST /, content type, X-Amz-Target, a JSON body), records every
request, and answers from a script: each operation has a queue of replies (a body dict, or an error as
(`__type`, status)), and a default reply once the queue is empty. botocore's real serialisation and error
parsing run on both sides of it.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict[str, Any] | tuple[str, int]


@dataclass
class FakeRekognition:
    replies: dict[str, deque[Reply]] = field(default_factory=dict)
    defaults: dict[str, Reply] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def script(self, operation: str, *replies: Reply) -> None:
        self.replies.setdefault(operation, deque()).extend(replies)

    def reply_for(self, operation: str) -> Reply:
        queue = self.replies.get(operation)
        if queue:
            return queue.popleft()
        if operation in self.defaults:
            return self.defaults[operation]
        return ("InternalServerError", 500)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> "FakeRekognition":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", "fake-request")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = self.headers.get("X-Amz-Target", "")
                if self.path != "/" or not target.startswith("RekognitionService."):
                    self._send(400, {"__type": "UnknownOperationException", "Message": f"bad target {target!r}"})
                    return
                if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
                    self._send(400, {"__type": "SerializationException", "Message": "wrong content type"})
                    return
                try:
                    request = json.loads(body)
                except ValueError:
                    self._send(400, {"__type": "SerializationException", "Message": "body is not JSON"})
                    return
                operation = target.removeprefix("RekognitionService.")
                fake.requests.append((operation, request))
                reply = fake.reply_for(operation)
                if isinstance(reply, tuple):
                    self._send(reply[1], {"__type": reply[0], "Message": f"scripted {reply[0]}"})
                else:
                    self._send(200, reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
