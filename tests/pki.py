"""Certificates made for a test (trustme), written as the PEM files the settings name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

from isales_campaign.config import TlsFiles


@dataclass(frozen=True)
class Pki:
    """A server CA with a certificate for localhost, and a client CA with one client."""

    #: The server's files, asking for client certificates of the client CA.
    server: TlsFiles
    #: A client's files, trusting the server CA.
    client: TlsFiles
    #: A client whose certificate comes from a CA the server does not know.
    stranger: TlsFiles


def write_tls_files(
    directory: Path, name: str, ca: trustme.CA, peer_ca: trustme.CA, *hosts: str
) -> TlsFiles:
    """A certificate for `hosts` from `ca`, and trust in `peer_ca`, as PEM files."""
    issued = ca.issue_cert(*hosts)
    files = TlsFiles(
        cert=str(directory / f"{name}.pem"),
        key=str(directory / f"{name}-key.pem"),
        ca=str(directory / f"{name}-trusts.pem"),
    )
    issued.cert_chain_pems[0].write_to_path(files.cert)
    issued.private_key_pem.write_to_path(files.key)
    peer_ca.cert_pem.write_to_path(files.ca)
    return files


def make_pki(directory: Path) -> Pki:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    return Pki(
        server=write_tls_files(directory, "server", server_ca, client_ca, "localhost", "127.0.0.1"),
        client=write_tls_files(directory, "client", client_ca, server_ca, "campaign-gateway"),
        stranger=write_tls_files(
            directory, "stranger", trustme.CA(), server_ca, "campaign-gateway"
        ),
    )
