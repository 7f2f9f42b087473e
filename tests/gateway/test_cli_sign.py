"""`isales sign`: the README's curl flow, with the header the command prints."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from isales_campaign import cli
from isales_campaign.legacy import auth_v2
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


LIST_URL = "http://127.0.0.1:8080/rest/isales/v1/openapi/campaigns/1?name=a%20b&status=2&curPage="


def test_sign_a_get_with_a_query_and_no_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No body: the canonical request ends with the `\\n` after the canonical headers."""
    ak, sk = KEYS[1]
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED_TOML.format(ak=ak, sk=sk), encoding="utf-8")
    header = sign(capsys, LIST_URL, "--method", "GET", "--seed", str(seed))
    parsed = auth_v2.parse_authorization(header)
    assert (parsed.access_key, parsed.signed_headers) == (ak, "host")
    canonical = (
        b"GET\n/rest/isales/v1/openapi/campaigns/1\n"
        b"curPage=&name=a%20b&status=2\n"
        b"host\nhost:127.0.0.1%3A8080\n"
    )
    key = auth_v2.signing_key(sk, parsed.prefix)
    assert parsed.signature == auth_v2.signature(key, canonical)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rest/isales/v1/openapi/campaigns/1/7"),
        ("PUT", "/rest/isales/v1/openapi/campaigns/1/7/pause"),
        ("DELETE", "/rest/isales/v1/openapi/campaigns/1/7"),
    ],
)
def test_sign_a_campaign_path_without_a_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str, path: str
) -> None:
    """The seed's key is the one of the VDN in the path (1), not of the campaign id after it."""
    ak, sk = KEYS[1]
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED_TOML.format(ak=ak, sk=sk), encoding="utf-8")
    header = sign(
        capsys,
        "http://127.0.0.1:8080" + path,
        "--method",
        method,
        "--seed",
        str(seed),
        "--signed-headers",
        "content-length;content-type;host",
    )
    parsed = auth_v2.parse_authorization(header)
    assert parsed.access_key == ak
    canonical = (
        f"{method}\n{path}\ncontent-length;content-type;host\n"
        "content-length:0\ncontent-type:application%2Fjson%3Bcharset%3DUTF-8\n"
        "host:127.0.0.1%3A8080\n"
    ).encode()
    key = auth_v2.signing_key(sk, parsed.prefix)
    assert parsed.signature == auth_v2.signature(key, canonical)
