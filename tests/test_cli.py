"""The `isales` command line: its help and version."""

from __future__ import annotations

from importlib import metadata

import pytest

from isales_campaign import cli
from isales_campaign.config import variables_read


@pytest.mark.parametrize(
    ("command", "service", "gateway"),
    [("serve", True, True), ("grpc-server", True, False), ("gateway", False, True)],
)
def test_help_lists_the_settings_a_command_reads(
    command: str, service: bool, gateway: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    shown = capsys.readouterr().out.partition("settings (environment variables")[2]
    rows = [line.split(maxsplit=1) for line in shown.splitlines()[1:] if line.strip()]
    assert [name for name, _ in rows] == [
        v.name for v in variables_read(service=service, gateway=gateway)
    ]
    assert ("ISALES_DATABASE_URL" in dict(rows)) == service
    assert ("ISALES_HTTP_LISTEN" in dict(rows)) == gateway
    assert dict(rows).get("ISALES_GRPC_WORKERS", "16") == "16"
    assert dict(rows)["ISALES_SHUTDOWN_GRACE_SECONDS"] == "10"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"isales {metadata.version('isales-campaign')}\n"


def test_the_version_of_a_source_tree_never_installed_is_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == "isales unknown\n"


def test_the_help_of_changes_lists_the_settings_of_a_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["changes", "--help"])
    help_text = capsys.readouterr().out
    shown = help_text.partition("settings (environment variables")[2]
    rows = [line.split(maxsplit=1) for line in shown.splitlines()[1:] if line.strip()]
    assert [name for name, _ in rows] == [
        "ISALES_GRPC_TARGET",
        "ISALES_GRPC_TARGET_CA",
        "ISALES_GRPC_TARGET_CERT",
        "ISALES_GRPC_TARGET_KEY",
        "ISALES_INTERNAL_TOKEN",
        "ISALES_GRPC_TIMEOUT_SECONDS",
        "ISALES_LOG_LEVEL",
    ]
    assert "exit codes: 0" in help_text
