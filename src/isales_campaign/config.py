"""Settings of the service and the gateway, read from the environment."""

from __future__ import annotations

import enum
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from isales_campaign import pem

T = TypeVar("T")


class Deployment(enum.StrEnum):
    """Where the service runs. In the on-premises (`op`) deployment `ccId` is mandatory."""

    CLOUD = "cloud"
    OP = "op"


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


DEFAULT_DATABASE_URL = "sqlite:///var/isales.db"
DEFAULT_GRPC_LISTEN = "127.0.0.1:50051"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
#: The highest TCP port.
MAX_PORT = 65535
#: A host name (RFC 1123 labels) or an IPv4 address, as a listen address names it.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of one end of a TLS connection."""

    #: Certificate chain this end presents ("" for a client without a certificate).
    cert: str = ""
    #: Private key of `cert`.
    key: str = ""
    #: What the peer's certificate must chain to. A server asks clients for a
    #: certificate (mutual TLS) only when this is set.
    ca: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything an operator can set, with the defaults of a development machine."""

    #: SQLAlchemy URL; `postgresql://...` selects the psycopg 3 driver.
    database_url: str = DEFAULT_DATABASE_URL
    #: host:port of the gRPC server.
    grpc_listen: str = DEFAULT_GRPC_LISTEN
    #: host:port of the REST gateway.
    http_listen: str = DEFAULT_HTTP_LISTEN
    #: Where the gateway finds the gRPC service.
    grpc_target: str = DEFAULT_GRPC_LISTEN
    #: Active campaigns allowed per tenant and device family (`max.liveliest.taskCount`).
    max_active_tasks: int = 20
    #: Campaigns allowed per tenant and device family, ended ones included until deleted or
    #: archived (the vendor's 20).
    max_campaigns_per_family: int = 20
    deployment: Deployment = Deployment.CLOUD
    #: Days a change's record is kept in the change history; older ones are pruned. 0 keeps
    #: every record (for operators who must keep the whole history, or archive it elsewhere).
    change_retention_days: int = 400
    #: Worker threads of the gRPC server; the database pool holds up to twice as many.
    grpc_workers: int = 16
    #: Largest accepted REST request body, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: Largest accepted gRPC request message, in bytes (a campaign's protobuf is smaller than
    #: its JSON, so REST's limit is ample).
    grpc_max_message_bytes: int = 1024 * 1024
    #: Seconds after which the gRPC server closes a connection without calls (GOAWAY).
    grpc_max_idle_seconds: float = 300.0
    #: Change watchers one server process takes at once (each holds a thread); more are
    #: refused RESOURCE_EXHAUSTED.
    max_watchers: int = 500
    #: Changes waiting to be sent to one watcher; a watcher further behind is ended (ABORTED)
    #: and resumes.
    watch_buffer: int = 1000
    #: Seconds of quiet after which a watcher is sent a bookmark.
    watch_bookmark_seconds: float = 10.0
    #: Seconds a REST client has to send a request's headers, and then its body.
    http_read_timeout_seconds: float = 10.0
    #: REST connections served at once; more are answered 503.
    http_max_connections: int = 1000
    #: Largest REST request line and headers, in bytes (nginx's default); more is answered 431.
    http_max_header_bytes: int = 32 * 1024
    #: Largest accepted distance between a signature's timestamp and the clock.
    auth_max_skew_seconds: int = 900
    #: Deadline the gateway gives every gRPC call.
    grpc_timeout_seconds: float = 10.0
    #: Connections the gateway opens to each address of the service, taking calls in turn:
    #: the processes of `isales grpc-server --workers N` share the port's connections.
    grpc_connections: int = 16
    #: Longest wait of the service for its database (a connection, a statement, a lock);
    #: past it a call is answered UNAVAILABLE. Keep it below the gateway's deadline, so that
    #: the service gives up first and the gateway never reports a timeout on a stored change.
    database_timeout_seconds: float = 5.0
    #: Seconds in-flight calls get to finish on SIGTERM/SIGINT.
    shutdown_grace_seconds: float = 10.0
    #: Shared by the service and its gateways: only holders get auth-v2 access keys.
    internal_token: str = field(default="", repr=False)
    #: Every call of the campaign and access-key services must present `internal_token`
    #: (production: the gRPC port then serves the gateways and trusted services only).
    require_internal_token: bool = False
    #: host:port of the Prometheus /metrics endpoint; "" serves none.
    metrics_listen: str = ""
    #: TLS of the gRPC server; None serves plaintext.
    grpc_tls: TlsFiles | None = None
    #: TLS of the gateway's connection to `grpc_target`; None connects in plaintext.
    grpc_target_tls: TlsFiles | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()  # each default is written once, on its field
        # Port 0: the kernel picks one, which the server logs (tests, one-off runs).
        grpc_listen = _listen(env, "ISALES_GRPC_LISTEN", DEFAULT_GRPC_LISTEN, ephemeral=True)
        return cls(
            database_url=env.get("ISALES_DATABASE_URL", DEFAULT_DATABASE_URL),
            grpc_listen=grpc_listen,
            http_listen=_listen(env, "ISALES_HTTP_LISTEN", DEFAULT_HTTP_LISTEN),
            grpc_target=env.get("ISALES_GRPC_TARGET", grpc_listen),
            max_active_tasks=_int(
                env, "ISALES_MAX_ACTIVE_TASKS", defaults.max_active_tasks, minimum=0
            ),
            max_campaigns_per_family=_int(
                env, "ISALES_MAX_CAMPAIGNS_PER_FAMILY", defaults.max_campaigns_per_family, minimum=1
            ),
            deployment=_deployment(env.get("ISALES_DEPLOYMENT", defaults.deployment.value)),
            change_retention_days=_int(
                env, "ISALES_CHANGE_RETENTION_DAYS", defaults.change_retention_days, minimum=0
            ),
            grpc_workers=_int(env, "ISALES_GRPC_WORKERS", defaults.grpc_workers, minimum=1),
            max_body_bytes=_int(env, "ISALES_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
            grpc_max_message_bytes=_int(
                env, "ISALES_GRPC_MAX_MESSAGE_BYTES", defaults.grpc_max_message_bytes, minimum=1024
            ),
            grpc_max_idle_seconds=_float(
                env, "ISALES_GRPC_MAX_IDLE_SECONDS", defaults.grpc_max_idle_seconds
            ),
            max_watchers=_int(env, "ISALES_MAX_WATCHERS", defaults.max_watchers, minimum=0),
            watch_buffer=_int(env, "ISALES_WATCH_BUFFER", defaults.watch_buffer, minimum=1),
            watch_bookmark_seconds=_float(
                env, "ISALES_WATCH_BOOKMARK_SECONDS", defaults.watch_bookmark_seconds
            ),
            http_read_timeout_seconds=_float(
                env, "ISALES_HTTP_READ_TIMEOUT_SECONDS", defaults.http_read_timeout_seconds
            ),
            http_max_connections=_int(
                env, "ISALES_HTTP_MAX_CONNECTIONS", defaults.http_max_connections, minimum=1
            ),
            http_max_header_bytes=_int(
                env, "ISALES_HTTP_MAX_HEADER_BYTES", defaults.http_max_header_bytes, minimum=1024
            ),
            auth_max_skew_seconds=_int(
                env, "ISALES_AUTH_MAX_SKEW_SECONDS", defaults.auth_max_skew_seconds, minimum=0
            ),
            grpc_timeout_seconds=_float(
                env, "ISALES_GRPC_TIMEOUT_SECONDS", defaults.grpc_timeout_seconds
            ),
            grpc_connections=_int(
                env, "ISALES_GRPC_CONNECTIONS", defaults.grpc_connections, minimum=1
            ),
            database_timeout_seconds=_float(
                env, "ISALES_DATABASE_TIMEOUT_SECONDS", defaults.database_timeout_seconds
            ),
            shutdown_grace_seconds=_float(
                env, "ISALES_SHUTDOWN_GRACE_SECONDS", defaults.shutdown_grace_seconds
            ),
            internal_token=_token(env, "ISALES_INTERNAL_TOKEN"),
            require_internal_token=_flag(env, "ISALES_REQUIRE_INTERNAL_TOKEN"),
            metrics_listen=_listen(env, "ISALES_METRICS_LISTEN", ""),
            grpc_tls=_server_tls(env),
            grpc_target_tls=_target_tls(env),
        )


def split_listen(address: str, name: str, *, ephemeral: bool = False) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port), the port from 1 to 65535 (or 0, a port
    the kernel picks, where `ephemeral`); `name` is the setting, for the error."""
    host, sep, port = address.rpartition(":")
    lowest = 0 if ephemeral else 1
    if not sep or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"{name} must be host:port, not {address!r}")
    if not host:
        raise ConfigError(f"{name} must name a host (0.0.0.0: every interface), not {address!r}")
    if not lowest <= int(port) <= MAX_PORT:
        raise ConfigError(
            f"{name} must be host:port with a port from {lowest} to {MAX_PORT}, not {address!r}"
        )
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ConfigError(f"{name}: {host} is not an IPv6 address, in {address!r}") from None
        return host[1:-1], int(port)
    if ":" in host:
        raise ConfigError(
            f"{name} must put an IPv6 address in brackets, [::1]:port, not {address!r}"
        )
    if not _HOST_NAME.fullmatch(host):
        raise ConfigError(f"{name}: {host!r} is not a host name or an IPv4 address, in {address!r}")
    return host, int(port)


