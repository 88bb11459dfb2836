"""Request ids: taken from the client's `x-request-id` when it is sane, generated otherwise."""

from __future__ import annotations

import os

_MAX_LENGTH = 128


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def accept_request_id(value: str | None) -> str:
    """The client's id if it is short printable ASCII without spaces (it ends up in logs and headers)."""
    if value and len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable() and " " not in value:
        return value
    return new_request_id()
