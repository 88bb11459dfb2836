"""Build the immutable provider and route models from schema-checked route files.

Here `${VAR}` references in a provider's `base_url`, `api_key` and `headers` are resolved against the
injected environment. A secret whose variable is not set does not fail the load: the provider is marked
unavailable with the reason (a warning), so a gateway without a DeepSeek key still serves Ollama.
Schema keys are the dataclass field names (a test pins this), so each section is laid over the defaults
field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from .address_guard import OPT_IN, refused_url
from .apis import DEFAULT_APIS, SHORT_NAMES, reachable_apis
from .budget_models import DEFAULT_BUDGET_MAX_OUTPUT_TOKENS
from .budgets import build_budgets
from .diagnostics import Diagnostic
from .interpolate import Interpolated, InterpolationError, interpolate
from .models import (
    DEFAULT_DISCOVER_TTL,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_TOKENS,
    DEFAULT_PREFIX,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_STORE,
    LIMIT_NAMES,
    SIMPLE_MODE_KEY_NAME,
    SIMPLE_MODE_VARIABLE,
    AccessConfig,
    ApiName,
    CircuitBreaker,
    HealthCheck,
    KeyConfig,
    KeyLimits,
    LimitName,
    MockOptions,
    PoolLimits,
    Position,
    ProviderConfig,
    ProviderType,
    RetryPolicy,
    RouteConfig,
    StoreSettings,
    Target,
    Timeouts,
    TlsOptions,
    secret_digest,
)
from .policy import first_target_provider
from .sections import SectionPlaces
from .yaml_source import DocumentPath, SourceFile

DEFAULT_BASE_URLS = {
    "ollama": "http://localhost:11434",
    "anthropic": "https://api.anthropic.com",
    "mock": "http://mock.gateway.invalid/v1",
}

Model = TypeVar("Model")


def build_providers(
    sources: Sequence[SourceFile], environ: Mapping[str, str], diagnostics: list[Diagnostic]
) -> dict[str, ProviderConfig]:
    """Every provider of every file (names were checked to be unique; a repeat is skipped)."""
    providers: dict[str, ProviderConfig] = {}
    for source in sources:
        for name, raw in (source.data.get("providers") or {}).items():
            if name not in providers:
                providers[name] = _ProviderBuilder(source, name, environ, diagnostics).build(raw)
    return providers


def build_routes(
    sources: Sequence[SourceFile], providers: Mapping[str, ProviderConfig]
) -> tuple[RouteConfig, ...]:
    """Every route in load order (files sorted by name, then file order); routing breaks ties between
    equally specific glob patterns by this order."""
    routes: dict[str, RouteConfig] = {}
    for source in sources:
        for name, raw in (source.data.get("routes") or {}).items():
            if name not in routes:
                routes[name] = _build_route(source, name, raw, providers)
    return tuple(routes.values())


def overlay(base: Model, raw: Mapping[str, Any]) -> Model:
    """`base` with the fields `raw` sets replaced; nested dataclasses are overlaid in turn, whole numbers
    become floats where the field is a float, `retry_on` entries become strings ("429")."""
    changes: dict[str, Any] = {}
    types = {field.name: str(field.type) for field in dataclasses.fields(base)}  # type: ignore[arg-type]
    for key, value in raw.items():
        current = getattr(base, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = overlay(current, value)
        elif key == "retry_on":
            changes[key] = tuple(str(condition) for condition in value)
        elif isinstance(value, int) and not isinstance(value, bool) and "float" in types[key]:
            changes[key] = float(value)
        else:
            changes[key] = value
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


def _position(source: SourceFile, path: DocumentPath) -> Position:
    line, column = source.position(path, key=True)
    return Position(source.path, line, column)


class _ProviderBuilder:
    """Builds one provider, collecting its diagnostics and why it may be unavailable."""

    def __init__(
        self, source: SourceFile, name: str, environ: Mapping[str, str], diagnostics: list[Diagnostic]
    ) -> None:
        self.source = source
        self.name = name
        self.path: DocumentPath = ("providers", name)
        self.environ = environ
        self.diagnostics = diagnostics
        self.unavailable: tuple[DocumentPath, str, str] | None = None  # (where, reason, variable)
        self.allow_private_network = False

    def build(self, raw: dict[str, Any]) -> ProviderConfig:
        kind = raw["type"]
        self.allow_private_network = bool(raw.get(OPT_IN, False))
        base_url = self._base_url(raw.get("base_url", DEFAULT_BASE_URLS.get(kind, "")))
        api_key = self._secret("api_key", raw["api_key"]) if "api_key" in raw else None
        headers = {
            header: self._secret("headers", value, header) or ""
            for header, value in (raw.get("headers") or {}).items()
        }
        reason = self._report_unavailable()
        return ProviderConfig(
            name=self.name,
            type=kind,
            base_url=base_url,
            api_key=api_key,
            headers=MappingProxyType(headers),
            timeouts=overlay(Timeouts(), raw.get("timeouts", {})),
            pool=overlay(PoolLimits(), raw.get("pool", {})),
            tls=self._tls(raw.get("tls", {})),
            proxy=self._proxy(raw["proxy"]) if "proxy" in raw else None,
            transport=raw.get("transport", "h1"),
            http2=raw.get("http2", False),
            retry=overlay(RetryPolicy(), raw.get("retry", {})),
            health_check=overlay(HealthCheck(), raw.get("health_check", {})),
            circuit_breaker=overlay(CircuitBreaker(), raw.get("circuit_breaker", {})),
            stream_usage=raw.get("stream_usage", True),
            allow_private_network=self.allow_private_network,
            apis=MappingProxyType(self._apis(kind, base_url, raw.get("apis"))),
            mock=overlay(MockOptions(), raw.get("mock", {})),
            unavailable_reason=reason,
            position=_position(self.source, self.path),
        )

    def _apis(self, kind: ProviderType, base_url: str, raw: dict[str, Any] | None) -> dict[ApiName, str]:
        """Each native API with its base URL: `true` means the provider's `base_url`."""
        if raw is None:
            return dict.fromkeys(DEFAULT_APIS[kind], base_url)
        return {
            SHORT_NAMES[short]: base_url
            if value is True
            else self._base_url(value, (*self.path, "apis", short))
            for short, value in raw.items()
        }

    def _tls(self, raw: dict[str, Any]) -> TlsOptions:
        """Certificate paths made absolute, relative to the route file that names them."""
        base = Path(self.source.path).parent
        paths = {
            name: str((base / raw[name]).resolve())
            for name in ("ca_bundle", "client_cert", "client_key")
            if raw.get(name)
        }
        return overlay(TlsOptions(), {**raw, **paths})

    def _proxy(self, text: str) -> str | None:
        if text == "environment":
            return text
        resolved = self._interpolate((*self.path, "proxy"), text)
        if resolved is None:
            return None
        if resolved.missing_reason is not None:
            line, column = self.source.position((*self.path, "proxy"))
            self.diagnostics.append(
                Diagnostic(
                    self.source.path, line, column,
                    f"proxy of provider {self.name!r} uses {(resolved.unset or resolved.empty)[0]}, which is "
                    "not set or empty",
                    "set it in the gateway's environment: behind a proxy the provider is reached only so",
                    code="env",
                )
            )  # fmt: skip
            return None
        if not resolved.value.startswith("http://"):
            line, column = self.source.position((*self.path, "proxy"))
            self.diagnostics.append(
                Diagnostic(
                    self.source.path, line, column,
                    f"proxy of provider {self.name!r} is not an http:// URL after interpolation",
                    "write http://host:port (CONNECT tunnels carry https; https:// proxies are not offered)",
                    code="env",
                )
            )  # fmt: skip
            return None
        return resolved.value

    def _error(self, path: DocumentPath, message: str, hint: str) -> None:
        line, column = self.source.position(path)
        self.diagnostics.append(Diagnostic(self.source.path, line, column, message, hint, code="env"))

    def _interpolate(self, path: DocumentPath, text: str) -> Interpolated | None:
        try:
            return interpolate(text, self.environ)
        except InterpolationError as exc:
            self._error(path, exc.message, exc.hint)
            return None

    def _base_url(self, text: str, path: DocumentPath | None = None) -> str:
        """The URL without a trailing slash, so API paths are appended as `base_url + "/chat/..."`."""
        path = path or (*self.path, "base_url")
        resolved = self._interpolate(path, text)
        if resolved is None or text == "":
            return ""
        if resolved.unset or resolved.empty:
            variable = (resolved.unset or resolved.empty)[0]
            self._error(
                path,
                f"base_url of provider {self.name!r} uses {variable}, which is not set or empty",
                f"set {variable}, or give a default: ${{{variable}:-https://...}}",
            )
            return ""
        url = resolved.value.rstrip("/")
        if not url.startswith(("http://", "https://")) or " " in url:
            self._error(
                path,
                f"base_url of provider {self.name!r} is not an http(s) URL after interpolation",
                "the value (or the variable it names) must start with http:// or https://",
            )
        refused = None if self.allow_private_network else refused_url(url)
        if refused is not None:
            field = f"apis.{path[-1]}" if len(path) == 4 else "base_url"
            self._error(
                path,
                f"{field} of provider {self.name!r} points at a link-local or cloud metadata address: "
                f"{refused}",
                f"set {OPT_IN}: true on the provider if it really is served there (the SSRF guard refuses "
                "these addresses, which hand out the machine's own credentials)",
            )
        return url

    def _secret(self, field: str, text: str, header: str | None = None) -> str | None:
        path = (*self.path, field) if header is None else (*self.path, field, header)
        resolved = self._interpolate(path, text)
        if resolved is None:
            return None
        reason = resolved.missing_reason
        if reason is not None and self.unavailable is None:
            variable = (resolved.unset or resolved.empty)[0]
            self.unavailable = (path, reason, variable)
        return resolved.value or None

    def _report_unavailable(self) -> str | None:
        if self.unavailable is None:
            return None
        path, reason, variable = self.unavailable
        line, column = self.source.position(path)
        self.diagnostics.append(
            Diagnostic(
                self.source.path,
                line,
                column,
                f"provider {self.name!r} is unavailable: {reason}",
                hint=f"set {variable} in the gateway's environment; until then its routes fail over to "
                "other targets or answer 503",
                severity="warning",
                code="env",
            )
        )
        return reason


