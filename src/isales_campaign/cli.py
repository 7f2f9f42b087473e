"""The `isales` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from isales_campaign import logs
from isales_campaign.config import ConfigError, Settings

log = logging.getLogger("isales")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(os.environ.get("ISALES_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"isales: {error}", file=sys.stderr)
        return 2
    result: int = args.handler(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isales",
        description="Outbound-campaign configuration service. Settings come from ISALES_* "
        "environment variables (see README).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    command = commands.add_parser("serve", help="run the gRPC server and the REST gateway")
    command.set_defaults(handler=_serve)
    command = commands.add_parser("grpc-server", help="run the gRPC server")
    command.set_defaults(handler=_grpc_server)
    command = commands.add_parser("gateway", help="run the legacy REST gateway")
    command.set_defaults(handler=_gateway)
    command = commands.add_parser("migrate", help="apply pending database migrations")
    command.set_defaults(handler=_migrate)
    command = commands.add_parser("seed", help="load tenants, app keys and skill queues")
    command.add_argument("file", type=Path, help="TOML seed file")
    command.set_defaults(handler=_seed)
    return parser


def _grpc_server(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.service.server import serve_forever

    serve_forever(settings)
    return 0


def _gateway(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.gateway.run import run_gateway

    run_gateway(settings)
    return 0


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.gateway.run import run_gateway
    from isales_campaign.service.server import start_server

    running = start_server(settings)
    try:
        run_gateway(settings)  # returns on SIGTERM/SIGINT, after the gateway drained
    finally:
        running.stop(settings.shutdown_grace_seconds)
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from isales_campaign.service.db.engine import create_database_engine
    from isales_campaign.service.db.migrate import upgrade

    engine = create_database_engine(settings.database_url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    log.info("database is up to date")
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from isales_campaign.service.db.engine import create_database_engine
    from isales_campaign.service.db.migrate import upgrade
    from isales_campaign.service.seed import SeedError, apply_seed, load_seed

    try:
        seeds = load_seed(args.file)
    except SeedError as error:
        print(f"isales seed: {error}", file=sys.stderr)
        return 2
    engine = create_database_engine(settings.database_url, pool_size=1)
    try:
        upgrade(engine)
        apply_seed(engine, seeds)
    except SeedError as error:
        print(f"isales seed: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    log.info("seed applied", extra={"file": str(args.file), "tenants": len(seeds)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
