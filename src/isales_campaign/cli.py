"""The `isales` command."""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from isales_campaign import logs, release
from isales_campaign.config import ConfigError, Settings, variables_read
from isales_campaign.legacy.wire import CONTENT_TYPE
from isales_campaign.metrics import GATEWAY_METRICS, SERVICE_METRICS, serve_metrics

log = logging.getLogger("isales")

#: The VDN in a path of the vendor's API (`.../openapi/campaigns/{vdnId}[/{campaignId}[/...]]`).
_VDN_IN_PATH = re.compile(r"/openapi/campaigns/(\d+)(?:/|$)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # gRPC's core writes its own lines on stderr, not JSON (a failed TLS handshake, a port it
    # cannot bind): off, unless the operator asks for them. Read when grpc is first imported,
    # which none of the imports above does.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    logs.configure(os.environ.get("ISALES_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
        result: int = args.handler(settings, args)
    except ConfigError as error:  # a setting found unusable on start (ISALES_DATABASE_URL)
        print(f"isales: {error}", file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isales",
        description="Outbound-campaign configuration service. Settings come from ISALES_* "
        "environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {release()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    command = commands.add_parser(
        "serve",
        help="run the gRPC server and the REST gateway",
        **_settings_help(service=True, gateway=True),
    )
    command.set_defaults(handler=_serve)
    command = commands.add_parser(
        "grpc-server", help="run the gRPC server", **_settings_help(service=True, gateway=False)
    )
    command.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes sharing the port (default 1; more need a fixed port, and "
        "each serves its metrics on ISALES_METRICS_LISTEN's port plus its index)",
    )
    command.set_defaults(handler=_grpc_server)
    command = commands.add_parser(
        "gateway",
        help="run the legacy REST gateway",
        **_settings_help(service=False, gateway=True),
    )
    command.set_defaults(handler=_gateway)
    _database_parsers(commands)
    _changes_parser(commands)
    _sign_parser(commands)
    return parser


def _settings_help(
    *, service: bool = False, gateway: bool = False, client: bool = False
) -> dict[str, Any]:
    """`add_parser` arguments whose epilog lists the environment variables the command reads,
    with their defaults (their meanings: the README's Configuration)."""
    read = variables_read(service=service, gateway=gateway, client=client)
    width = max(len(variable.name) for variable in read)
    lines = [f"  {v.name.ljust(width)}  {v.default.replace('`', '')}" for v in read]
    return {
        "epilog": "settings (environment variables, with their defaults; see the README's "
        "Configuration):\n" + "\n".join(lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def _database_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "migrate",
        help="apply pending database migrations (or go back to an earlier revision, or say "
        "which are pending)",
        description="Brings the database to the newest revision this release knows, or to "
        "--to REVISION:\nan earlier one is a downgrade, refused where the older schema has no "
        "place for data\nthe database holds. With --status it changes nothing and prints "
        '{"revision": ...,\n"head": ..., "pending": [...]}: the database\'s revision (null: '
        "never migrated), the\nnewest this release knows, and those `isales migrate` would "
        "apply.\n\n"
        "exit codes: 0 done (--status: nothing pending); 1 the migration failed or was "
        "refused,\nor the database cannot be read or is at a revision this release does not "
        "know\n(nothing was changed); 2 a usage error; 3 (--status) migrations are pending.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choice = command.add_mutually_exclusive_group()
    choice.add_argument(
        "--to", default="head", metavar="REVISION", help="target revision (default: head)"
    )
    choice.add_argument(
        "--status",
        action="store_true",
        help="print the database's revision and the pending ones, and change nothing",
    )
    command.set_defaults(handler=_migrate)
    command = commands.add_parser(
        "seed",
        help="load tenants, app keys and skill queues (--dry-run: say what would change)",
        description="Applies a TOML seed file (see the README's Configuration) in one "
        "transaction,\nafter migrating the database, and logs each change it makes. A key the "
        "file does not\nknow is refused, naming its line. A tenant keeps what the file leaves "
        "out: its time\nzone, and its app keys or skill queues when the file gives no list "
        "of them; a list\ngiven is the whole list (`app_keys = []`: none).\n\n"
        "exit codes: 0 applied (or, with --dry-run, checked); 1 the database failed, or is at "
        "a\nrevision this release does not know; 2 the file is not valid (nothing of it was "
        "applied).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("file", type=Path, help="TOML seed file")
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="print the changes it would make as JSON lines, one per change, and make none "
        "(nor migrate the database)",
    )
    command.set_defaults(handler=_seed)
    command = commands.add_parser(
        "tenants",
        help="list tenants as JSON lines: VDN, time zone, access keys (never secrets), skill "
        "queues",
        description="Prints one JSON object a line per tenant, by VDN: "
        '{"vdn_id": 1, "time_zone": "UTC",\n"app_keys": ["..."], "skill_queues": [{"id": 2, '
        '"name": "..."}]}, read from ISALES_DATABASE_URL.\nAccess keys only: secret keys are '
        "never printed.\n\n"
        "exit codes: 0 listed; 1 the database failed, or a VDN asked for is not configured "
        "(the\nothers are listed); 2 a usage error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "vdn", type=int, nargs="*", metavar="VDN", help="only these tenants (default: all)"
    )
    command.set_defaults(handler=_tenants)


def _changes_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "changes",
        help="print a tenant's change history as JSON lines, or follow it",
        description="Prints the records of the VDN's changes after --after, one JSON object a "
        "line\n(protobuf's JSON mapping of CampaignChange), read from the service at\n"
        "ISALES_GRPC_TARGET. With --follow it goes on with each change as it is made, until\n"
        "stopped, and resumes by itself after a disconnect.\n\n"
        "exit codes: 0 the listing is complete; 1 the service refused or cannot be reached (one\n"
        "line on stderr says why); 2 a usage error; 130 stopped by SIGINT (Ctrl-C), 143 by\n"
        "SIGTERM; 141 the reader of stdout went away.",
        **_settings_help(client=True),
    )
    command.add_argument("vdn", type=int, metavar="VDN", help="the tenant")
    command.add_argument(
        "--campaign",
        type=_positive,
        metavar="ID",
        help="only this campaign's changes (its history outlives it); with --follow the "
        "tenant's feed is read and the others are skipped here",
    )
    command.add_argument(
        "--after",
        type=int,
        default=0,
        metavar="N",
        help="the last sequence already seen (default 0: from the oldest retained change)",
    )
    command.add_argument(
        "--follow",
        action="store_true",
        help="then print each change as it is made, until stopped; a watch that ends (the "
        "server restarts, the connection drops) is resumed after the last change received, "
        "first after 0.5 s, then waiting twice as long each time up to 10 s, each attempt "
        "logged on stderr",
    )
    command.set_defaults(handler=_changes)


def _sign_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "sign",
        help="print an auth-v2 Authorization header value for a legacy REST request",
        description="Keys come from --seed FILE (the app key of --vdn, by default the VDN in the "
        "URL's path: the segment after /openapi/campaigns/, else the last one), or "
        "--access-key/--secret-key, or ISALES_ACCESS_KEY/ISALES_SECRET_KEY.",
    )
    command.add_argument("url", help="the full request URL, e.g. http://127.0.0.1:8080/rest/...")
    command.add_argument("--method", default="POST", help="HTTP method (default POST)")
    command.add_argument(
        "--body",
        type=Path,
        help="file holding the exact request body ('-' for stdin); omit it for a request "
        "without a body (GET, pause/resume, DELETE without archiveHistory)",
    )
    command.add_argument("--seed", type=Path, help="TOML seed file to read the keys from")
    command.add_argument("--vdn", type=int, help="VDN whose app key to use with --seed")
    command.add_argument("--access-key", help="access key (AK)")
    command.add_argument("--secret-key", help="secret key (SK); prefer --seed or the environment")
    command.add_argument(
        "--signed-headers",
        default="host",
        choices=["host", "content-length;content-type;host"],
        help="headers to sign (default host)",
    )
    command.add_argument(
        "--content-type",
        default=CONTENT_TYPE,
        help="Content-Type the request is sent with (signed with content-type)",
    )
    command.add_argument(
        "--seconds",
        action="store_true",
        help="timestamp in whole seconds (...ssZ); by default it has milliseconds (...ss.SSSZ), "
        "so that an add signed again a moment later is a new add, not a retry of the first",
    )
    command.set_defaults(handler=_sign)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _grpc_server(settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.service.errors import ListenError
    from isales_campaign.service.server import block_stop_signals, serve_forever
    from isales_campaign.service.workers import serve_workers

    if args.workers > 1 and settings.grpc_listen.endswith(":0"):
        print("isales: --workers needs a fixed port in ISALES_GRPC_LISTEN", file=sys.stderr)
        return 2
    # Migrations first, while SIGTERM still ends the process: a start stuck on the database
    # (or on another replica's migration lock) can be stopped.
    if not _migrated(settings):
        return 1
    if args.workers > 1:
        return serve_workers(settings, args.workers)
    block_stop_signals()  # before the metrics server starts its thread
    serve_metrics(settings.metrics_listen, SERVICE_METRICS)
    try:
        serve_forever(settings)
    except ListenError as error:
        print(f"isales: {error}", file=sys.stderr)
        return 1
    return 0


def _gateway(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.gateway.errors import ListenError
    from isales_campaign.gateway.run import bind, run_gateway

    try:
        sockets = bind(settings)
    except ListenError as error:
        print(f"isales: {error}", file=sys.stderr)
        return 1
    serve_metrics(settings.metrics_listen, GATEWAY_METRICS)
    run_gateway(settings, sockets=sockets)
    return 0


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.gateway.app import create_app
    from isales_campaign.gateway.errors import ListenError as HttpListenError
    from isales_campaign.gateway.run import bind, run_gateway
    from isales_campaign.local_backend import LocalBackend
    from isales_campaign.service.errors import ListenError
    from isales_campaign.service.server import start_server

    try:
        sockets = bind(settings)  # a taken port stops the start before the database is touched
    except HttpListenError as error:
        print(f"isales: {error}", file=sys.stderr)
        return 1
    if not settings.internal_token:
        # Both halves live in this process: a fresh token keeps the access keys
        # from anyone else who can reach the gRPC port.
        settings = replace(settings, internal_token=secrets.token_urlsafe(32))
    running = None
    try:
        if _migrated(settings):
            serve_metrics(settings.metrics_listen, SERVICE_METRICS, GATEWAY_METRICS)
            running = start_server(settings, migrate=False)
    except ListenError as error:
        print(f"isales: {error}", file=sys.stderr)
    finally:
        if running is None:
            for sock in sockets:
                sock.close()
    if running is None:
        return 1
    # The gateway calls the service of this process directly; the gRPC port serves others.
    backend = LocalBackend(
        running, settings.grpc_timeout_seconds, settings.internal_token, settings.grpc_workers
    )
    try:
        # Returns on SIGTERM/SIGINT, after the gateway drained.
        run_gateway(settings, create_app(settings, backend), sockets)
    finally:
        running.stop(settings.shutdown_grace_seconds)
    return 0


def _migrated(settings: Settings, command: str = "isales", revision: str = "head") -> bool:
    """Migrate the database to `revision` (before serving: "head"); False, with the reason
    said in one line, when it cannot be."""
    from isales_campaign.service.db.migrate import migrate_database
    from isales_campaign.service.errors import DatabaseUnreachable, MigrationError

    try:
        now_at = migrate_database(settings.database_url, revision)
    except (MigrationError, DatabaseUnreachable) as error:
        print(f"{command}: {error}; nothing was changed", file=sys.stderr)
        return False
    log.info("database migrated", extra={"revision": now_at})
    return True


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.status:
        from isales_campaign.database_cli import migrate_status

        return migrate_status(settings, args)
    return 0 if _migrated(settings, "isales migrate", args.to) else 1


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.database_cli import seed

    return seed(settings, args, migrated=lambda: _migrated(settings, "isales seed"))


def _tenants(settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.database_cli import tenants

    return tenants(settings, args)


def _changes(settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.changes_cli import run

    return run(settings, args)


def _sign(_settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.client import CredentialsError, from_seed_file, sign_request
    from isales_campaign.client.http import Target
    from isales_campaign.legacy.auth_v2 import format_timestamp

    try:
        target = Target.parse(args.url)
    except ValueError as error:
        print(f"isales sign: {error}", file=sys.stderr)
        return 2
    access_key = args.access_key or os.environ.get("ISALES_ACCESS_KEY", "")
    secret_key = args.secret_key or os.environ.get("ISALES_SECRET_KEY", "")
    if args.seed is not None:
        vdn = args.vdn
        if vdn is None:
            found = _VDN_IN_PATH.search(target.path)
            last = target.path.rstrip("/").rpartition("/")[2]
            vdn = int(found.group(1)) if found else int(last) if last.isdigit() else None
        if vdn is None:
            print("isales sign: --seed needs --vdn (the URL names no VDN)", file=sys.stderr)
            return 2
        try:
            credentials = from_seed_file(args.seed, vdn)
        except CredentialsError as error:
            print(f"isales sign: {error}", file=sys.stderr)
            return 2
        access_key, secret_key = credentials.access_key, credentials.secret_key
    if not access_key or not secret_key:
        print("isales sign: no access key / secret key given", file=sys.stderr)
        return 2
    if args.body is None:
        body = b""
    elif str(args.body) == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            body = args.body.read_bytes()
        except OSError as error:
            print(f"isales sign: {error}", file=sys.stderr)
            return 2
    print(
        sign_request(
            access_key,
            secret_key,
            method=args.method,
            url=args.url,
            body=body,
            content_type=args.content_type,
            signed=args.signed_headers.split(";"),
            timestamp=format_timestamp(millis=not args.seconds),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
