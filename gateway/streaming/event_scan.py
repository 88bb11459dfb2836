"""Looking into SSE event bytes without parsing JSON: the relay's per-chunk work, kept to byte searches."""

from __future__ import annotations


def last_event(payload: bytes) -> bytes:
    """The last event's data of a passed-through block (`data: {...}\\n\\n` events); a payload as it is."""
    if not payload.endswith(b"\n\n"):
        return payload
    block = payload[:-2]
    return block[block.rfind(b"\n\ndata: ") + 8 :] if b"\n\n" in block else block[6:]


def carries_usage(payload: bytes) -> bool:
    """Whether a `"usage"` key with a non-null value is in the event, without parsing the JSON."""
    return usage_at(payload) >= 0


def usage_at(data: bytes) -> int:
    """Where the first `"usage"` key with a non-null value is in `data`, or -1; no JSON parsing.

    Inside JSON strings quotes are escaped, so a bare `"usage"` followed by `:` can only be a key.
    """
    at = data.find(b'"usage"')
    while at >= 0:
        rest = data[at + 7 : at + 48].lstrip()
        if rest[:1] == b":" and not rest[1:].lstrip().startswith(b"null"):
            return at
        at = data.find(b'"usage"', at + 7)
    return -1
