"""`content-encoding` decoders for the encodings the client offers (gzip, deflate), fed piece by piece."""

from __future__ import annotations

import zlib

import httpx


class Decoder:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), incrementally."""

    __slots__ = ("_first", "_raw_fallback", "_zlib")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._zlib = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._first = True

    def decode(self, data: bytes) -> bytes:
        try:
            if self._first and self._raw_fallback:
                self._first = False
                try:
                    return self._zlib.decompress(data)
                except zlib.error:
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(data)
        except zlib.error as exc:
            raise httpx.DecodingError(f"invalid compressed body: {exc}") from exc

    def flush(self) -> bytes:
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"invalid compressed body: {exc}") from exc


def decoder_for(encoding: str) -> Decoder | None:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return Decoder(16 + zlib.MAX_WBITS, raw_fallback=False)
    if encoding == "deflate":
        return Decoder(zlib.MAX_WBITS, raw_fallback=True)
    return None  # identity (or an encoding we did not offer: passed through as it came)
