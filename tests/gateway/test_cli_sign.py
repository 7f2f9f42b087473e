"""`isales sign`: the README's curl flow, with the header the command prints."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from isales_campaign import cli
from tests.gateway.conftest import CONTENT_TYPE, KEYS, Stack, example_body

SEED_TOML = """
[[tenants]]
vdn_id = 1
[[tenants.app_keys]]
access_key = "{ak}"
secret_key = "{sk}"
"""


@pytest.fixture(autouse=True)
def _keep_test_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # cli.main() installs the JSON handler on the root logger; pytest owns it here.
    monkeypatch.setattr("isales_campaign.logs.configure", lambda _level="INFO": None)


def sign(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["sign", *args]) == 0
    return capsys.readouterr().out.strip()


def test_sign_with_a_seed_file(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ak, sk = KEYS[1]
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED_TOML.format(ak=ak, sk=sk), encoding="utf-8")
    body = tmp_path / "body.json"
    body.write_bytes(orjson.dumps(example_body(), option=orjson.OPT_INDENT_2))
    header = sign(capsys, stack.url(1), "--body", str(body), "--seed", str(seed))
    assert header.startswith(f"auth-v2/{ak}/")
    assert "/host/" in header
    response = httpx.post(
        stack.url(1),
        content=body.read_bytes(),
        headers={"Content-Type": CONTENT_TYPE, "Authorization": header},
    )
    assert response.json()["resultCode"] == "0200000"


def test_sign_content_headers_with_keys_from_the_environment(
    stack: Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ak, sk = KEYS[1]
    monkeypatch.setenv("ISALES_ACCESS_KEY", ak)
    monkeypatch.setenv("ISALES_SECRET_KEY", sk)
    body = tmp_path / "body.json"
    body.write_bytes(orjson.dumps(example_body()))
    header = sign(
        capsys,
        stack.url(1),
        "--body",
        str(body),
        "--signed-headers",
        "content-length;content-type;host",
        "--millis",
    )
    assert "/content-length;content-type;host/" in header
    timestamp = header.split("/")[2]
    assert timestamp.endswith("Z")
    assert "." in timestamp
    response = httpx.post(
        stack.url(1),
        content=body.read_bytes(),
        headers={"Content-Type": CONTENT_TYPE, "Authorization": header},
    )
    assert response.json()["resultCode"] == "0200000"


def test_sign_without_keys_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ISALES_ACCESS_KEY", raising=False)
    monkeypatch.delenv("ISALES_SECRET_KEY", raising=False)
    assert cli.main(["sign", "http://127.0.0.1:8080/rest/isales/v2/openapi/campaigns/1"]) == 2
    assert "no access key" in capsys.readouterr().err
