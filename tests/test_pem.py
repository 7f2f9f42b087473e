"""PEM files read as gRPC reads them, and what is wrong with one said after its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from isales_campaign import pem
from isales_campaign.config import ConfigError, Settings


@pytest.fixture(scope="module")
def issued() -> trustme.LeafCert:
    return trustme.CA().issue_cert("localhost")


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def test_a_chain_with_text_around_its_blocks_is_read_in_order(tmp_path: Path) -> None:
    """As `openssl pkcs12` writes them: "Bag Attributes" before each block."""
    issued = trustme.CA().create_child_ca().issue_cert("localhost")
    leaf, ca = (blob.bytes() for blob in issued.cert_chain_pems)
    path = _write(tmp_path, "chain.pem", b"Bag Attributes\n" + leaf + b"subject=...\n" + ca)
    chain = pem.certificates(path)
    assert len(chain) == 2
    key = pem.private_key(_write(tmp_path, "key.pem", issued.private_key_pem.bytes()))
    assert pem.key_matches(chain[0], key)
    assert not pem.key_matches(chain[1], key)


@pytest.mark.parametrize("legacy", [False, True])
def test_an_encrypted_key_is_refused_saying_so(
    tmp_path: Path, issued: trustme.LeafCert, legacy: bool
) -> None:
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL
        if legacy
        else serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    path = _write(tmp_path, "encrypted.pem", encrypted)
    with pytest.raises(pem.PemError, match=r"holds an encrypted private key, and gRPC takes no"):
        pem.private_key(path)


@pytest.mark.parametrize(
    ("content", "read", "error"),
    [
        (b"", pem.certificates, "holds no PEM certificate"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            pem.certificates,
            "holds a PEM certificate that does not parse",
        ),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            pem.private_key,
            "holds a PEM private key that does not parse",
        ),
        (b"\x00\x01binary DER\n", pem.private_key, "holds no PEM private key"),
    ],
)
def test_what_is_not_a_pem_file_of_its_kind_is_refused(
    tmp_path: Path, content: bytes, read: object, error: str
) -> None:
    path = _write(tmp_path, "file.pem", content)
    with pytest.raises(pem.PemError) as refused:
        read(path)  # type: ignore[operator]
    assert str(refused.value) == f"{path!r} {error}"


def test_a_file_that_cannot_be_read_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(_self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(pem.PemError) as refused:
        pem.certificates(str(tmp_path / "cert.pem"))
    assert str(refused.value) == f"cannot read {str(tmp_path / 'cert.pem')!r}: Permission denied"


def test_the_settings_name_the_variable_of_the_file_at_fault(
    tmp_path: Path, issued: trustme.LeafCert
) -> None:
    cert = _write(tmp_path, "cert.pem", issued.cert_chain_pems[0].bytes())
    key = _write(tmp_path, "key.pem", issued.private_key_pem.bytes())
    other_key = _write(tmp_path, "other.pem", trustme.CA().issue_cert("x").private_key_pem.bytes())
    ok = Settings.from_env({"ISALES_GRPC_TARGET_CA": cert})
    assert ok.grpc_target_tls is not None
    assert ok.grpc_target_tls.ca == cert
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {
                "ISALES_GRPC_TARGET_CA": cert,
                "ISALES_GRPC_TARGET_CERT": cert,
                "ISALES_GRPC_TARGET_KEY": other_key,
            }
        )
    assert str(refused.value) == (
        f"ISALES_GRPC_TARGET_KEY: {other_key!r} is not the private key of the certificate in "
        f"{cert!r} (ISALES_GRPC_TARGET_CERT)"
    )
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"ISALES_GRPC_TLS_CERT": cert, "ISALES_GRPC_TLS_KEY": str(tmp_path)})
    assert str(refused.value) == (
        f"ISALES_GRPC_TLS_KEY: {str(tmp_path)!r} is a directory, not a PEM file"
    )
    assert Settings.from_env({"ISALES_GRPC_TLS_CERT": cert, "ISALES_GRPC_TLS_KEY": key})