def _server_tls(env: Mapping[str, str]) -> TlsFiles | None:
    names = ("ISALES_GRPC_TLS_CERT", "ISALES_GRPC_TLS_KEY", "ISALES_GRPC_TLS_CLIENT_CA")
    cert, key, ca = (_pem_file(env, name) for name in names)
    if not (cert or key or ca):
        return None
    if not (cert and key):
        raise ConfigError("ISALES_GRPC_TLS_CERT and ISALES_GRPC_TLS_KEY go together")
    files = TlsFiles(cert=cert, key=key, ca=ca)
    _check_tls_files(files, *names)
    return files


def _target_tls(env: Mapping[str, str]) -> TlsFiles | None:
    names = ("ISALES_GRPC_TARGET_CERT", "ISALES_GRPC_TARGET_KEY", "ISALES_GRPC_TARGET_CA")
    cert, key, ca = (_pem_file(env, name) for name in names)
    if not (cert or key or ca):
        return None
    if not ca:
        raise ConfigError("ISALES_GRPC_TARGET_CERT/KEY need ISALES_GRPC_TARGET_CA")
    if bool(cert) != bool(key):
        raise ConfigError("ISALES_GRPC_TARGET_CERT and ISALES_GRPC_TARGET_KEY go together")
    files = TlsFiles(cert=cert, key=key, ca=ca)
    _check_tls_files(files, *names)
    return files


