"""The provider kinds: per `type:` of a provider, the URL of each API under a base URL, and its transport.

A new upstream family is a new entry here (and translators for its API in `translate/`), not branches
elsewhere. The default `base_url` of each kind stays in the config (`config/builder.py`, documented by the
schema): it is part of the effective config that `explain`, `/admin/config` and the config hash show, and the
config layer does not import providers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from gateway.config.models import ApiName, ProviderConfig, ProviderType
from gateway.providers.h1 import ACCEPT_ENCODING, H1Transport
from gateway.providers.h1.connect import Connector, Proxy, ProxyChoice
from gateway.providers.httpx_adapter import httpx_transport_for
from gateway.providers.mock import MockTransport
from gateway.providers.tls import ssl_context_for
from gateway.providers.transport import UpstreamTransport


def _models_url(base: str) -> str:
    return base + "/models"


@dataclass(frozen=True, slots=True)
class ProviderKind:
    # API -> (base URL -> its endpoint). Which APIs a provider speaks is its config's `apis`.
    endpoints: Mapping[ApiName, Callable[[str], str]]
    health_url: Callable[[str, str], str]  # base URL, `health_check.path` -> the probe's URL
    transport: Callable[[ProviderConfig], UpstreamTransport]
    accept_encoding: str | None = ACCEPT_ENCODING  # what the transport decodes; None: send no such header
    count_tokens: bool = False  # its Messages API has /v1/messages/count_tokens (Anthropic's own)
    models_url: Callable[[str], str] = _models_url  # its model list (GET), for `discover_models`


def _chat_url(base: str) -> str:
    return base + "/chat/completions"


def _messages_url(base: str) -> str:
    # Anthropic's base URLs stop before the version: https://api.anthropic.com, .../anthropic at DeepSeek.
    return base + "/v1/messages"


def _ollama_messages_url(base: str) -> str:
    return base.removesuffix("/v1") + "/v1/messages"


def _responses_url(base: str) -> str:
    return base + "/responses"


def _ollama_responses_url(base: str) -> str:
    return (base if base.endswith("/v1") else base + "/v1") + "/responses"


def _completions_url(base: str) -> str:
    return base + "/completions"


def _ollama_completions_url(base: str) -> str:
    return (base if base.endswith("/v1") else base + "/v1") + "/completions"


def _embeddings_url(base: str) -> str:
    return base + "/embeddings"


def _ollama_embeddings_url(base: str) -> str:
    return (base if base.endswith("/v1") else base + "/v1") + "/embeddings"


def _ollama_models_url(base: str) -> str:
    return (base if base.endswith("/v1") else base + "/v1") + "/models"


def _anthropic_models_url(base: str) -> str:
    return base + "/v1/models"


def _health_url(base: str, path: str) -> str:
    return base + path


def _ollama_chat_url(base: str) -> str:
    # Ollama serves the OpenAI-compatible API under /v1 of its root URL.
    return (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"


def _ollama_health_url(base: str, path: str) -> str:
    # Ollama's /v1/models answers even while no model is loaded; /api/tags is its own liveness check.
    return base.removesuffix("/v1") + "/api/tags" if path == "/models" else base + path


def network_transport_for(config: ProviderConfig) -> UpstreamTransport:
    """The provider's own pool: our H1 client, or (`transport: httpx`) httpx's, with its TLS and proxy."""
    make_context = partial(ssl_context_for, config.tls)
    if config.transport == "httpx":
        return httpx_transport_for(config, make_context())
    proxies: ProxyChoice | None = None
    if config.proxy == "environment":
        proxies = ProxyChoice(from_environment=True)
    elif config.proxy:
        proxies = ProxyChoice(Proxy.from_url(config.proxy))
    return H1Transport(
        config.pool,
        Connector(make_context, config.tls.server_name, allow_private_network=config.allow_private_network),
        proxies,
    )


def in_process_mock_for(config: ProviderConfig) -> UpstreamTransport:
    return MockTransport(config.mock)


_OPENAI: Mapping[ApiName, Callable[[str], str]] = {
    "openai.chat": _chat_url,
    "anthropic.messages": _messages_url,
    "openai.responses": _responses_url,
    "openai.embeddings": _embeddings_url,
    "openai.completions": _completions_url,
}
_OLLAMA: Mapping[ApiName, Callable[[str], str]] = {
    "openai.chat": _ollama_chat_url,
    "anthropic.messages": _ollama_messages_url,
    "openai.responses": _ollama_responses_url,
    "openai.embeddings": _ollama_embeddings_url,
    "openai.completions": _ollama_completions_url,
}

KINDS: Mapping[ProviderType, ProviderKind] = {
    "openai": ProviderKind(_OPENAI, _health_url, network_transport_for),
    "ollama": ProviderKind(_OLLAMA, _ollama_health_url, network_transport_for, models_url=_ollama_models_url),
    "anthropic": ProviderKind(
        _OPENAI, _health_url, network_transport_for, count_tokens=True, models_url=_anthropic_models_url
    ),
    "mock": ProviderKind(_OPENAI, _health_url, in_process_mock_for, accept_encoding=None),
}