def _build_route(
    source: SourceFile, name: str, raw: dict[str, Any], providers: Mapping[str, ProviderConfig]
) -> RouteConfig:
    path: DocumentPath = ("routes", name)
    targets = tuple(
        Target(
            provider=target["provider"],
            model=target.get("model"),
            weight=float(target.get("weight", 1.0)),
            priority=target.get("priority", 0),
            position=_position(source, (*path, "targets", index)),
        )
        for index, target in enumerate(raw["targets"])
    )
    # A route's retry/timeouts override field by field on top of its first target's provider.
    first = first_target_provider(targets, providers)
    retry = overlay(first.retry if first else RetryPolicy(), raw["retry"]) if "retry" in raw else None
    timeouts = (
        overlay(first.timeouts if first else Timeouts(), raw["timeouts"]) if "timeouts" in raw else None
    )
    return RouteConfig(
        name=name,
        model=raw.get("model", name),
        targets=targets,
        aliases=tuple(raw.get("aliases", ())),
        strategy=raw.get("strategy", "ordered"),
        retry=retry,
        timeouts=timeouts,
        streaming=raw.get("streaming", "asgi"),
        default_max_tokens=raw.get("default_max_tokens", DEFAULT_MAX_TOKENS),
        listed_models=tuple(raw.get("listed_models", ())),
        discover_models=_discover_ttl(raw.get("discover_models", False)),
        apis=(
            tuple(SHORT_NAMES[short] for short in raw["apis"])
            if "apis" in raw
            else reachable_apis(
                [tuple(providers[t.provider].apis) for t in targets if t.provider in providers]
            )
        ),
        position=_position(source, path),
    )