def _check_tls_files(files: TlsFiles, cert_name: str, key_name: str, ca_name: str) -> None:
    """Every file is read as gRPC will read it: a certificate chain, its private key, a CA
    bundle. A file that cannot be used is refused now, naming its setting, rather than by
    gRPC when the server binds or the channel connects, in a line of gRPC's own log."""
    if files.cert:
        leaf = _pem(cert_name, pem.certificates, files.cert)[0]
        key = _pem(key_name, pem.private_key, files.key)
        if not pem.key_matches(leaf, key):
            raise ConfigError(
                f"{key_name}: {files.key!r} is not the private key of the certificate in "
                f"{files.cert!r} ({cert_name})"
            )
    if files.ca:
        _pem(ca_name, pem.certificates, files.ca)


def _pem(name: str, read: Callable[[str], T], path: str) -> T:
    try:
        return read(path)
    except pem.PemError as error:
        raise ConfigError(f"{name}: {error}") from None


def _token(env: Mapping[str, str], name: str) -> str:
    # Secrets mounted from files often end in a newline; gRPC metadata takes
    # printable ASCII only.
    token = env.get(name, "").strip()
    if not all("!" <= char <= "~" for char in token):
        raise ConfigError(f"{name} must be printable ASCII without spaces")
    return token


def _listen(env: Mapping[str, str], name: str, default: str, *, ephemeral: bool = False) -> str:
    """A listen address; "" only where the default is "" (nothing to serve)."""
    address = env.get(name, default)
    if address or default:
        split_listen(address, name, ephemeral=ephemeral)
    return address


def _pem_file(env: Mapping[str, str], name: str) -> str:
    path = env.get(name, "")
    if path and os.path.isdir(path):
        raise ConfigError(f"{name}: {path!r} is a directory, not a PEM file")
    if path and not os.path.isfile(path):
        raise ConfigError(f"{name}: no such file {path!r}")
    return path


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, not {raw}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0 (true or false), not {raw!r}")


def _deployment(raw: str) -> Deployment:
    try:
        return Deployment(raw.lower())
    except ValueError:
        choices = ", ".join(d.value for d in Deployment)
        raise ConfigError(f"ISALES_DEPLOYMENT must be one of {choices}, not {raw!r}") from None


@dataclass(frozen=True, slots=True)
class Variable:
    """An environment variable an `isales` command reads, for its `--help`."""

    name: str
    #: The `Settings` field it sets, whose default it shows; "" for one read elsewhere.
    setting: str
    #: Read by the service (`isales grpc-server`), the gateway (`isales gateway`), or both.
    service: bool = True
    gateway: bool = True
    #: Read by the service's command-line client (`isales changes`) too.
    client: bool = False
    #: The default in words, where the field's value does not say it.
    default_text: str = ""

    @property
    def default(self) -> str:
        if self.default_text:
            return self.default_text
        value = getattr(Settings(), self.setting)
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, float):
            return f"{value:g}"
        return str(value) if value != "" else "none"


