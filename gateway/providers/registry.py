"""Build `Provider` objects from the config, and keep unchanged ones (and their pools) across reloads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.config.models import ProviderConfig
from gateway.providers.base import Provider
from gateway.providers.kinds import KINDS


def new_provider(config: ProviderConfig) -> Provider:
    """A provider with its kind's transport (none when the provider is unavailable)."""
    if config.unavailable_reason is not None:
        return Provider(config, None)
    return Provider(config, KINDS[config.type].transport(config))


class ProviderRegistry:
    """The providers of one config. Immutable once built; a reload builds a new registry."""

    __slots__ = ("_providers", "configs")

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)
        self.configs: Mapping[str, ProviderConfig] = {name: p.config for name, p in self._providers.items()}

    @classmethod
    def build(
        cls, configs: Mapping[str, ProviderConfig], previous: ProviderRegistry | None = None
    ) -> tuple[ProviderRegistry, list[Provider]]:
        """A registry for `configs`, reusing every provider of `previous` whose definition is unchanged.

        Returns the registry and the previous providers that are no longer used (the caller closes them
        once their in-flight requests are done).
        """
        old = previous._providers if previous is not None else {}
        providers: dict[str, Provider] = {}
        for name, config in configs.items():
            kept = old.get(name)
            providers[name] = kept if kept is not None and kept.config == config else new_provider(config)
        kept_ids = {id(p) for p in providers.values()}
        retired = [p for p in old.values() if id(p) not in kept_ids]
        return cls(providers), retired

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
