"""What the streaming tests share: a route file for the simulator, a raw stream reader and a normaliser.

The reader keeps every piece of the response body as the client's socket read it, with the time it
arrived, so tests can see how the gateway framed and timed its writes (not only which events came).
"""

from __future__ import annotations

import re
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.harness import CLIENT_TIMEOUT
from tests.support.sse_reader import SSEEvent, parse_sse

MESSAGES = [{"role": "user", "content": "say something"}]


def streaming_routes_yaml(base_url: str) -> str:
    """Provider `sim` (roomy pool, no health checks: they would open connections of their own), provider
    `sim-short` (0.5 s read timeout), provider `sim-no-usage` (`stream_usage: false`), and routes
    `sim-model` (default streamer: asgi), `sim-starlette` (`streaming: starlette`), `sim-short` and
    `sim-no-usage`, all answered as upstream model `sim-model`."""
    return textwrap.dedent(
        f"""\
        providers:
          sim:
            type: openai
            base_url: {base_url}
            api_key: ${{SIM_API_KEY:-sim-key}}
            pool: {{max_connections: 400, max_keepalive_connections: 50}}
            health_check: {{enabled: false}}
          sim-short:
            type: openai
            base_url: {base_url}
            api_key: ${{SIM_API_KEY:-sim-key}}
            timeouts: {{read: 0.5}}
            health_check: {{enabled: false}}
          sim-no-usage:
            type: openai
            base_url: {base_url}
            api_key: ${{SIM_API_KEY:-sim-key}}
            stream_usage: false
            health_check: {{enabled: false}}
        routes:
          sim-model:
            targets: [{{provider: sim}}]
          sim-starlette:
            streaming: starlette
            targets: [{{provider: sim, model: sim-model}}]
          sim-short:
            targets: [{{provider: sim-short, model: sim-model}}]
          sim-no-usage:
            targets: [{{provider: sim-no-usage, model: sim-model}}]
        """
    )


def stream_body(model: str = "sim-model", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": True, **fields}


@dataclass
class StreamResult:
    status: int
    headers: httpx.Headers
    started: float  # time.time() when the request was sent
    pieces: list[tuple[float, bytes]] = field(default_factory=list)  # (time.time(), bytes) per socket read

    @property
    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)

    @property
    def events(self) -> list[SSEEvent]:
        return parse_sse(self.body.decode())[0]

    @property
    def streamer(self) -> str | None:
        return self.headers.get("x-gateway-streamer")

    def arrival_times(self) -> list[float]:
        """When each event's last byte arrived (one entry per event, in order)."""
        times: list[float] = []
        seen = b""
        for at, piece in self.pieces:
            seen += piece
            while len(times) < seen.count(b"\n\n"):
                times.append(at)
        return times


def stream(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> StreamResult:
    """POST `body` and read the response as it comes, one socket read per piece."""
    started = time.time()
    with client.stream("POST", path, json=body, headers=headers, timeout=CLIENT_TIMEOUT) as response:
        result = StreamResult(response.status_code, response.headers, started)
        for piece in response.iter_raw():
            result.pieces.append((time.time(), piece))
    return result


_VARIABLE = [
    (re.compile(rb"chatcmpl-sim-\d+"), b"chatcmpl-sim-N"),
    (re.compile(rb'"created": \d+'), b'"created": 0'),
    (re.compile(rb'"x_sent_at": [0-9.e+-]+'), b'"x_sent_at": 0'),
]


def normalised(body: bytes) -> bytes:
    """The body with what differs between two identical requests (id, created, send stamps) blanked."""
    for pattern, replacement in _VARIABLE:
        body = pattern.sub(replacement, body)
    return body
