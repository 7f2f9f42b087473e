"""The legacy REST gateway: auth-v2, legacy JSON <-> gRPC, the legacy envelope.

It talks to the service over gRPC only and never imports `isales_campaign.service`.
"""

from isales_campaign.gateway.app import create_app
from isales_campaign.gateway.translate import translate_campaign

__all__ = ["create_app", "translate_campaign"]
