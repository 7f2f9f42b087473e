"""The gRPC server: campaign service, health checking, reflection, graceful shutdown, and the
change history's pruner."""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from functools import partial

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from isales.campaign.v2 import (
    access_key_service_pb2,
    access_key_service_pb2_grpc,
    campaign_service_pb2_grpc,
)
from sqlalchemy import Engine

from isales_campaign.channel_config import CAMPAIGN_SERVICE
from isales_campaign.config import Settings
from isales_campaign.memory import freeze_startup_objects
from isales_campaign.metrics import SERVER_GAUGES, ServerState
from isales_campaign.service.access_keys import AccessKeyServicer
from isales_campaign.service.call_chain import CallChain
from isales_campaign.service.campaigns import CampaignService, Clock, system_clock
from isales_campaign.service.change_feed import ChangeFeed
from isales_campaign.service.changes import ChangeHistory, read_changes
from isales_campaign.service.db.change_signals import ChangeSignals
from isales_campaign.service.db.engine import create_database_engine, ping
from isales_campaign.service.db.migrate import migrate_database
from isales_campaign.service.db.store import CampaignStore
from isales_campaign.service.domain.quotas import CampaignLimits
from isales_campaign.service.drain import Drain
from isales_campaign.service.errors import ListenError
from isales_campaign.service.health import HealthServicer
from isales_campaign.service.interceptors import RequestInterceptor
from isales_campaign.service.retention import HistoryPruner
from isales_campaign.service.servicer import CampaignServicer
from isales_campaign.tls import server_credentials

log = logging.getLogger(__name__)

