"""isales-campaign: outbound-campaign configuration over gRPC, with a gateway for the legacy REST API."""

__version__ = "0.1.0"
