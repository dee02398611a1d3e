"""Request bodies read with a size limit, for the receivers that accept large uploads."""

from __future__ import annotations

from fastapi import Request

from mantissa.errors import IngestError, PayloadTooLarge


async def read_body(request: Request, limit: int, setting: str) -> bytes:
    """The raw body, refused as soon as it passes ``limit`` bytes (declared or streamed).

    ``setting`` names the config key of the limit in the error. A client that disconnects
    mid-body raises starlette's ``ClientDisconnect`` for the caller to answer.
    """
    too_large = f"request body over the {limit}-byte limit ({setting})"
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size_declared = int(declared)
        except ValueError:
            raise IngestError("invalid Content-Length") from None
        if size_declared > limit:
            raise PayloadTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)
