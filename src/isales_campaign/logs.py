"""JSON log lines on stderr: one object per record, `extra` fields included."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else came in through `extra`
#: (uvicorn's `color_message` repeats the message with terminal colours).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


_log = logging.getLogger("isales")

#: Where a request's id travels: the HTTP header (REST) and the gRPC metadata key.
REQUEST_ID_HEADER = "x-request-id"
#: Request ids accepted from callers (they are echoed into logs: short and printable).
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

#: The request being served, added to every log line written while serving it.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_request_id", default=None
)


#: Fields of every line this process writes (`tag_process`).
_process_fields: dict[str, Any] = {}


def tag_process(**fields: Any) -> None:
    """Add `fields` to every line this process writes from now on (a worker's index)."""
    _process_fields.update(fields)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_process_fields,
        }
        request_id = current_request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO") -> None:
    # The lines name no source file, thread or process, so no record collects them
    # (see "Optimization" in the logging HOWTO, which sets `logging._srcfile` so): gathering
    # them is a sizeable part of a line's cost, and a line is written for every change and
    # every REST request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces each of its plugins at INFO; migrations themselves stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # An exception nobody caught is a line like the others, its traceback in "exception".
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):  # Ctrl-C before the command took signals
        _log.info("interrupted")
        return
    _log.critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # as the default hook does
    _log.critical(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
        extra={"thread_name": args.thread.name if args.thread else None},
    )
