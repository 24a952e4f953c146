"""Structured logs: JSON lines carrying the request id and territory (bound as contextvars)."""

from __future__ import annotations

import logging
import sys

import msgspec
import structlog


def _encode(event: dict[str, object], **_: object) -> bytes:
    return msgspec.json.encode(event, enc_hook=str)


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    # msgspec renders JSON several times faster than json.dumps; bytes go straight to stderr.
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_encode) if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), 20)),
        logger_factory=structlog.BytesLoggerFactory(file=sys.stderr.buffer)
        if json
        else structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    for noisy in ("alembic", "nats", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
