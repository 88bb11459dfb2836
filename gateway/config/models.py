"""Immutable configuration objects built from route files.

They are plain frozen dataclasses: built once per (re)load, shared read-only by every request, so the hot
path never touches YAML, JSON Schema or pydantic. Defaults here are the documented defaults; the JSON
Schema in `schemas/` documents the same values for editors. `access/` turns the access models (keys, auth,
usage store) into its key ring and store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from .budget_models import DEFAULT_BUDGET_MAX_OUTPUT_TOKENS, Budget
from .prices import PriceTable
from .tracing import TracingSettings

ProviderType = Literal["openai", "ollama", "anthropic", "mock"]
TransportKind = Literal["h1", "httpx"]
# The API families a client or an upstream speaks (`translate/` has one translator per pair).
# API families on either side of the gateway. A new one adds a name here, an endpoint in `api/`, translators
# in `translate/` and (for an upstream) its URL in `providers/kinds.py`.
ApiName = Literal[
    "openai.chat", "anthropic.messages", "openai.responses", "openai.embeddings", "openai.completions"
]
DEFAULT_DISCOVER_TTL = 300.0  # seconds an upstream model list is kept, for `discover_models: true`
DEFAULT_MAX_TOKENS = 4096
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
    """Capacity toward one provider. A stream holds its connection for its whole length, so the
    connection cap must fit concurrent streams; a limit that is reached is waited on for at most
    `acquire_timeout`, then answered 503 `upstream_capacity` (retryable: the route fails over)."""

    max_connections: int = 2048
    max_keepalive_connections: int = 256  # below the connections in use, bursts reconnect (and redo TLS)
    keepalive_expiry: float = 30.0
    acquire_timeout: float = 1.0
    max_concurrent_requests: int | None = None  # protects an upstream that cannot take more


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS toward an https provider; file paths are absolute once built (relative to the route file)."""

    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None


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
    tls: TlsOptions = field(default_factory=TlsOptions)
    proxy: str | None = None  # an http:// URL (may hold credentials: never logged), or "environment"
    transport: TransportKind = "h1"
    http2: bool = False  # with transport httpx
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    circuit_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    stream_usage: bool = True  # ask upstream for stream_options.include_usage
    allow_private_network: bool = False  # let URLs reach link-local / metadata addresses (SSRF guard off)
    # The APIs it speaks natively, each with its base URL (`apis:`, default: its type's, at base_url).
    apis: Mapping[ApiName, str] = field(default_factory=lambda: MappingProxyType({}))
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
    # `max_tokens` for an upstream API that requires it (Anthropic Messages) when the client's API does not.
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    listed_models: tuple[str, ...] = ()  # names a glob route serves, shown by GET /v1/models
    # Seconds an upstream's `GET /models` answer is kept for GET /v1/models (None: not asked).
    discover_models: float | None = None
    # The inbound APIs it serves: by default every one each of its targets can reach (the builder's).
    apis: tuple[ApiName, ...] = ("openai.chat", "anthropic.messages")
    position: Position | None = field(default=None, compare=False)

    @property
    def is_pattern(self) -> bool:
        return any(ch in self.model for ch in "*?[")


# The keys:, auth: and settings: sections. A key is kept only as the SHA-256 digest of its secret: the
# loader resolves `${VAR}` and hashes it at once, so no plaintext gateway key lives in a built config.
AuthMode = Literal["keys", "open", "none"]
Role = Literal["user", "admin"]

HASH_PREFIX = "sha256:"
HASHED_SECRET = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
SIMPLE_MODE_VARIABLE = "API_KEY"  # simple mode: this variable is one admin key, named like it
SIMPLE_MODE_KEY_NAME = "API_KEY"
DEFAULT_STORE = "memory"
DEFAULT_PREFIX = "gateway"
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_RETENTION_DAYS = 400  # per-day usage rows kept: a year and a month
STORE_SCHEMES = ("redis://", "rediss://", "unix://", "sqlite:///")


def secret_digest(secret: str) -> bytes:
    """The digest a key is known by: a `sha256:<hex>` secret is the digest itself, else sha256(secret)."""
    if HASHED_SECRET.match(secret):
        return bytes.fromhex(secret[len(HASH_PREFIX) :])
    return hashlib.sha256(secret.encode()).digest()


