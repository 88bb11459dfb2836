"""Framing faults llhttp does not decide as we do: a Content-Length given twice, a transfer coding other
than chunked. Off the hot path: called once per head with a Transfer-Encoding, or after llhttp refused one."""

from __future__ import annotations

import httpx


def merge_content_lengths(head: bytes) -> bytes | None:
    """`head` with its Content-Length fields (several, or one listing a value twice) made one, as RFC 9110
    8.6 allows a recipient when every value is the same (h11 does so; llhttp refuses any duplicate). None
    when the values differ or are not a number: no way to tell where the body ends."""
    lines = head.split(b"\n")
    values: set[bytes] = set()
    first: int | None = None
    kept: list[bytes] = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon and name.lower() == b"content-length":
            values.update(part.strip() for part in value.rstrip(b"\r").split(b","))
            if first is not None:
                continue
            first = len(kept)
        kept.append(line)
    if first is None or len(values) != 1:
        return None
    value = values.pop()
    if not value.isdigit():
        return None
    kept[first] = b"content-length: " + value + (b"\r" if kept[first].endswith(b"\r") else b"")
    return b"\n".join(kept)


def check_transfer_coding(transfer_encoding: str) -> None:
    """Only `chunked` is understood (we send no TE header, so no server may apply another: RFC 9112 6.1
    and 7.4). Bytes in another transfer coding would reach the caller still encoded, so refuse them, as
    h11 does, rather than read a body that is not the content."""
    if transfer_encoding.strip().lower() != "chunked":
        raise httpx.RemoteProtocolError(
            f"the upstream answered with Transfer-Encoding: {transfer_encoding} (only chunked is understood)"
        )