#: Every variable, in the README's order (a test holds the README's table to it).
ENVIRONMENT = (
    Variable("ISALES_DATABASE_URL", "database_url", gateway=False),
    Variable("ISALES_GRPC_LISTEN", "grpc_listen", gateway=False),
    Variable("ISALES_HTTP_LISTEN", "http_listen", service=False),
    Variable(
        "ISALES_GRPC_TARGET",
        "grpc_target",
        service=False,
        client=True,
        default_text="the gRPC listen address",
    ),
    Variable("ISALES_GRPC_TLS_CERT", "grpc_tls", gateway=False, default_text="none (plaintext)"),
    Variable("ISALES_GRPC_TLS_KEY", "grpc_tls", gateway=False, default_text="none (plaintext)"),
    Variable("ISALES_GRPC_TLS_CLIENT_CA", "grpc_tls", gateway=False, default_text="none"),
    Variable(
        "ISALES_GRPC_TARGET_CA",
        "grpc_target_tls",
        service=False,
        client=True,
        default_text="none (plaintext)",
    ),
    Variable(
        "ISALES_GRPC_TARGET_CERT",
        "grpc_target_tls",
        service=False,
        client=True,
        default_text="none",
    ),
    Variable(
        "ISALES_GRPC_TARGET_KEY", "grpc_target_tls", service=False, client=True, default_text="none"
    ),
    Variable(
        "ISALES_INTERNAL_TOKEN",
        "internal_token",
        client=True,
        default_text="none (`isales serve` makes one up)",
    ),
    Variable("ISALES_REQUIRE_INTERNAL_TOKEN", "require_internal_token", gateway=False),
    Variable("ISALES_MAX_ACTIVE_TASKS", "max_active_tasks", gateway=False),
    Variable("ISALES_MAX_CAMPAIGNS_PER_FAMILY", "max_campaigns_per_family", gateway=False),
    Variable("ISALES_DEPLOYMENT", "deployment", gateway=False),
    Variable("ISALES_CHANGE_RETENTION_DAYS", "change_retention_days", gateway=False),
    Variable("ISALES_GRPC_WORKERS", "grpc_workers", gateway=False),
    Variable("ISALES_MAX_BODY_BYTES", "max_body_bytes", service=False),
    Variable("ISALES_GRPC_MAX_MESSAGE_BYTES", "grpc_max_message_bytes", gateway=False),
    Variable("ISALES_MAX_WATCHERS", "max_watchers", gateway=False),
    Variable("ISALES_WATCH_BUFFER", "watch_buffer", gateway=False),
    Variable("ISALES_WATCH_BOOKMARK_SECONDS", "watch_bookmark_seconds", gateway=False),
    Variable("ISALES_HTTP_READ_TIMEOUT_SECONDS", "http_read_timeout_seconds", service=False),
    Variable("ISALES_HTTP_MAX_CONNECTIONS", "http_max_connections", service=False),
    Variable("ISALES_HTTP_MAX_HEADER_BYTES", "http_max_header_bytes", service=False),
    Variable("ISALES_GRPC_MAX_IDLE_SECONDS", "grpc_max_idle_seconds", gateway=False),
    Variable("ISALES_AUTH_MAX_SKEW_SECONDS", "auth_max_skew_seconds", service=False),
    Variable("ISALES_GRPC_TIMEOUT_SECONDS", "grpc_timeout_seconds", service=False, client=True),
    Variable("ISALES_GRPC_CONNECTIONS", "grpc_connections", service=False),
    Variable("ISALES_DATABASE_TIMEOUT_SECONDS", "database_timeout_seconds", gateway=False),
    Variable("ISALES_SHUTDOWN_GRACE_SECONDS", "shutdown_grace_seconds"),
    Variable("ISALES_METRICS_LISTEN", "metrics_listen"),
    Variable("ISALES_LOG_LEVEL", "", client=True, default_text="INFO"),
)


def variables_read(
    *, service: bool = False, gateway: bool = False, client: bool = False
) -> list[Variable]:
    """The variables of a command that runs the service, the gateway, or both, or of the
    client."""
    return [
        v
        for v in ENVIRONMENT
        if (service and v.service) or (gateway and v.gateway) or (client and v.client)
    ]
