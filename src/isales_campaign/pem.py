"""PEM files checked before gRPC is given them: gRPC's own check comes only when a server
binds or a channel connects, and says what is wrong in lines of its own log, not to the
caller. `certificates`, `private_key` and `key_matches` raise `PemError` saying what is wrong
with a file, in a few words that follow its name."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"
_ENCRYPTED_KEY = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


class PemError(ValueError):
    """A PEM file that cannot be used; the message says why, after the file's path."""


def read(path: str) -> bytes:
    """The file's bytes; PemError when it cannot be read (a permission, a directory)."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise PemError(f"cannot read {path!r}: {error.strerror or error}") from None


def certificates(path: str) -> list[x509.Certificate]:
    """The certificates of a PEM file (a chain, or a CA bundle), in the file's order; at least
    one, or PemError."""
    data = read(path)
    if _CERTIFICATE not in data:
        found = " (it holds a private key)" if _PRIVATE_KEY in data else ""
        raise PemError(f"{path!r} holds no PEM certificate{found}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PemError(f"{path!r} holds a PEM certificate that does not parse") from None


def private_key(path: str) -> PrivateKeyTypes:
    """The unencrypted private key of a PEM file, or PemError."""
    data = read(path)
    encrypted = PemError(
        f"{path!r} holds an encrypted private key, and gRPC takes no passphrase: decrypt it "
        "(`openssl pkey -in KEY -out PLAIN`) into a file only the service's user can read"
    )
    if _ENCRYPTED_KEY in data:
        raise encrypted
    if _PRIVATE_KEY not in data:
        found = " (it holds a certificate)" if _CERTIFICATE in data else ""
        raise PemError(f"{path!r} holds no PEM private key{found}")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted in OpenSSL's legacy way ("Proc-Type: 4,ENCRYPTED")
        raise encrypted from None
    except (ValueError, UnsupportedAlgorithm):
        raise PemError(f"{path!r} holds a PEM private key that does not parse") from None


def key_matches(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether `key` is the private key of `certificate`'s public key."""
    encoding = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(encoding, spki) == key.public_key().public_bytes(
        encoding, spki
    )
