"""How the provider simulator writes one answer, fault by fault, and the record tests read afterwards.

`answer()` plays a `Behaviour` on a `Connection`: hang, drop, delay the head, then an error body, a JSON
body or an SSE stream, with the scripted splits, pauses and faults, in the words of a `Dialect` (chat,
Anthropic messages or OpenAI Responses). `tests.support.simulator` owns the server and decides which
behaviour and dialect apply; this module only writes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support import simulator_payloads as payloads
from tests.support.simulator_behaviour import Behaviour
from tests.support.simulator_http import Connection, PeerClosed
from tests.support.simulator_payloads import CHAT, Dialect, Event


class Dropped(Exception):
    """The simulator dropped the connection on purpose."""


class _Ended(Exception):
    """The stream ends early, as scripted (after an error event)."""


@dataclass
class RecordedRequest:
    """One request as the simulator received it, and how its answer went (updated while answering)."""

    method: str
    path: str  # path and query as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any  # the parsed body, or None
    connection_id: int  # 1-based number of the connection it came on (keep-alive reuse shows here)
    number: int  # 1-based number of the request since the simulator started
    received_at: float  # time.time()
    behaviour: Behaviour | None = None
    outcome: str = "pending"  # "completed", "dropped", "client_closed" or "cancelled"
    sent_at: list[float] = field(default_factory=list)  # time.time() of every stream event written

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and self.json.get("stream") is True


async def answer(
    connection: Connection,
    behaviour: Behaviour,
    record: RecordedRequest,
    dialect: Dialect = CHAT,
    *,
    fixed: dict | None = None,
) -> bool:
    """Answer a generation request in `dialect`, or with `fixed` that JSON body (a model list, a token
    count); return whether the connection stays open."""
    if behaviour.hang:
        await connection.wait_for_peer_close()
        raise PeerClosed
    if behaviour.drop_before_head:
        connection.abort(reset=behaviour.reset)
        raise Dropped
    await connection.sleep(behaviour.head_delay)
    if behaviour.status != 200:
        message = behaviour.error_message or f"simulated {behaviour.status} from the provider simulator"
        body = dialect.error_body(behaviour.status, message, behaviour.error_type)
        return await _send_json(connection, behaviour, body)
    if fixed is not None:
        return await _send_json(connection, behaviour, fixed)
    request_json = record.json if isinstance(record.json, dict) else {}
    if record.stream:
        events = dialect.stream(record.number, behaviour, request_json)
        return await _send_stream(connection, behaviour, record, dialect, events)
    return await _send_json(connection, behaviour, dialect.completion(record.number, behaviour, request_json))


async def send_error(
    connection: Connection, status: int, message: str, dialect: Dialect = CHAT, *, keep_alive: bool = True
) -> bool:
    """An error answer the simulator itself decided on (bad request, unknown path, bad key)."""
    body = dialect.error_body(status, message, None)
    await connection.send_raw(json_response(status, body, keep_alive=keep_alive))
    return keep_alive


async def _send_json(connection: Connection, behaviour: Behaviour, body: dict) -> bool:
    payload = behaviour.body.encode() if behaviour.body is not None else json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
    await connection.send_raw(response_head(behaviour.status, headers + list(behaviour.headers.items())))
    if behaviour.drop_after is not None:
        await connection.send(
            payload[: len(payload) // 2], split=behaviour.split, delay=behaviour.split_delay
        )
        connection.abort(reset=behaviour.reset)
        raise Dropped
    await connection.send(payload, split=behaviour.split, delay=behaviour.split_delay)
    return True


async def _send_stream(
    connection: Connection,
    behaviour: Behaviour,
    record: RecordedRequest,
    dialect: Dialect,
    events: list[Event],
) -> bool:
    headers = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
    headers.append(("transfer-encoding", "chunked") if behaviour.chunked else ("connection", "close"))
    await connection.send_raw(response_head(200, headers + list(behaviour.headers.items())))

    async def write(data: bytes) -> None:
        await connection.send(
            data, split=behaviour.split, delay=behaviour.split_delay, chunked=behaviour.chunked
        )

    async def after(count: int) -> None:
        """The scripted faults that happen once `count` events are written."""
        if behaviour.malformed_after == count:
            await write(dialect.encode_malformed(behaviour))
        if behaviour.error_after == count:
            request = record.json if isinstance(record.json, dict) else {}
            await write(dialect.encode_error(behaviour, record.number, request, count))
            raise _Ended
        if behaviour.drop_after == count:
            connection.abort(reset=behaviour.reset)
            raise Dropped
        if behaviour.hang_after == count:
            await connection.wait_for_peer_close()
            raise PeerClosed
        if behaviour.pause_after == count:
            await connection.sleep(behaviour.pause)

    must_flush = {
        behaviour.pause_after,
        behaviour.drop_after,
        behaviour.hang_after,
        behaviour.malformed_after,
        behaviour.error_after,
    }
    try:
        await after(0)
        pending = bytearray()
        in_pending = 0
        for count, event in enumerate(events, start=1):
            if behaviour.ping_every and (count - 1) % behaviour.ping_every == 0:
                pending += dialect.encode_ping(behaviour)
            now = time.time()
            pending += dialect.encode_event(event, behaviour, now)
            record.sent_at.append(now)
            in_pending += 1
            flushed = in_pending >= behaviour.coalesce or count in must_flush or count == len(events)
            if flushed:
                await write(bytes(pending))
                pending.clear()
                in_pending = 0
            await after(count)
            if flushed and count < len(events):
                await connection.sleep(behaviour.token_delay)
    except _Ended:
        pass
    if behaviour.chunked:
        await connection.send_raw(b"0\r\n\r\n")
        return True
    return False  # a close-delimited body ends when the connection closes


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {payloads.reason_phrase(status)}", "server: provider-simulator"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(status: int, body: dict, *, keep_alive: bool = True) -> bytes:
    payload = json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
    if not keep_alive:
        headers.append(("connection", "close"))
    return response_head(status, headers) + payload
