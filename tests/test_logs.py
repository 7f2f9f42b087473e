"""Log lines are written a batch at a time by a thread of their own, and none is lost when
the process exits, crashes or forks."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap
import threading
import time

import orjson

from isales_campaign.logs import BatchWriter, JsonFormatter
from tests.waiting import wait_for


class _Stream(io.StringIO):
    """Counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(writer: BatchWriter, name: str) -> logging.Logger:
    writer.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.logs.{name}")
    logger.handlers[:] = [writer]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _messages(text: str) -> list[str]:
    return [str(orjson.loads(line)["message"]) for line in text.splitlines()]


def test_the_lines_of_every_thread_are_written_in_their_order_a_batch_at_a_time() -> None:
    stream = _Stream()
    logger = _logger(BatchWriter(stream, interval=0.05), "threads")

    def log_lines(thread: int) -> None:
        for line in range(200):
            logger.info(f"{thread} {line}")

    threads = [threading.Thread(target=log_lines, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Written by the writer's thread, without a flush.
    wait_for(lambda: len(stream.getvalue().splitlines()) == 800, "the lines written")
    by_thread: dict[str, list[int]] = {}
    for message in _messages(stream.getvalue()):
        writer, line = message.split()
        by_thread.setdefault(writer, []).append(int(line))
    assert by_thread == {str(i): list(range(200)) for i in range(4)}
    assert stream.writes < 800 / 10


def test_an_error_is_written_at_once_after_the_lines_before_it() -> None:
    stream = _Stream()
    logger = _logger(BatchWriter(stream, interval=60.0), "error")
    logger.info("first")
    logger.warning("second")
    time.sleep(0.1)
    assert stream.getvalue() == ""  # waiting for the interval
    logger.error("third")
    assert _messages(stream.getvalue()) == ["first", "second", "third"]


def _run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_process_that_exits_or_crashes_has_written_every_line() -> None:
    program = """
        import logging, sys
        from isales_campaign import logs
        logs.configure("INFO")
        for line in range(1000):
            logging.getLogger("x").info("line %d", line)
        if CRASH:
            raise RuntimeError("crashed")
        sys.exit(3)
    """
    exited = _run(program.replace("CRASH", "False"))
    assert exited.returncode == 3
    assert _messages(exited.stderr) == [f"line {line}" for line in range(1000)]

    crashed = _run(program.replace("CRASH", "True"))
    assert crashed.returncode == 1
    messages = _messages(crashed.stderr)
    assert messages == [f"line {line}" for line in range(1000)] + ["uncaught exception"]


def test_a_forked_child_writes_its_own_lines_and_none_of_its_parent() -> None:
    forked = _run(
        """
        import logging, os
        from isales_campaign import logs
        logs.configure("INFO")
        log = logging.getLogger("x")
        log.info("before the fork")
        pid = os.fork()
        if pid == 0:
            log.info("child")
            logging.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        log.info("parent")
        """
    )
    assert forked.returncode == 0, forked.stderr
    assert _messages(forked.stderr) == ["before the fork", "child", "parent"]
