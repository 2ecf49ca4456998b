"""JSON logs on stdout for both processes (docs/design.md §2.1 `SYNC_LOG_LEVEL`).

Log records carry ids (school, kind, iSAMS id, webhook id), never names, e-mails or bodies:
children's personal data stays out of logs.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str) -> None:
    """Send every log record to stdout as one JSON object per line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter (per-retry lines, access logs) stays at WARNING unless asked for.
    for noisy in ("aiokafka", "stamina", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
