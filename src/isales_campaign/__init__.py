"""isales-campaign: outbound-campaign configuration over gRPC.

A gateway keeps the vendor's legacy REST API working for existing clients.
"""

__version__ = "0.1.0"
