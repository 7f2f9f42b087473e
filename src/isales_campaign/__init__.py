"""isales-campaign: outbound-campaign configuration over gRPC.

A gateway keeps the vendor's legacy REST API working for existing clients.
"""

from importlib import metadata

__version__ = "0.1.0"


def release() -> str:
    """The installed release (`isales --version`, `isales_build_info`); "unknown" when run
    from a source tree that was never installed."""
    try:
        return metadata.version("isales-campaign")
    except metadata.PackageNotFoundError:
        return "unknown"