ACCESS_KEY_SERVICE_NAME = access_key_service_pb2.DESCRIPTOR.services_by_name[
    "AccessKeyService"
].full_name
#: The server pings a connection that was silent this long, and drops it when the ping is
#: not answered within the timeout (a peer that vanished without closing).
KEEPALIVE_SECONDS = 60
KEEPALIVE_TIMEOUT_SECONDS = 20
#: How often the health status is brought in line with the database; more often while it
#: is NOT_SERVING, since clients that watch health send nothing until it recovers.
HEALTH_PROBE_SECONDS = 5.0
UNHEALTHY_PROBE_SECONDS = 0.5
#: On shutdown, once in-flight calls are done, the server waits until no call has arrived
#: for this long (callers that watch health have heard NOT_SERVING and stopped sending), at
#: most QUIET_LIMIT_SECONDS: grpcio cancels a call that arrives as it stops.
QUIET_SECONDS = 0.1
QUIET_LIMIT_SECONDS = 1.0
#: Threads beyond ISALES_MAX_WATCHERS that answer watchers over the limit.
WATCH_REFUSERS = 4
#: How long a stop waits for the pruner's batch under way: a batch takes milliseconds, and
#: one that the shutdown cuts short is rolled back whole.
PRUNER_STOP_SECONDS = 1.0


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: HealthServicer
    engine: Engine
    store: CampaignStore
    _stop_probe: threading.Event
    _drain: Drain
    feed: ChangeFeed
    _signals: ChangeSignals
    _watch_pool: futures.ThreadPoolExecutor
    #: The servicers and the chain their calls run in, for a gateway in the same process
    #: (see `local_backend`).
    campaigns: CampaignServicer
    access_keys: AccessKeyServicer
    chain: CallChain
    #: Prunes the change history (None: the retention keeps every record).
    pruner: HistoryPruner | None
    #: What its gauges read (see `metrics.ServerGauges`), until it has stopped.
    state: ServerState

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish within `grace` seconds."""
        self._stop_probe.set()
        self._drain.start()  # first: whoever sees NOT_SERVING finds new calls refused
        self.health.enter_graceful_shutdown()
        self.feed.stop()  # watches end UNAVAILABLE: their clients resume elsewhere
        self._signals.stop()
        deadline = time.monotonic() + grace
        self._drain.wait_idle(deadline)
        quiet_until = min(deadline, time.monotonic() + QUIET_LIMIT_SECONDS)
        self._drain.wait_quiet(QUIET_SECONDS, quiet_until)
        self.server.stop(max(0.0, deadline - time.monotonic())).wait()
        self._watch_pool.shutdown(wait=False)
        if self.pruner is not None:
            self.pruner.stop(PRUNER_STOP_SECONDS)
        self.store.close()
        self.engine.dispose()
        SERVER_GAUGES.forget(self.state)


def start_server(
    settings: Settings,
    *,
    migrate: bool = True,
    clock: Clock = system_clock,
    reuse_port: bool = False,
) -> RunningServer:
    """Start serving on `settings.grpc_listen` (port 0 picks a free port); `reuse_port`: share
    the port with other processes that ask the same (see `workers`)."""
    if migrate:
        migrate_database(settings.database_url)
    timeout = settings.database_timeout_seconds
    engine = create_database_engine(
        settings.database_url, pool_size=settings.grpc_workers, timeout=timeout
    )
    store = CampaignStore(engine, lock_timeout=timeout)
    service = CampaignService(
        store,
        limits=CampaignLimits.of(settings),
        deployment=settings.deployment,
        clock=clock,
    )
    feed = ChangeFeed(
        partial(read_changes, store),
        max_watchers=settings.max_watchers,
        buffer=settings.watch_buffer,
        bookmark_seconds=settings.watch_bookmark_seconds,
    )
    store.on_change = feed.changed
    signals = ChangeSignals(
        engine,
        changed=feed.changed,
        changed_any=feed.changed_all,
        watched=feed.watched,
    )
    drain = Drain()
    own_services = frozenset({CAMPAIGN_SERVICE, ACCESS_KEY_SERVICE_NAME})
    chain = CallChain(
        drain,
        drained=own_services,
        # Access keys sign as their tenant: only gateways get them, always.
        token_required=own_services
        if settings.require_internal_token
        else frozenset({ACCESS_KEY_SERVICE_NAME}),
        internal_token=settings.internal_token,
    )
    client_certificates = settings.grpc_tls is not None and bool(settings.grpc_tls.ca)
    # A watcher holds a thread for as long as it watches: watchers get threads of their own,
    # and a few more, so that one beyond the limit is refused rather than kept waiting.
    watch_pool = futures.ThreadPoolExecutor(
        max_workers=settings.max_watchers + WATCH_REFUSERS, thread_name_prefix="watch"
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_workers, thread_name_prefix="grpc"),
        interceptors=[
            RequestInterceptor(
                chain,
                stream_pool=watch_pool,
                client_certificates=client_certificates,
            )
        ],
        options=[
            ("grpc.so_reuseport", int(reuse_port)),
            # Idle connections are closed; silent peers are found by pings.
            ("grpc.max_connection_idle_ms", round(settings.grpc_max_idle_seconds * 1000)),
            ("grpc.keepalive_time_ms", KEEPALIVE_SECONDS * 1000),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_SECONDS * 1000),
            # A request larger than any campaign is refused (RESOURCE_EXHAUSTED) as it arrives,
            # not read into memory first (grpcio's default allows 4 MiB).
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ],
    )
    campaign_servicer = CampaignServicer(service, ChangeHistory(store, feed))
    access_key_servicer = AccessKeyServicer(store)
    if not settings.internal_token:
        log.warning("ISALES_INTERNAL_TOKEN is not set: AccessKeyService refuses every call")
    campaign_service_pb2_grpc.add_CampaignServiceServicer_to_server(campaign_servicer, server)
    access_key_service_pb2_grpc.add_AccessKeyServiceServicer_to_server(access_key_servicer, server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (CAMPAIGN_SERVICE, ACCESS_KEY_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME),
        server,
    )
    try:
        if settings.grpc_tls is None:
            port = server.add_insecure_port(settings.grpc_listen)
        else:
            credentials = server_credentials(settings.grpc_tls)
            port = server.add_secure_port(settings.grpc_listen, credentials)
    except RuntimeError:  # grpcio's only word for "cannot bind"
        engine.dispose()
        raise ListenError(
            f"cannot listen on {settings.grpc_listen} (ISALES_GRPC_LISTEN): the address is "
            "in use or not an address of this host"
        ) from None
    server.start()
    feed.start()
    signals.start()
    stop_probe = threading.Event()
    probe = DatabaseProbe(engine, timeout)
    healthy = probe.ok()
    _set_health(health_servicer, healthy)
    threading.Thread(
        target=_probe_database,
        args=(probe, health_servicer, stop_probe, healthy),
        name="health-probe",
        daemon=True,
    ).start()
    pruner = None
    if settings.change_retention_days:
        pruner = HistoryPruner(store, settings.change_retention_days, clock)
        pruner.start()
    state = ServerState(
        database_up=lambda: probe.healthy,
        draining=lambda: drain.draining,
        pool=lambda: engine.pool,  # a disposed engine has a new one
    )
    SERVER_GAUGES.watch(state)
    log.info(
        "gRPC server listening",
        extra={
            "address": settings.grpc_listen,
            "port": port,
            "tls": settings.grpc_tls is not None,
            "client_certificates": client_certificates,
        },
    )
    return RunningServer(
        server,
        port,
        health_servicer,
        engine,
        store,
        stop_probe,
        drain,
        feed,
        signals,
        watch_pool,
        campaigns=campaign_servicer,
        access_keys=access_key_servicer,
        chain=chain,
        pruner=pruner,
        state=state,
    )


#: The signals that stop a server gracefully.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def block_stop_signals() -> None:
    """Keep SIGTERM/SIGINT away from every thread started after this call (threads inherit
    the mask), so that `serve_forever` takes them. Call it before any thread starts."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def serve_forever(settings: Settings, *, reuse_port: bool = False) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (migrate first: see
    `migrate_database`).

    The signals are blocked in every thread and taken here with `sigwait`: a handler would
    run only when the main thread wakes up, which it does not if the kernel hands the signal
    to one of gRPC's threads (the server then ignored SIGTERM for good)."""
    block_stop_signals()
    running = start_server(settings, migrate=False, reuse_port=reuse_port)
    freeze_startup_objects()
    received = signal.sigwait(STOP_SIGNALS)
    log.info("shutting down", extra={"signal": signal.Signals(received).name})
    # A second signal while in-flight calls drain stops at once.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    running.stop(settings.shutdown_grace_seconds)
    log.info("gRPC server stopped")


