"""How large an upstream's response head may be, and the exact check of a head that came in large reads.

64 KiB for the whole head (interim 1xx heads before it included, so endless Early Hints are bounded too),
16 KiB for one line of it. For comparison: nginx as a gateway refuses an upstream head over
`proxy_buffer_size` (4 or 8 KiB) with 502 "upstream sent too big header"; h11 (httpx) and Node bound a
whole head at 16 KiB; curl allows 100 KiB a line. LLM providers send 1-3 KiB. The total bounds what we
buffer; the line limit refuses the one runaway header (a cookie or a link list gone wrong) that a total
four times larger would let through.

The connection counts bytes per read, not per header, so a typical answer pays nothing: while the head is
incomplete it keeps the reads; a head still incomplete past `MAX_HEAD` bytes is refused, and a head
that completed in reads of more than `MAX_LINE` bytes in all (the only case where a limit could be broken
unseen) is measured exactly here, once.
"""

from __future__ import annotations

import re

import httpx

MAX_HEAD = 64 * 1024
MAX_LINE = 16 * 1024

# The empty line that ends a head; a bare LF is accepted as a line end (RFC 9112 2.2).
_END_OF_HEAD = re.compile(rb"\n\r?\n")


class HeadTooLarge(httpx.RemoteProtocolError):
    """The upstream's response head (or trailer section) broke a limit of this client."""


def head_too_large(part: str = "response head") -> HeadTooLarge:
    return HeadTooLarge(f"the upstream's {part} is over {MAX_HEAD // 1024} KiB")


def find_head(data: bytes, heads: int) -> tuple[int, int] | None:
    """Start and end offsets of the `heads`-th head in `data` (the 1xx heads before it skipped), or None
    if it has not ended yet."""
    start = end = 0
    for _ in range(heads):
        match = _END_OF_HEAD.search(data, end)
        if match is None:
            return None
        start, end = end, match.end()
    return start, end


def check_head(reads: list[bytes], heads: int) -> None:
    """Raise `HeadTooLarge` if the heads in `reads` (`heads` of them: 1xx ones, then the answer's, which
    has ended) are over `MAX_HEAD` in all or have a line over `MAX_LINE`."""
    data = b"".join(reads)
    bounds = find_head(data, heads)
    end = len(data) if bounds is None else bounds[1]
    if end > MAX_HEAD:
        raise head_too_large()
    if max(map(len, data[:end].split(b"\n"))) > MAX_LINE + 1:  # + 1: the CR of a CRLF
        raise HeadTooLarge(f"a line of the upstream's response head is over {MAX_LINE // 1024} KiB")


class TrailerSink(list[tuple[bytes, bytes]]):
    """Where trailer fields go once the head is in: counted against `MAX_HEAD`, not kept (nothing in
    the gateway reads trailers)."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        super().__init__()
        self._size = 0

    def reset(self) -> None:
        self._size = 0

    def append(self, field: tuple[bytes, bytes]) -> None:
        self._size += len(field[0]) + len(field[1]) + 4
        if self._size > MAX_HEAD:
            raise head_too_large("trailer section")
