"""Request ids: taken from the client's `x-request-id` when it is sane, generated otherwise.

The id of the request being served lives in a context variable, bound once at the start of the chat
handler. asyncio runs each request in its own task with its own copy of the context, and the streamers
(and the relay's close path, which logs the stream summary and runs the observers) run in that same task
or in tasks it starts, which copy the context: every log line a request causes can read its id, with no
argument threaded through the layers. A ContextVar is per task, not shared state; module level is where
the standard library expects it to be created.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

_MAX_LENGTH = 128

current_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def accept_request_id(value: str | None) -> str:
    """The client's id if it is short printable ASCII without spaces (it ends up in logs and headers)."""
    if value and len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable() and " " not in value:
        return value
    return new_request_id()


def bind_request_id(request_id: str) -> None:
    """Make `request_id` the id of every log line written from here on in this task (and its children)."""
    current_request_id.set(request_id)
