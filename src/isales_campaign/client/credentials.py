"""Access key / secret key pairs, given directly or read from an `isales seed` TOML file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CredentialsError(ValueError):
    """No usable key pair was found."""


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"Credentials(access_key={self.access_key!r}, secret_key='***')"


def from_seed_file(path: Path, vdn_id: int) -> Credentials:
    """The first app key of VDN `vdn_id` in a seed file (`[[tenants]]` / `[[tenants.app_keys]]`)."""
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CredentialsError(f"{path}: {error}") from None
    tenants = document.get("tenants", [])
    for tenant in tenants if isinstance(tenants, list) else []:
        if not isinstance(tenant, dict) or tenant.get("vdn_id") != vdn_id:
            continue
        for key in tenant.get("app_keys", []):
            if isinstance(key, dict):
                access_key, secret_key = key.get("access_key"), key.get("secret_key")
                if isinstance(access_key, str) and isinstance(secret_key, str):
                    return Credentials(access_key, secret_key)
    raise CredentialsError(f"{path}: no app key for VDN {vdn_id}")
