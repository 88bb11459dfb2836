"""The paths the stream benches measure (bench/event_bench.py), one table per bench, and the gateway config
that serves them all.

Every path is a route of one gateway config to one of three providers on the one mock upstream
(bench/mock_upstream.py): `mock-both` speaks chat, Messages and Responses natively (the gateway passes
them through), `mock-chat` chat only and `mock-messages` Messages only (so the gateway translates).

| bench | path | client | upstream | gateway code |
|---|---|---|---|---|
| both | chat-chat | chat | chat | pass-through, `streaming/relay.py` (the baseline) |
| messages | messages-messages | Messages | Messages | native pass-through, `translate/messages_messages.py` |
| messages | messages-chat | Messages | chat | translated, `translate/messages_chat*.py` |
| messages | chat-messages | chat | Messages | translated, `translate/chat_messages*.py` |
| responses | responses-responses | Responses | Responses | pass-through, `translate/responses_responses.py` |
| responses | responses-chat | Responses | chat | translated, `translate/responses_chat*.py` |

All but chat-chat stream through `streaming/event_relay.py`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from bench.event_stream_client import Wire


@dataclass(frozen=True, slots=True)
class StreamPath:
    key: str  # also the route (model) name in the gateway's config
    client: Wire  # the API the client speaks, and the route's `apis`
    provider: str  # the provider of `gateway_conf` the route goes to
    label: str


@dataclass(frozen=True, slots=True)
class Ratio:
    """One path's figures over another's; `translation`: the target ("at most 2x") is about it."""

    over: str
    base: str
    translation: bool = True


@dataclass(frozen=True, slots=True)
class Bench:
    name: str  # `bench/event_bench.py NAME`
    paths: tuple[StreamPath, ...]
    ratios: tuple[Ratio, ...]


TARGET_RATIO = 2.0
# Every bench's baseline: the chat stream relayed byte for byte.
CHAT_CHAT = StreamPath("chat-chat", "chat", "mock-both", "chat -> chat (pass-through)")


def gateway_conf(mock_port: int) -> str:
    """Three providers on the one mock: every API native, chat only, Messages only; a route per path."""
    base = f"http://127.0.0.1:{mock_port}"
    routes = "".join(
        f"  {path.key}:\n    apis: [{path.client}]\n    targets:\n      - provider: {path.provider}\n"
        for path in PATHS.values()
    )
    return (
        textwrap.dedent(f"""\
        providers:
          mock-both:
            type: openai
            base_url: {base}/v1
            apis:
              chat: true
              messages: {base}
              responses: true
            health_check:
              enabled: false
          mock-chat:
            type: openai
            base_url: {base}/v1
            health_check:
              enabled: false
          mock-messages:
            type: openai
            base_url: {base}/v1
            apis:
              messages: {base}
            health_check:
              enabled: false
        routes:
        """)
        + routes
    )


PATHS = {
    path.key: path
    for path in (
        CHAT_CHAT,
        StreamPath(
            "messages-messages", "messages", "mock-both", "messages -> messages (native pass-through)"
        ),
        StreamPath("messages-chat", "messages", "mock-chat", "messages -> chat (translated)"),
        StreamPath("chat-messages", "chat", "mock-messages", "chat -> messages (translated)"),
        StreamPath(
            "responses-responses", "responses", "mock-both", "responses -> responses (native pass-through)"
        ),
        StreamPath("responses-chat", "responses", "mock-chat", "responses -> chat (translated)"),
    )
}


def _bench(name: str, keys: str, ratios: tuple[Ratio, ...]) -> Bench:
    return Bench(name, tuple(PATHS[key] for key in keys.split()), ratios)


BENCHES = {
    bench.name: bench
    for bench in (
        _bench(
            "messages",
            "chat-chat messages-messages messages-chat chat-messages",
            (
                Ratio("messages-chat", "messages-messages"),
                Ratio("messages-chat", "chat-chat"),
                Ratio("chat-messages", "chat-chat"),
                Ratio("messages-messages", "chat-chat", translation=False),
            ),
        ),
        _bench(
            "responses",
            "chat-chat responses-responses responses-chat",
            (
                Ratio("responses-chat", "responses-responses"),
                Ratio("responses-chat", "chat-chat"),
                Ratio("responses-responses", "chat-chat", translation=False),
            ),
        ),
    )
}
