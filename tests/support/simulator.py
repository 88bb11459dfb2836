"""A provider simulator speaking OpenAI chat, OpenAI Responses and Anthropic Messages: a real HTTP/1.1 server
on loopback, with fault injection.

It runs on raw asyncio streams (every byte write is ours: see `tests.support.simulator_http`) in a background
thread with its own event loop, so synchronous tests, a gateway running under uvicorn in another thread,
or a gateway subprocess can all talk to it over a real socket.

Usage::

    with ProviderSimulator() as sim:            # thread + server started; stopped (and checked) on exit
        sim.base_url                            # "http://127.0.0.1:PORT/v1"  (sim.root_url: without /v1)
        sim.enqueue(Behaviour(status=503, headers={"Retry-After": "1"}), Behaviour(token_delay=0.05))
        ...                                     # each chat, responses, messages or count_tokens request
                                                # takes the next queued behaviour (one shared queue, in
                                                # arrival order), then `sim.default` (settable)
        sim.enqueue_models(...), sim.models_default   # the same for GET /models (health checks)
        sim.requests                            # list[RecordedRequest] (snapshot; see sim.chat_requests,
                                                # sim.responses_requests, sim.messages_requests)
        sim.open_connections, sim.total_connections, sim.aborted_streams
        sim.wait_for(lambda: sim.open_connections == 0, timeout=5)   # raises TimeoutError

Endpoints (with or without the `/v1` prefix): `POST /chat/completions` answers a `chat.completion`, or
with `"stream": true` an SSE stream of `chat.completion.chunk`s (role delta, one delta per token, the
finish chunk, a `choices: []` usage chunk when `stream_options.include_usage`, then `data: [DONE]`) over
chunked transfer-encoding; `GET /models` answers the model list (scripted apart from chat, so a
gateway's background health checks never eat the chat queue). Every chunk carries `"x_sent_at"`, the
`time.time()` at which the simulator wrote it; `RecordedRequest.sent_at` keeps the same stamps.

`POST /messages` (query allowed, e.g. `?beta=true`) answers Anthropic Messages: a `Message`, or with
`"stream": true` Anthropic's named events (message_start, ping, content blocks, message_delta,
message_stop; see `tests.support.simulator_anthropic_payloads`), with the same words, faults and
splits; `POST /messages/count_tokens` answers `{"input_tokens": N}`. Every error on these paths has
Anthropic's shape `{"type": "error", "error": {"type", "message"}}` with the type of its status.

`POST /responses` answers OpenAI Responses: a `response` object, or with `"stream": true` OpenAI's named
events (response.created ... response.completed, with reasoning, message and function_call items; see
`tests.support.simulator_responses_payloads`), with the same words, faults and splits; `error_after`
writes `response.failed` there. Errors have OpenAI's shape, and the key is a Bearer token, as for chat.

Per request, a body field `"x_sim": {...}` overrides fields of the behaviour (the gateway forwards
unknown fields upstream), e.g. `{"x_sim": {"tokens": 3, "split": 1}}` (with the openai SDK:
`extra_body={"x_sim": {...}}`); an unknown field answers 400.
`Behaviour` (tests.support.simulator_behaviour) lists every knob: status/headers/body/error_type,
head_delay, tokens/text, thinking, tool_use (chat tool_calls or Anthropic tool_use blocks), token_delay,
pause_after+pause, split(+split_delay), coalesce, crlf, ping_every, multiline_data, chunked,
drop_before_head, drop_after(+reset), malformed_after, error_after (an error event, then the stream
ends), hang, hang_after.

`RecordedRequest.outcome` tells how each answer ended: "pending" (still answering), "completed",
"dropped" (by the simulator, as scripted), "client_closed" (the client went away first; for stream
requests this also counts in `aborted_streams`) or "cancelled" (the simulator stopped).
With `api_key=...`, chat and model requests without `Authorization: Bearer <key>` get a 401; messages
requests need `x-api-key: <key>` (or that Bearer header: anthropic-sdk-python 2.x sends its `api_key` so).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from tests.support import simulator_anthropic_payloads as anthropic
from tests.support.simulator_answers import Dropped, RecordedRequest, answer, send_error
from tests.support.simulator_behaviour import Behaviour, InvalidBehaviour
from tests.support.simulator_http import BadRequest, Connection, PeerClosed, Request
from tests.support.simulator_payloads import CHAT, Dialect, model_list
from tests.support.simulator_responses_payloads import RESPONSES

# (method, path without /v1) -> the dialect of its answers and errors
_ROUTES: dict[tuple[str, str], Dialect] = {
    ("POST", "/chat/completions"): CHAT,
    ("POST", "/responses"): RESPONSES,
    ("GET", "/models"): CHAT,
    ("POST", "/messages"): anthropic.MESSAGES,
    ("POST", "/messages/count_tokens"): anthropic.MESSAGES,
}

__all__ = ["Behaviour", "ProviderSimulator", "RecordedRequest", "SimulatorError"]


class SimulatorError(RuntimeError):
    """The simulator itself failed (a bug in the test infrastructure, not in the gateway)."""


class ProviderSimulator:
    def __init__(
        self,
        *,
        models: Iterable[str] = ("sim-model",),
        api_key: str | None = None,
        default: Behaviour | None = None,
    ) -> None:
        self.models = tuple(models)
        self.api_key = api_key
        self._lock = threading.Lock()
        self._default = default or Behaviour()
        self._models_default = Behaviour()
        self._chat_queue: deque[Behaviour] = deque()
        self._models_queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._open = 0
        self._total = 0
        self._aborted = 0
        self._request_count = 0
        self._errors: list[BaseException] = []
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # touched on the simulator's loop only
        self.port = 0

    # Lifecycle.

    def __enter__(self) -> ProviderSimulator:
        self.start()
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.stop(check=exc_type is None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="provider-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise SimulatorError(f"simulator did not start: {self._errors!r}")

    def stop(self, *, check: bool = True) -> None:
        """Stop the server, cancel answers in progress; with `check`, raise if the simulator crashed."""
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            if self._thread.is_alive():
                raise SimulatorError("simulator thread did not stop within 10s")
        if check and self._errors:
            raise SimulatorError(f"simulator failed: {self._errors!r}") from self._errors[0]

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    # The test thread's side.

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def default(self) -> Behaviour:
        return self._default

    @default.setter
    def default(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._default = behaviour

    @property
    def models_default(self) -> Behaviour:
        """The behaviour of `GET /models` when its queue is empty (apart from `default`, so that scripting
        chat answers does not change what a gateway's health checks see)."""
        return self._models_default

    @models_default.setter
    def models_default(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._models_default = behaviour

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Script the next chat, responses, messages and count_tokens requests (one queue for all, taken
        in order of arrival): one behaviour each, in order, then `default` again."""
        with self._lock:
            self._chat_queue.extend(behaviours)

    def enqueue_models(self, *behaviours: Behaviour) -> None:
        """Script the next `GET /models` requests (status, headers, body, delays, drop and hang apply)."""
        with self._lock:
            self._models_queue.extend(behaviours)

    @property
    def queued(self) -> int:
        """Behaviours of `enqueue` not consumed yet."""
        with self._lock:
            return len(self._chat_queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.split("?")[0].endswith("/chat/completions")]

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """`POST /v1/responses` requests; `.body` holds the bytes as received, `.headers` the headers."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/responses")]

    @property
    def messages_requests(self) -> list[RecordedRequest]:
        """`POST /v1/messages` requests (not count_tokens); `.body` and `.headers` are as received."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/messages")]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    @property
    def total_connections(self) -> int:
        with self._lock:
            return self._total

    @property
    def aborted_streams(self) -> int:
        """Stream requests whose answer ended because the client closed the connection first."""
        with self._lock:
            return self._aborted

    def reset(self) -> None:
        """Forget recorded requests, counters (but open connections) and queued behaviours."""
        with self._lock:
            self._requests.clear()
            self._chat_queue.clear()
            self._models_queue.clear()
            self._total = self._open
            self._aborted = 0

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> None:
        """Poll `predicate` (in the calling thread) until true; raise TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(message or f"condition not met within {timeout}s")
            time.sleep(0.005)

    # The simulator's loop.

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = Connection(reader, writer)
        aborted: list[RecordedRequest] = []  # a stream the client walked away from, counted with the close
        with self._lock:
            self._open += 1
            self._total += 1
            connection_id = self._total
        try:
            while True:
                try:
                    request = await connection.read_request()
                except BadRequest as exc:
                    await send_error(connection, 400, str(exc), keep_alive=False)
                    break
                if request is None or not await self._respond(connection, request, connection_id, aborted):
                    break
        except (PeerClosed, Dropped, asyncio.CancelledError):
            pass
        except Exception as exc:
            with self._lock:
                self._errors.append(exc)
        finally:
            # Uncount the connection (and count its aborted stream) in one step, before the close
            # handshake: a test that sees the abort counted never sees this connection still open.
            with self._lock:
                self._open -= 1
                self._aborted += len(aborted)
            await connection.close()
            self._tasks.discard(task)

    async def _respond(
        self, connection: Connection, request: Request, connection_id: int, aborted: list[RecordedRequest]
    ) -> bool:
        """Answer one request; return whether the connection stays open for the next one."""
        try:
            body_json = json.loads(request.body) if request.body else None
            bad_json = None
        except ValueError as exc:
            body_json, bad_json = None, f"request body is not JSON: {exc}"
        with self._lock:
            self._request_count += 1
            record = RecordedRequest(
                method=request.method,
                path=request.target,
                headers=dict(request.headers),
                body=request.body,
                json=body_json,
                connection_id=connection_id,
                number=self._request_count,
                received_at=time.time(),
            )
            self._requests.append(record)
        connection.watch_peer()
        try:
            keep_alive = await self._dispatch(connection, request, record, bad_json)
            record.outcome = "completed"
            return keep_alive and request.keep_alive
        except PeerClosed:
            record.outcome = "client_closed"
            if record.stream:
                aborted.append(record)
            raise
        except Dropped:
            record.outcome = "dropped"
            raise
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise
        finally:
            await connection.stop_watching()

    def _authorized(self, request: Request, dialect: Dialect) -> bool:
        bearer = request.header("authorization") == f"Bearer {self.api_key}"
        if dialect is not anthropic.MESSAGES:
            return bearer
        # Anthropic's header is x-api-key; anthropic-sdk-python 2.x sends its api_key as a Bearer token.
        return request.header("x-api-key") == self.api_key or bearer

    async def _dispatch(
        self, connection: Connection, request: Request, record: RecordedRequest, bad_json: str | None
    ) -> bool:
        path = request.path.removeprefix("/v1")
        fallback = anthropic.MESSAGES if path.startswith("/messages") else CHAT  # unknown paths too
        dialect = next((d for (_, route_path), d in _ROUTES.items() if route_path == path), fallback)
        if path not in {route_path for _, route_path in _ROUTES}:
            return await send_error(connection, 404, f"no route for {request.path}", dialect)
        if (request.method, path) not in _ROUTES:
            message = f"method {request.method} not allowed on {path}"
            return await send_error(connection, 405, message, dialect)
        if bad_json is not None:
            return await send_error(connection, 400, bad_json, dialect)
        if self.api_key is not None and not self._authorized(request, dialect):
            message = "invalid x-api-key" if dialect is anthropic.MESSAGES else "Incorrect API key provided."
            return await send_error(connection, 401, message, dialect)
        with self._lock:
            if path == "/models":
                behaviour = self._models_queue.popleft() if self._models_queue else self._models_default
            else:
                behaviour = self._chat_queue.popleft() if self._chat_queue else self._default
        overrides = record.json.get("x_sim") if isinstance(record.json, dict) else None
        if overrides is not None:
            try:
                behaviour = behaviour.with_overrides(overrides)
            except InvalidBehaviour as exc:
                return await send_error(connection, 400, str(exc), dialect)
        record.behaviour = behaviour
        fixed = None
        if path == "/models":
            fixed = model_list(self.models)
        elif path == "/messages/count_tokens":
            fixed = anthropic.count_tokens(record.json if isinstance(record.json, dict) else {})
        return await answer(connection, behaviour, record, dialect, fixed=fixed)
