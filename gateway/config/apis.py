"""The APIs the gateway speaks, by the short names route files use, and which can reach which.

`ApiName` is the full name (`openai.chat`, `anthropic.messages`); route files and `gateway explain --api`
use the short one (`chat`, `messages`). A provider speaks some APIs natively (`apis:`, by default its
type's); a route serves every API for which each of its targets either speaks it or can be translated to
one it speaks. The pairs are declared here, below the translators, so the config can check them without
importing `gateway.translate`; a test pins that the translator table has exactly these pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

from .models import ApiName, ProviderType

SHORT_NAMES: Mapping[str, ApiName] = {
    "chat": "openai.chat",
    "messages": "anthropic.messages",
    "responses": "openai.responses",
    "embeddings": "openai.embeddings",
    "completions": "openai.completions",  # the legacy text completions API
}
LONG_TO_SHORT: Mapping[ApiName, str] = {full: short for short, full in SHORT_NAMES.items()}
ALL_APIS: tuple[ApiName, ...] = tuple(SHORT_NAMES.values())

# (what the client speaks, what the upstream speaks): the translator pairs that exist.
TRANSLATABLE: frozenset[tuple[ApiName, ApiName]] = frozenset(
    {
        ("openai.chat", "openai.chat"),
        ("openai.chat", "anthropic.messages"),
        ("anthropic.messages", "openai.chat"),
        ("anthropic.messages", "anthropic.messages"),
        ("openai.responses", "openai.chat"),
        ("openai.responses", "openai.responses"),
        ("openai.embeddings", "openai.embeddings"),  # passed through; nothing else reaches it
        ("openai.completions", "openai.completions"),  # likewise
    }
)

# What each provider type speaks natively when its `apis:` is not written (at its base_url).
DEFAULT_APIS: Mapping[ProviderType, tuple[ApiName, ...]] = {
    "openai": ("openai.chat",),
    # Ollama serves /v1/chat/completions, /v1/messages and /v1/embeddings on one root.
    "ollama": ("openai.chat", "anthropic.messages", "openai.embeddings"),
    "anthropic": ("anthropic.messages",),
    "mock": ("openai.chat", "openai.embeddings"),
}


def reachable_apis(targets_native: list[tuple[ApiName, ...]]) -> tuple[ApiName, ...]:
    """The inbound APIs a route serves by default: those every one of its targets can be reached from."""
    return tuple(
        api for api in ALL_APIS if all(upstream_api(api, native) is not None for native in targets_native)
    )


def upstream_api(client: ApiName, native: tuple[ApiName, ...]) -> ApiName | None:
    """The API an upstream speaking `native` is sent a `client` request in: the same one when it speaks
    it (pass-through), else the first of its APIs a translator reaches; None when none does."""
    if client in native:
        return client
    return next((api for api in native if (client, api) in TRANSLATABLE), None)