# The limits a key may have, by their config name; each is enforced (over it: 429) or in shadow mode
# (over it: admitted, counted as a would-block and logged).
LimitName = Literal["requests_per_minute", "tokens_per_minute", "tokens_per_day"]
LimitMode = Literal["enforce", "shadow"]
LIMIT_NAMES: tuple[LimitName, ...] = ("requests_per_minute", "tokens_per_minute", "tokens_per_day")


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per key; None = no limit. Token limits count prompt + completion tokens reported by upstream.
    `shadow` names the limits in shadow mode (`mode: shadow`): checked and counted, never refusing.
    `budgets` are checked and reserved in the same store call (`access/budgets.py`)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    shadow: frozenset[LimitName] = frozenset()
    budgets: tuple[Budget, ...] = ()

    def mode(self, name: LimitName) -> LimitMode:
        return "shadow" if name in self.shadow else "enforce"

    @property
    def any(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute or self.tokens_per_day or self.budgets)

    @property
    def counts_tokens(self) -> bool:
        return bool(self.tokens_per_minute or self.tokens_per_day)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One gateway key as configured (or the API_KEY variable's, which has no position)."""

    name: str
    digest: bytes = field(repr=False)  # sha256 of the secret; the secret itself is never kept
    models: tuple[str, ...] = ()  # globs of allowed client-facing model names; empty = every model
    limits: KeyLimits = KeyLimits()
    role: Role = "user"
    position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """`stats_store`: `memory` (default; SQLite in memory, gone on restart), a SQLite file path (or
    `sqlite:///path`), or `redis://host:port/db` (`rediss://` for TLS)."""

    url: str = DEFAULT_STORE
    prefix: str = DEFAULT_PREFIX  # Redis key prefix: several gateways or tests on one Redis
    flush_interval: float = DEFAULT_FLUSH_INTERVAL  # seconds between background writes of usage
    retention_days: int = DEFAULT_RETENTION_DAYS  # per-day usage rows older than this are deleted
    # While the store cannot answer: refuse (503) or admit without limits the requests of keys with limits.
    failure_mode: Literal["fail_closed", "fail_open"] = "fail_closed"

    @property
    def kind(self) -> Literal["sqlite", "redis"]:
        return "sqlite" if self.url.startswith("sqlite:///") or "://" not in self.url else "redis"

    @property
    def sqlite_path(self) -> str:
        if self.url == DEFAULT_STORE:
            return ":memory:"
        return self.url.removeprefix("sqlite:///") if self.url.startswith("sqlite:///") else self.url

    def describe(self) -> str:
        """The store for logs and /stats, without credentials."""
        if self.kind == "sqlite":
            return f"sqlite:{self.sqlite_path}"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def is_store_url(url: str) -> bool:
    """`memory`, a file path, or a URL of a scheme the stores speak (`redis` alone is a typo, not a path)."""
    if not url or url in ("redis", "rediss"):
        return False
    return "://" not in url or url.startswith(STORE_SCHEMES)


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """Who may call: the auth mode, every key (the API_KEY variable's included) and the usage store.

    mode `keys`: a key is required; `open`: no key is configured (serve allows it on loopback only);
    `none`: `auth: none`, configured keys are ignored (`ignored_keys` says how many).
    """

    mode: AuthMode = "open"
    keys: tuple[KeyConfig, ...] = ()
    store: StoreSettings = field(default_factory=StoreSettings)
    ignored_keys: int = 0
    budget_default_max_output_tokens: int = DEFAULT_BUDGET_MAX_OUTPUT_TOKENS


# The settings.cors and settings.limits sections: what the inbound HTTP edge accepts (api/cors.py,
# api/limits.py read them per request from the served config).
MIB = 1024 * 1024
DEFAULT_CORS_METHODS = ("GET", "POST", "OPTIONS")
# What the OpenAI and Anthropic SDKs send from a browser; a trailing `*` matches a prefix.
DEFAULT_CORS_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "x-request-id",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "x-stainless-*",
)
DEFAULT_CORS_EXPOSE = ("x-request-id", "request-id", "retry-after")
DEFAULT_MAX_BODY_BYTES = 10 * MIB
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_MAX_TOOLS = 512
# The server refuses a request head above this before the app sees it (api/head_fence.py); the
# configurable `max_header_bytes` may not exceed it.
HEAD_FENCE_BYTES = MIB


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """`settings.cors`: which browser origins may call, with what. Absent: no CORS at all."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = DEFAULT_CORS_METHODS
    allow_headers: tuple[str, ...] = DEFAULT_CORS_HEADERS  # lower case
    expose_headers: tuple[str, ...] = DEFAULT_CORS_EXPOSE
    allow_credentials: bool = False
    max_age: int = 600


@dataclass(frozen=True, slots=True)
class InputLimits:
    """`settings.limits`: the most a request may bring (413, 431, 400 naming the field)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    max_messages: int = DEFAULT_MAX_MESSAGES
    max_tools: int = DEFAULT_MAX_TOOLS


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """The inbound edge of the gateway: CORS (None: off) and the input limits."""

    cors: CorsSettings | None = None
    limits: InputLimits = field(default_factory=InputLimits)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The effective configuration: what one routing table is built from."""

    providers: Mapping[str, ProviderConfig]
    routes: tuple[RouteConfig, ...]
    sources: tuple[str, ...] = ()
    version: str = ""  # short hash of the effective config
    access: AccessConfig = field(default_factory=AccessConfig)  # keys, auth and settings sections
    edge: EdgeSettings = field(default_factory=EdgeSettings)  # settings.cors and settings.limits
    tracing: TracingSettings = field(default_factory=TracingSettings)  # settings.tracing (read at startup)
    prices: PriceTable | None = None  # the prices: section; None when no price is configured
