"""What the provider simulator does for one request: the `Behaviour` value object and its `x_sim` overrides.

A behaviour is plain data so that tests can build it in Python (`sim.enqueue(Behaviour(status=503))`) or
send it through the gateway inside the request body (`"x_sim": {"status": 503}`); both paths end in the
same frozen object, read by `tests.support.simulator` when it answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ToolUse = Mapping[str, Any]  # {"name": str, "input": {...}} (input optional, default {})


class InvalidBehaviour(ValueError):
    """An `x_sim` override names an unknown field or gives a value of the wrong type."""


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request. The defaults give a quick, well-formed OpenAI answer.

    Event counts (`pause_after`, `drop_after`, `hang_after`, `malformed_after`, `error_after`) count the
    events of a stream. Chat: the role chunk is event 1, then one per thinking piece (`reasoning_content`),
    one per content token, per tool call its head and its argument fragments, the finish chunk, the usage
    chunk (when usage is sent) and `data: [DONE]`. Messages: `message_start` is event 1, `ping` event 2,
    then each block's start, deltas and stop, `message_delta` and `message_stop`. `0` means "right after
    the response head".
    """

    # The response head.
    status: int = 200  # non-200: the API's error body (OpenAI or Anthropic), even for stream requests
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers, e.g. Retry-After
    error_message: str | None = None  # message of the error body (default: says what was injected)
    error_type: str | None = None  # the error body's `type` (default: the API's type for the status)
    body: str | None = None  # raw response body instead of the JSON one (any status; e.g. "{not json")
    head_delay: float = 0.0  # seconds before the response head is written

    # The content of a successful answer.
    tokens: int = 5  # content deltas: "word0 ", "word1 ", ...
    text: str | None = None  # explicit content instead, split into tokens at word boundaries
    thinking: str | None = None  # first: `reasoning_content` deltas (chat), a thinking block (messages)
    tool_use: ToolUse | list[ToolUse] | None = None  # {"name": ..., "input": {...}}: answer with tool calls
    finish_reason: str = "stop"  # chat; messages maps it (stop -> end_turn, length -> max_tokens, ...)
    usage: bool | None = None  # stream usage chunk: None = as stream_options.include_usage asks
    done: bool = True  # end the stream with `data: [DONE]`
    stamp: bool = True  # put `"x_sent_at": time.time()` in every chunk, stamped just before its write

    # Timing of a stream.
    token_delay: float = 0.0  # seconds between two consecutive writes of events
    pause_after: int | None = None  # pause `pause` seconds after this many events
    pause: float = 0.0

    # Framing of a stream (or of a JSON body, for `split`).
    split: int | None = None  # write every event in pieces of this many bytes, draining between writes
    split_delay: float = 0.0  # seconds between two pieces, so that the reader sees them one by one
    coalesce: int = 1  # write this many events in one write
    crlf: bool = False  # end SSE lines with \r\n instead of \n
    ping_every: int = 0  # write an SSE comment `: ping` before every n-th event (0 = never)
    multiline_data: bool = False  # spread each JSON payload over several `data:` lines
    chunked: bool = True  # Transfer-Encoding: chunked; False = close-delimited body (Connection: close)

    # Faults.
    drop_before_head: bool = False  # close the connection without answering
    drop_after: int | None = None  # close the connection after this many events (JSON: mid-body)
    reset: bool = False  # drop with a TCP reset (SO_LINGER 0) instead of a clean close
    malformed_after: int | None = None  # write one malformed `data:` event after this many events
    hang: bool = False  # never answer; hold the connection until the client closes it
    hang_after: int | None = None  # stop writing after this many events, keep the connection open
    error_after: int | None = None  # write an error event after this many events, then end the stream

    def __post_init__(self) -> None:
        if self.split is not None and self.split < 1:
            raise InvalidBehaviour("split must be at least 1 byte")
        if self.coalesce < 1:
            raise InvalidBehaviour("coalesce must be at least 1 event")
        if not 100 <= self.status <= 599:
            raise InvalidBehaviour(f"status {self.status} is not an HTTP status")
        _check_tool_use(self.tool_use)

    @property
    def tool_calls(self) -> list[ToolUse]:
        """`tool_use` as a list (empty when the answer is text only)."""
        if self.tool_use is None:
            return []
        return list(self.tool_use) if isinstance(self.tool_use, list) else [self.tool_use]

    def with_overrides(self, overrides: Mapping[str, Any]) -> Behaviour:
        """This behaviour with the fields of an `x_sim` object replaced; raises `InvalidBehaviour`."""
        if not isinstance(overrides, Mapping):
            raise InvalidBehaviour(f"x_sim must be an object, got {type(overrides).__name__}")
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in known:
                raise InvalidBehaviour(f"x_sim: unknown field {name!r}; known: {', '.join(sorted(known))}")
            changes[name] = _checked(name, value, getattr(self, name))
        return dataclasses.replace(self, **changes)


_OPTIONAL_INT = {"pause_after", "drop_after", "hang_after", "malformed_after", "error_after", "split"}
_OPTIONAL_STR = {"error_message", "error_type", "body", "text", "thinking"}


def _check_tool_use(value: Any) -> None:
    calls = value if isinstance(value, list) else [value] if value is not None else []
    for call in calls:
        if (
            not isinstance(call, Mapping)
            or not isinstance(call.get("name"), str)
            or not isinstance(call.get("input", {}), Mapping)
            or set(call) - {"name", "input"}
        ):
            raise InvalidBehaviour('tool_use must be {"name": str, "input": {...}} or a list of them')


def _checked(name: str, value: Any, current: Any) -> Any:
    """Check one override against the type of its field (JSON gives us ints, floats, bools, strings)."""
    if value is None and (name in _OPTIONAL_INT or name in _OPTIONAL_STR or name == "usage"):
        return None
    if name == "tool_use":
        _check_tool_use(value)
        return value
    if name == "headers":
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidBehaviour("x_sim.headers must be an object of strings")
        return dict(value)
    if name in _OPTIONAL_STR or isinstance(current, str):
        if not isinstance(value, str):
            raise InvalidBehaviour(f"x_sim.{name} must be a string")
        return value
    if isinstance(current, bool) or name == "usage":
        if not isinstance(value, bool):
            raise InvalidBehaviour(f"x_sim.{name} must be a boolean")
        return value
    if name in _OPTIONAL_INT or isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidBehaviour(f"x_sim.{name} must be a non-negative integer")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidBehaviour(f"x_sim.{name} must be a non-negative number")
    return float(value)
