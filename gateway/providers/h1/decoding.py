"""`content-encoding` decoders for the encodings the client offers (gzip, deflate), fed piece by piece."""

from __future__ import annotations

import zlib

import httpx


def _is_zlib_header(data: bytes) -> bool:
    """RFC 1950's two header bytes: compression method 8 (deflate), and a check that makes them a
    multiple of 31; the test zlib itself applies first."""
    return data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0


class Decoder:
    """gzip, or deflate: zlib-wrapped as RFC 9110 says, or raw as some servers send it, told apart by the
    first two bytes (kept until both are in: a body may arrive a byte at a time)."""

    __slots__ = ("_pending", "_sniffing", "_zlib")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._zlib = zlib.decompressobj(wbits)
        self._sniffing = raw_fallback
        self._pending = b""

    def _sniff(self, data: bytes) -> bytes:
        data = self._pending + data
        if len(data) < 2:
            self._pending = data
            return b""
        self._sniffing, self._pending = False, b""
        if not _is_zlib_header(data):
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        return data

    def decode(self, data: bytes) -> bytes:
        if self._sniffing:
            data = self._sniff(data)
        try:
            return self._zlib.decompress(data)
        except zlib.error as exc:
            raise httpx.DecodingError(f"invalid compressed body: {exc}") from exc

    def flush(self) -> bytes:
        try:
            # A body of one byte is still held: no deflate stream of either kind is that short.
            if self._sniffing and self._pending:
                raise zlib.error("a deflate body of one byte")
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
