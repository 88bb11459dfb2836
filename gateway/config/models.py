"""Immutable configuration objects built from route files.

They are plain frozen dataclasses: built once per (re)load, shared read-only by every request, so the hot
path never touches YAML, JSON Schema or pydantic. Defaults here are the documented defaults; the JSON
Schema in `schemas/` documents the same values for editors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

ProviderType = Literal["openai", "ollama", "mock"]
# The API families a client or an upstream speaks (`translate/` has one translator per pair).
ApiName = Literal["openai.chat"]
StreamingMode = Literal["asgi", "starlette"]
Strategy = Literal["ordered", "weighted", "round_robin", "least_latency"]

DEFAULT_RETRY_ON: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "connect_error",
    "timeout",
    "read_error",
)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a value was written: 1-based line and column."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `read` is the longest gap between two received bytes; `first_byte` the wait for the
    response head (the first token of a stream); `total` bounds the whole attempt. None = no limit."""

    connect: float | None = 60.0
    read: float | None = 60.0
    write: float | None = 60.0
    first_byte: float | None = None
    total: float | None = None


@dataclass(frozen=True, slots=True)
class PoolLimits:
    max_connections: int = 50
    max_keepalive_connections: int = 50  # below max_connections, bursts reconnect (and redo TLS)
    keepalive_expiry: float = 30.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: base * 2**retry capped at `max`; `jitter` draws uniformly in [0, that]."""

    base: float = 0.25
    max: float = 8.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 1  # attempts per target; 1 = no retry
    backoff: Backoff = field(default_factory=Backoff)
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
    retry_after_cap: float = 30.0  # honour Retry-After up to this many seconds
    deadline: float | None = None  # overall seconds for the request, across every attempt


@dataclass(frozen=True, slots=True)
class HealthCheck:
    enabled: bool = True
    interval: float = 30.0
    timeout: float = 5.0
    path: str = "/models"
    method: str = "GET"
    healthy_threshold: int = 1
    unhealthy_threshold: int = 2


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    failure_threshold: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class MockOptions:
    """Built-in mock provider: deterministic text, `tokens` chunks, `token_delay` seconds between them."""

    tokens: int = 16
    token_delay: float = 0.0
    text: str = "This is a deterministic answer from the gateway's built-in mock provider."


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: ProviderType
    base_url: str
    api_key: str | None = None  # after ${VAR} interpolation; never logged
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeouts: Timeouts = field(default_factory=Timeouts)
    pool: PoolLimits = field(default_factory=PoolLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    circuit_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    stream_usage: bool = True  # ask upstream for stream_options.include_usage
    mock: MockOptions = field(default_factory=MockOptions)
    # Set when the provider cannot be used (e.g. "environment variable DEEPSEEK_API_KEY is not set").
    unavailable_reason: str | None = None
    position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str | None = None  # upstream model name; None = the model the client asked for
    weight: float = 1.0
    priority: int = 0  # lower goes first with the `ordered` strategy
    position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    model: str  # exact client-facing model name, or a glob such as `deepseek-*`
    targets: tuple[Target, ...]
    aliases: tuple[str, ...] = ()
    strategy: Strategy = "ordered"
    retry: RetryPolicy | None = None  # None = the first target's provider defaults
    timeouts: Timeouts | None = None  # None = each target's provider timeouts
    streaming: StreamingMode = "asgi"
    position: Position | None = field(default=None, compare=False)

    @property
    def is_pattern(self) -> bool:
        return any(ch in self.model for ch in "*?[")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The effective configuration: what one routing table is built from."""

    providers: Mapping[str, ProviderConfig]
    routes: tuple[RouteConfig, ...]
    sources: tuple[str, ...] = ()
    version: str = ""  # short hash of the effective config
    # Raw top-level sections later features read (keys, auth, settings), already interpolated.
    extras: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
