"""JSON log lines on stderr: one object per record, `extra` fields included.

Lines are written by a thread of their own, a batch at a time (`BatchWriter`): a request
thread only formats its line and queues it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import signal
import sys
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

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


def new_request_id() -> str:
    """The id of a request whose caller gave none: 32 random hex digits (not a UUID object,
    which costs four times as much to make, for every request without an id)."""
    return os.urandom(16).hex()


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


#: How long a line may wait to be written with those after it. A process killed outright
#: (SIGKILL) loses the lines of its last interval; an exit or a crash writes them, and lines
#: of level ERROR and above are written at once.
WRITE_INTERVAL_SECONDS = 0.05


class BatchWriter(logging.Handler):
    """Writes the lines of every thread from a thread of its own, those of an interval in one
    write. A write lets go of the GIL, and the thread that wrote waits behind grpcio's threads
    to get it back: on the gRPC server a line written by its request's thread cost 40-75 us
    of CPU (the line itself, 9 us), one in a batch costs what formatting it costs."""

    def __init__(self, stream: TextIO, interval: float = WRITE_INTERVAL_SECONDS) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._lines: deque[str] = deque()
        #: Set by the first line queued since the last write.
        self._queued = threading.Event()
        #: Held while lines are taken from the queue and written: they stay in order.
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        _writers.add(self)

    def handle(self, record: logging.LogRecord) -> bool:
        """As `Handler.handle`, without the handler's lock: `emit` needs none."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR:
            self.flush()
        elif not self._queued.is_set():
            self._queued.set()
            if self._thread is None:
                self._start()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._writing:
            lines = []
            while self._lines:
                lines.append(self._lines.popleft())
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # stderr is closed or gone: there is nowhere to say so

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_batches, name="log-writer", daemon=True
                )
                # Started with every signal blocked (a thread inherits its starter's mask): a
                # stop signal the kernel handed to this thread would wake nobody (see
                # `server.block_stop_signals`), and the first line may come before those
                # signals are blocked.
                unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
                try:
                    self._thread.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)

    def _write_batches(self) -> None:
        while True:
            self._queued.wait()
            time.sleep(self._interval)  # the lines of the interval go in one write
            self._queued.clear()  # before taking them: a line queued after is signalled
            self.flush()

    def _forget_thread(self) -> None:
        """In a forked child: the thread stayed behind in the parent (whose lines `flush`
        wrote before the fork)."""
        self._thread = None
        self._queued = threading.Event()
        self._writing = threading.Lock()
        self._starting = threading.Lock()


#: Every BatchWriter, for the fork hooks.
_writers: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


def _flush_all() -> None:
    for writer in list(_writers):
        writer.flush()


def _forget_threads() -> None:
    for writer in list(_writers):
        writer._forget_thread()


os.register_at_fork(before=_flush_all, after_in_child=_forget_threads)


def configure(level: str = "INFO") -> None:
    # The lines name no source file, thread or process, so no record collects them
    # (see "Optimization" in the logging HOWTO, which sets `logging._srcfile` so): gathering
    # them is a sizeable part of a line's cost, and a line is written for every change and
    # every REST request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchWriter(sys.stderr)
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
