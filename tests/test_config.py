"""Settings from the environment: defaults, parsing, and refusals that name the variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isales_campaign.config import ENVIRONMENT, ConfigError, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.internal_token, settings.metrics_listen, settings.grpc_tls) == ("", "", None)
    # The vendor's cap on campaigns in all, now that they can be deleted.
    assert settings.max_campaigns_per_family == 20
    assert (
        Settings.from_env({"ISALES_MAX_CAMPAIGNS_PER_FAMILY": "30"}).max_campaigns_per_family == 30
    )


@pytest.mark.parametrize(("raw", "days"), [("", 400), ("30", 30), ("0", 0)])
def test_the_change_retention_is_days_and_0_keeps_every_record(raw: str, days: int) -> None:
    assert Settings.from_env({"ISALES_CHANGE_RETENTION_DAYS": raw}).change_retention_days == days


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("-1", "ISALES_CHANGE_RETENTION_DAYS must be at least 0, not -1"),
        ("1.5", "ISALES_CHANGE_RETENTION_DAYS must be an integer, not '1.5'"),
    ],
)
def test_an_unusable_change_retention_is_refused_in_one_line(raw: str, error: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"ISALES_CHANGE_RETENTION_DAYS": raw})
    assert str(refused.value) == error


@pytest.mark.parametrize(("raw", "required"), [("1", True), ("true", True), ("0", False)])
def test_the_token_requirement_is_a_flag(raw: str, required: bool) -> None:
    settings = Settings.from_env({"ISALES_REQUIRE_INTERNAL_TOKEN": raw})
    assert settings.require_internal_token is required
    assert Settings.from_env({}).require_internal_token is False


def test_a_mounted_token_loses_its_newline_and_stays_out_of_repr() -> None:
    settings = Settings.from_env({"ISALES_INTERNAL_TOKEN": "s3cr3t-token\n"})
    assert settings.internal_token == "s3cr3t-token"
    assert "s3cr3t" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ISALES_INTERNAL_TOKEN": "two words"}, "ISALES_INTERNAL_TOKEN"),
        ({"ISALES_INTERNAL_TOKEN": "tökén"}, "ISALES_INTERNAL_TOKEN"),
        ({"ISALES_METRICS_LISTEN": "9464"}, "ISALES_METRICS_LISTEN"),
        ({"ISALES_HTTP_LISTEN": "localhost:http"}, "ISALES_HTTP_LISTEN"),
        ({"ISALES_MAX_ACTIVE_TASKS": "-1"}, "ISALES_MAX_ACTIVE_TASKS"),
        ({"ISALES_MAX_CAMPAIGNS_PER_FAMILY": "0"}, "ISALES_MAX_CAMPAIGNS_PER_FAMILY"),
        ({"ISALES_GRPC_TIMEOUT_SECONDS": "0"}, "ISALES_GRPC_TIMEOUT_SECONDS"),
        ({"ISALES_DEPLOYMENT": "moon"}, "ISALES_DEPLOYMENT"),
        ({"ISALES_REQUIRE_INTERNAL_TOKEN": "maybe"}, "ISALES_REQUIRE_INTERNAL_TOKEN"),
        ({"ISALES_DATABASE_TIMEOUT_SECONDS": "-1"}, "ISALES_DATABASE_TIMEOUT_SECONDS"),
        ({"ISALES_CHANGE_RETENTION_DAYS": "-1"}, "ISALES_CHANGE_RETENTION_DAYS"),
        ({"ISALES_CHANGE_RETENTION_DAYS": "1.5"}, "ISALES_CHANGE_RETENTION_DAYS"),
        ({"ISALES_CHANGE_RETENTION_DAYS": "a year"}, "ISALES_CHANGE_RETENTION_DAYS"),
    ],
)
def test_unusable_values_are_refused(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            {"ISALES_GRPC_LISTEN": "127.0.0.1"},
            "ISALES_GRPC_LISTEN must be host:port, not '127.0.0.1'",
        ),
        ({"ISALES_GRPC_LISTEN": ""}, "ISALES_GRPC_LISTEN must be host:port, not ''"),
        (
            {"ISALES_HTTP_LISTEN": "localhost:99999"},
            "ISALES_HTTP_LISTEN must be host:port with a port from 1 to 65535, not "
            "'localhost:99999'",
        ),
        (
            {"ISALES_HTTP_LISTEN": "127.0.0.1:0"},
            "ISALES_HTTP_LISTEN must be host:port with a port from 1 to 65535, not '127.0.0.1:0'",
        ),
        (
            {"ISALES_METRICS_LISTEN": "127.0.0.1:0"},
            "ISALES_METRICS_LISTEN must be host:port with a port from 1 to 65535, not "
            "'127.0.0.1:0'",
        ),
        (
            {"ISALES_HTTP_LISTEN": ":8080"},
            "ISALES_HTTP_LISTEN must name a host (0.0.0.0: every interface), not ':8080'",
        ),
        (
            {"ISALES_GRPC_LISTEN": "::1:50051"},
            "ISALES_GRPC_LISTEN must put an IPv6 address in brackets, [::1]:port, not '::1:50051'",
        ),
        (
            {"ISALES_GRPC_LISTEN": "[db8::x]:50051"},
            "ISALES_GRPC_LISTEN: [db8::x] is not an IPv6 address, in '[db8::x]:50051'",
        ),
        (
            {"ISALES_HTTP_LISTEN": "my host:8080"},
            "ISALES_HTTP_LISTEN: 'my host' is not a host name or an IPv4 address, in "
            "'my host:8080'",
        ),
        (
            {"ISALES_HTTP_LISTEN": "host:\uff18\uff10"},  # fullwidth digits: isdigit() says yes
            "ISALES_HTTP_LISTEN must be host:port, not 'host:\uff18\uff10'",
        ),
    ],
)
def test_a_listen_address_is_host_and_port(env: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    ("grpc", "http"),
    [
        ("127.0.0.1:0", "0.0.0.0:8080"),  # port 0: the kernel picks the gRPC port (logged)
        ("[::]:50051", "[::1]:65535"),
        ("localhost:50051", "campaign-gateway.internal.:1"),
    ],
)
def test_listen_addresses_that_are_taken(grpc: str, http: str) -> None:
    settings = Settings.from_env({"ISALES_GRPC_LISTEN": grpc, "ISALES_HTTP_LISTEN": http})
    assert (settings.grpc_listen, settings.http_listen) == (grpc, http)
    assert settings.grpc_target == grpc


class _Recording(dict[str, str]):
    """An environment that notes every name asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> Any:
        self.asked.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        return super().__getitem__(key)


def test_every_variable_read_is_listed_with_its_default() -> None:
    environment = _Recording()
    Settings.from_env(environment)
    listed = [variable.name for variable in ENVIRONMENT]
    assert sorted(set(environment.asked)) == sorted(set(listed) - {"ISALES_LOG_LEVEL"})
    assert len(listed) == len(set(listed))


def test_the_readme_lists_every_variable_with_its_default() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.partition("\n## Configuration\n")[2].partition("\n## ")[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `ISALES")]
    documented = [
        (name.strip(" `"), default.strip().strip("`"))
        for names, default in rows
        for name in names.split(",")
    ]
    assert documented == [(v.name, v.default.strip("`")) for v in ENVIRONMENT]
