"""What a stream handed its client, kept while prices are configured, so that a stream cut before its
usage arrived can be charged by what it streamed (`translate/streamed_tokens.py` reads it then).

Per piece (one upstream read's frames) the relay appends a reference to bytes it has already built: no
copy, no parsing. Bounded: past `STREAMED_LIMIT` bytes nothing more is kept, and the rest of the stream
is estimated from the kept part's tokens per event (`events_kept`). A stream that ends normally, or once
its finish callbacks have run, lets go of it.
"""

from __future__ import annotations

STREAMED_LIMIT = 1024 * 1024  # bytes of client frames kept per stream


class StreamedPieces:
    __slots__ = ("events_kept", "full", "limit", "pieces", "size")

    def __init__(self, limit: int = STREAMED_LIMIT) -> None:
        self.pieces: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.events_kept = 0  # the stream's event count when the last kept piece went out
        self.full = False  # a piece did not fit: the events after `events_kept` were not kept

    def keep(self, piece: bytes, events: int) -> None:
        """`piece` goes to the client now; `events`: the stream's events counted so far, its own included."""
        if self.full:
            return
        size = self.size + len(piece)
        if size > self.limit:
            self.full = True
            return
        self.pieces.append(piece)
        self.size = size
        self.events_kept = events

    def drop(self) -> None:
        """Nothing will be estimated from them (the stream ended normally): let the bytes go now."""
        self.pieces = []
        self.size = 0
