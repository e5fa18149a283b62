"""JSON logs, one object a line, carrying the order and event being worked on."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_order_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)
_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (order_id := _order_id.get()) is not None:
            out["order_id"] = order_id
        if (event_id := _event_id.get()) is not None:
            out["event_id"] = event_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


# Off unless the service's settings allow it (EXPORTWATCH_LOG_PERSONAL_DATA): logs are read, shipped
# and kept more widely than the trail, so names of people stay out of them by default (GDPR Art. 5(1)(c),
# data minimisation). Set once at start-up by configure_logging.
_personal_data = False
WITHHELD = "[withheld: personal data]"


def personal_data_logged() -> bool:
    """Whether log lines may carry names of people (parties, matched list entries)."""
    return _personal_data


def personal(value: object) -> object:
    """`value` in a log line where it may be a person's name: itself, or a placeholder by default."""
    return value if _personal_data else WITHHELD


def exception_message(exc: BaseException) -> str:
    """An exception's message for a log line: it may quote the data being handled (a party's name in
    a validation or database error), so by default it is withheld and the type and stack say where."""
    return str(exc) if _personal_data else "(message withheld: may carry personal data)"


def stack_of(exc: BaseException) -> str:
    """Where `exc` was raised, without its message (which `exception_message` governs)."""
    return "".join(traceback.format_tb(exc.__traceback__))


def configure_logging(service: str, level: str = "INFO", *, personal_data: bool = False) -> None:
    global _personal_data
    _personal_data = personal_data
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The JSON lines carry none of the process, thread or multiprocessing fields, and filling them
    # costs every record a getpid() and more: a line per decided order showed in the profile.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    # aiokafka is chatty at INFO about every (re)join; keep its warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))


@contextmanager
def log_context(*, order_id: str | None, event_id: str | None) -> Iterator[None]:
    t1 = _order_id.set(order_id)
    t2 = _event_id.set(event_id)
    try:
        yield
    finally:
        _order_id.reset(t1)
        _event_id.reset(t2)
