"""Structured logging, configured once per process in each service's main.

Correlation keys (frame_id, camera_id, message_id) are bound with `bind_context` and appear on every line
logged inside that context, including from libraries that use the standard `logging` module.
"""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(service: str, *, fmt: str = "json", level: str = "INFO") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors = [*_SHARED_PROCESSORS, structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=processors, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer
        ])
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "aiobotocore", "urllib3", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_context(**keys: object) -> Iterator[None]:
    """Attach correlation keys to every log line emitted inside the block (async-task local)."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in keys.items() if v is not None}):
        yield