def _discover_ttl(written: bool | dict[str, Any]) -> float | None:
    """`discover_models: true` or `{ttl: seconds}` -> the cache lifetime; false -> None."""
    if isinstance(written, dict):
        return float(written.get("ttl", DEFAULT_DISCOVER_TTL))
    return DEFAULT_DISCOVER_TTL if written else None


def key_limits(spec: Mapping[str, Any]) -> KeyLimits:
    """A key's `limits:` block: each limit is a number or `{limit, mode}`; a limit without its own mode
    takes the block's `mode` (default enforce)."""
    default = spec.get("mode", "enforce")
    values: dict[LimitName, int | None] = dict.fromkeys(LIMIT_NAMES)
    shadow: set[LimitName] = set()
    for name in LIMIT_NAMES:
        written = spec.get(name)
        if isinstance(written, dict):
            written, mode = written["limit"], written.get("mode", default)
        else:
            mode = default
        if written is not None:
            values[name] = int(written)
            if mode == "shadow":
                shadow.add(name)
    return KeyLimits(
        values["requests_per_minute"],
        values["tokens_per_minute"],
        values["tokens_per_day"],
        frozenset(shadow),
        build_budgets(spec, default),
    )


def build_access(
    sections: Mapping[str, Any], environ: Mapping[str, str], places: SectionPlaces
) -> AccessConfig:
    """The access model of sections that passed the schema and `check_access`; secrets are hashed here.
    A set API_KEY variable is one more key: an admin for every model, without limits (simple mode)."""
    keys = [
        KeyConfig(
            name=name,
            digest=secret_digest(spec["secret"]),
            models=tuple(spec.get("models") or ()),
            limits=key_limits(spec.get("limits") or {}),
            role=spec.get("role", "user"),
            position=_place(places, ("keys", name)),
        )
        for name, spec in (sections.get("keys") or {}).items()
    ]
    simple = environ.get(SIMPLE_MODE_VARIABLE)
    if simple:
        keys.append(KeyConfig(SIMPLE_MODE_KEY_NAME, secret_digest(simple), role="admin"))
    settings = sections.get("settings") or {}
    store = StoreSettings(
        url=settings.get("stats_store", DEFAULT_STORE),
        prefix=settings.get("stats_store_prefix", DEFAULT_PREFIX),
        flush_interval=float(settings.get("stats_flush_interval", DEFAULT_FLUSH_INTERVAL)),
        retention_days=int(settings.get("stats_retention_days", DEFAULT_RETENTION_DAYS)),
        failure_mode=settings.get("store_failure_mode", "fail_closed"),
    )
    default_output = int(settings.get("budget_default_max_output_tokens", DEFAULT_BUDGET_MAX_OUTPUT_TOKENS))
    if sections.get("auth") == "none":
        return AccessConfig("none", (), store, len(keys), default_output)
    return AccessConfig("keys" if keys else "open", tuple(keys), store, 0, default_output)


def _place(places: SectionPlaces, path: DocumentPath) -> Position | None:
    where, line, column = places.find(path, key=True)
    return None if line is None or column is None else Position(where, line, column)
