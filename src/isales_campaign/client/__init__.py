"""Client side of the legacy REST API: auth-v2 signing and a small HTTP client."""

from isales_campaign.client.credentials import Credentials, CredentialsError, from_seed_file
from isales_campaign.client.http import LegacyClient, LegacyResponse, sign_request
from isales_campaign.legacy.auth_v2 import authorization, canonical_request, signing_key

__all__ = [
    "Credentials",
    "CredentialsError",
    "LegacyClient",
    "LegacyResponse",
    "authorization",
    "canonical_request",
    "from_seed_file",
    "sign_request",
    "signing_key",
]
