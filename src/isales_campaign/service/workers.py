"""`isales grpc-server --workers N`: N server processes sharing one port (SO_REUSEPORT).

A Python gRPC server computes on one core at a time (the GIL), so more cores need more
processes; this is grpcio's own pattern for it (its `multiprocessing` example). The parent
forks the workers before any gRPC object or thread exists in it, then only waits: it passes
SIGTERM/SIGINT on to every worker, which drains as a single server does, and when a worker
dies on its own it stops the others and exits 1, so that an orchestrator restarts the whole.
Each worker serves its own Prometheus metrics, on the metrics port plus its index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace

from isales_campaign import logs
from isales_campaign.config import Settings, split_listen
from isales_campaign.metrics import SERVICE_METRICS, serve_metrics
from isales_campaign.service.errors import ListenError
from isales_campaign.service.server import STOP_SIGNALS, serve_forever

log = logging.getLogger(__name__)

_WAITED = STOP_SIGNALS | {signal.SIGCHLD}
#: How often a worker checks that its parent still lives.
_PARENT_CHECK_SECONDS = 1.0


def serve_workers(settings: Settings, workers: int) -> int:
    """Run `workers` servers until SIGTERM or SIGINT; the exit code of the whole."""
    # Blocked before forking: the parent takes them with sigwait, and every worker starts
    # with them blocked, as `serve_forever` wants.
    signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
    running: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            os._exit(_worker(settings, index))
        running[pid] = index
    log.info("gRPC workers started", extra={"workers": workers, "pids": sorted(running)})
    failed = stopping = False
    while running:
        received = signal.sigwait(_WAITED)
        if received != signal.SIGCHLD:
            log.info("stopping the workers", extra={"signal": signal.Signals(received).name})
            stopping = True
            _signal_all(running, received)
        for pid, code in _reaped():
            if pid not in running:
                continue
            index = running.pop(pid)
            if code != 0 or not stopping:
                log.error("a gRPC worker ended", extra={"worker": index, "exit_code": code})
                failed = True
                if not stopping:
                    stopping = True
                    _signal_all(running, signal.SIGTERM)
    log.info("gRPC workers stopped")
    return 1 if failed else 0


def _worker(settings: Settings, index: int) -> int:
    """One server process; its exit code."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    logs.tag_process(worker=index)  # every line says which worker wrote it
    # Its own process group: a Ctrl-C reaches the parent alone, which passes it on once
    # (a second signal would stop a draining worker at once).
    os.setpgrp()
    threading.Thread(
        target=_stop_when_orphaned, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    try:
        serve_metrics(_metrics_listen(settings.metrics_listen, index), SERVICE_METRICS)
        serve_forever(replace(settings, metrics_listen=""), reuse_port=True)
    except ListenError as error:
        print(f"isales: worker {index}: {error}", file=sys.stderr)
        return 1
    except BaseException:
        log.exception("gRPC worker failed")
        return 1
    finally:
        logging.shutdown()
    return 0


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent was killed outright drains and stops, freeing the port."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _metrics_listen(listen: str, index: int) -> str:
    if not listen:
        return ""
    host, port = split_listen(listen, "ISALES_METRICS_LISTEN")
    return f"{host}:{port + index}" if ":" not in host else f"[{host}]:{port + index}"


def _signal_all(running: dict[int, int], number: int) -> None:
    for pid in running:
        with contextlib.suppress(ProcessLookupError):  # already gone: reaped below
            os.kill(pid, number)


def _reaped() -> list[tuple[int, int]]:
    """The workers that have ended since the last call, with their exit codes."""
    ended: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))
