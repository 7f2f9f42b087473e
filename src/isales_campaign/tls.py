"""gRPC credentials from the PEM files named in the settings."""

from __future__ import annotations

from pathlib import Path

import grpc

from isales_campaign.config import TlsFiles


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """TLS for the server; with `files.ca`, clients must present a certificate it signed."""
    return grpc.ssl_server_credentials(
        [(_read(files.key), _read(files.cert))],
        root_certificates=_read(files.ca) if files.ca else None,
        require_client_auth=bool(files.ca),
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """TLS for a client that trusts `files.ca`, presenting `files.cert` if there is one."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(files.ca),
        private_key=_read(files.key) if files.key else None,
        certificate_chain=_read(files.cert) if files.cert else None,
    )


def _read(path: str) -> bytes:
    return Path(path).read_bytes()
