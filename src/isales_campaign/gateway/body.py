"""Reading the request body within a size limit, and checking its media type."""

from __future__ import annotations

from starlette.requests import Request

from isales_campaign.gateway.errors import BodyTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; BodyTooLarge as soon as the declared or received size passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    # Counted while streaming as well: a chunked body declares no length.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_json_utf8(content_type: str | None) -> bool:
    """`application/json`, with no charset (UTF-8 is the default) or charset UTF-8."""
    if not content_type:
        return False
    media_type, *params = content_type.split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True