class DatabaseProbe:
    """Whether the database answers a ping within `timeout`; a probe that does not
    return in time counts as a failure (the database may hang rather than refuse). Logs
    when the answer changes, not at every probe."""

    def __init__(self, engine: Engine, timeout: float) -> None:
        self._engine = engine
        self._timeout = timeout
        self._pending: futures.Future[None] | None = None
        self._healthy = True

    @property
    def healthy(self) -> bool:
        """The answer of the last probe (True before the first)."""
        return self._healthy

    def ok(self) -> bool:
        if self._pending is None or self._pending.done():  # a hung probe is not doubled
            self._pending = futures.Future()
            # A daemon thread: a probe stuck on a hung database never holds up the exit.
            threading.Thread(
                target=self._select_one, args=(self._pending,), name="probe", daemon=True
            ).start()
        try:
            self._pending.result(timeout=self._timeout)
        except futures.TimeoutError:
            if self._healthy:
                log.warning("database health probe timed out")
        except Exception as error:
            if self._healthy:
                log.warning("database health probe failed", exc_info=error)
        else:
            if not self._healthy:
                log.info("database health probe succeeds again")
            self._healthy = True
            return True
        self._healthy = False
        return False

    def _select_one(self, outcome: futures.Future[None]) -> None:
        try:
            ping(self._engine)
        except Exception as error:
            outcome.set_exception(error)
        else:
            outcome.set_result(None)


def _set_health(servicer: HealthServicer, ok: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    servicer.set("", status)
    servicer.set(CAMPAIGN_SERVICE, status)
    servicer.set(ACCESS_KEY_SERVICE_NAME, status)


def _probe_database(
    probe: DatabaseProbe, servicer: HealthServicer, stop: threading.Event, ok: bool
) -> None:
    while not stop.wait(HEALTH_PROBE_SECONDS if ok else UNHEALTHY_PROBE_SECONDS):
        ok = probe.ok()
        _set_health(servicer, ok)
