"""TLS and mutual TLS on the gRPC port, with certificates made for the test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from isales.campaign.v2.campaign_service_pb2 import ListCampaignChangesRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.config import ConfigError, Settings, TlsFiles
from isales_campaign.internal_token import bearer
from isales_campaign.tls import channel_credentials
from tests.conftest import ServerFactory
from tests.examples import add_request, example_campaign
from tests.gateway.conftest import example_body, start_stack
from tests.pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def channels() -> Iterator[list[grpc.Channel]]:
    opened: list[grpc.Channel] = []
    yield opened
    for channel in opened:
        channel.close()


def _add(channel: grpc.Channel, name: str) -> int:
    stub = CampaignServiceStub(channel)
    return stub.AddCampaign(add_request(example_campaign(name)), timeout=5).id


def _tls_channel(port: int, channels: list[grpc.Channel], files: TlsFiles) -> grpc.Channel:
    channel = grpc.secure_channel(f"localhost:{port}", channel_credentials(files))
    channels.append(channel)
    return channel


def test_server_tls_refuses_plaintext(
    sqlite_url: str, make_server: ServerFactory, pki: Pki, channels: list[grpc.Channel]
) -> None:
    server_only = replace(pki.server, ca="")
    running = make_server(sqlite_url, grpc_tls=server_only)
    anonymous = replace(pki.client, cert="", key="")
    assert _add(_tls_channel(running.port, channels, anonymous), "over tls")
    plaintext = grpc.insecure_channel(f"localhost:{running.port}")
    channels.append(plaintext)
    with pytest.raises(grpc.RpcError) as refused:
        _add(plaintext, "in plaintext")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("client", ["anonymous", "stranger"])
def test_mutual_tls_refuses_unknown_clients(
    sqlite_url: str, make_server: ServerFactory, pki: Pki, channels: list[grpc.Channel], client: str
) -> None:
    running = make_server(sqlite_url, grpc_tls=pki.server)
    files = replace(pki.client, cert="", key="") if client == "anonymous" else pki.stranger
    with pytest.raises(grpc.RpcError) as refused:
        _add(_tls_channel(running.port, channels, files), client)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _add(_tls_channel(running.port, channels, pki.client), "known client")


def test_tls_settings_from_the_environment(pki: Pki) -> None:
    settings = Settings.from_env(
        {
            "ISALES_GRPC_TLS_CERT": pki.server.cert,
            "ISALES_GRPC_TLS_KEY": pki.server.key,
            "ISALES_GRPC_TLS_CLIENT_CA": pki.server.ca,
            "ISALES_GRPC_TARGET_CA": pki.client.ca,
            "ISALES_GRPC_TARGET_CERT": pki.client.cert,
            "ISALES_GRPC_TARGET_KEY": pki.client.key,
        }
    )
    assert settings.grpc_tls == pki.server
    assert settings.grpc_target_tls == pki.client
    assert Settings.from_env({}).grpc_tls is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ISALES_GRPC_TLS_CERT": "{server_cert}"}, "go together"),
        ({"ISALES_GRPC_TLS_CLIENT_CA": "{server_cert}"}, "go together"),
        ({"ISALES_GRPC_TARGET_CERT": "{server_cert}"}, "need ISALES_GRPC_TARGET_CA"),
        ({"ISALES_GRPC_TLS_CERT": "/nonexistent.pem"}, "no such file"),
    ],
)
def test_incomplete_tls_settings_are_refused(pki: Pki, env: dict[str, str], message: str) -> None:
    resolved = {k: v.format(server_cert=pki.server.cert) for k, v in env.items()}
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(resolved)


def test_gateway_calls_the_service_over_mutual_tls(tmp_path: Path, pki: Pki) -> None:
    stack = start_stack(tmp_path, grpc_tls=pki.server, grpc_target_tls=pki.client)
    try:
        answer = stack.post(example_body()).json()
        assert answer["resultCode"] == "0200000", answer
        assert answer["returnObject"]["id"] > 0
    finally:
        stack.stop()


def test_a_change_over_mutual_tls_records_the_clients_certificate_subject(
    sqlite_url: str, make_server: ServerFactory, pki: Pki, channels: list[grpc.Channel]
) -> None:
    running = make_server(sqlite_url, grpc_tls=pki.server)
    channel = _tls_channel(running.port, channels, pki.client)
    campaign_id = _add(channel, "by certificate")
    request = ListCampaignChangesRequest(vdn_id=1, campaign_id=campaign_id)
    [change] = CampaignServiceStub(channel).ListCampaignChanges(request, timeout=5).changes
    certificate = x509.load_pem_x509_certificate(Path(pki.client.cert).read_bytes())
    [unit] = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert isinstance(unit.value, str)
    assert f"OU={unit.value}" in change.actor.certificate_subject  # this client's own
    assert not change.actor.internal


def test_isales_changes_reads_over_mutual_tls_with_the_internal_token(
    sqlite_url: str, make_server: ServerFactory, pki: Pki, channels: list[grpc.Channel]
) -> None:
    """`isales changes` connects as the gateway does, from the same settings."""
    token = "changes-test-token"
    running = make_server(
        sqlite_url, grpc_tls=pki.server, internal_token=token, require_internal_token=True
    )
    channel = _tls_channel(running.port, channels, pki.client)
    stub = CampaignServiceStub(channel)
    request = add_request(example_campaign("by certificate"))
    stub.AddCampaign(request, timeout=5, metadata=(bearer(token),))
    env = {
        "PATH": "",
        "ISALES_GRPC_TARGET": f"localhost:{running.port}",
        "ISALES_GRPC_TARGET_CA": pki.client.ca,
        "ISALES_GRPC_TARGET_CERT": pki.client.cert,
        "ISALES_GRPC_TARGET_KEY": pki.client.key,
    }

    def changes(**settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "isales_campaign.cli", "changes", "1"],
            env={**env, **settings},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = changes(ISALES_INTERNAL_TOKEN=token)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert [line.count('"CHANGE_KIND_ADDED"') for line in listed.stdout.splitlines()] == [1]
    without_token = changes()
    assert without_token.returncode == 1
    assert without_token.stderr.endswith("(UNAUTHENTICATED)\n")


def test_a_gateway_trusting_another_ca_logs_why_it_cannot_reach_the_service(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading the files cannot tell that ISALES_GRPC_TARGET_CA did not sign the service's
    certificate: the handshake does, and the gateway's log says so."""
    wrong_ca = replace(pki.client, ca=pki.server.ca)  # the client CA, not the server's
    stack = start_stack(tmp_path, grpc_tls=pki.server, grpc_target_tls=wrong_ca)
    try:
        answer = stack.post(example_body())
    finally:
        stack.stop()
    assert (answer.status_code, answer.json()["resultCode"]) == (503, "0200006")
    [failed] = [r for r in caplog.records if r.message.startswith("TLS handshake")]
    assert failed.levelname == "ERROR"
    assert "ISALES_GRPC_TARGET_CA" in failed.message
    assert "CERTIFICATE_VERIFY_FAILED" in failed.__dict__["cause"]
