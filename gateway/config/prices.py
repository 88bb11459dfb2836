"""The `prices:` section: what a token costs, per provider and upstream model, and the cost of one request.

Written once for the whole config (a reserved top-level section, like `keys:`), in one currency:

    prices:
      currency: USD
      models:
        - {provider: openai, model: "gpt-4o-mini*", input: 0.15, output: 0.60, cached_input: 0.075}

Prices are per million tokens with at most 6 decimal places, so a token's price is a whole number of
pico-units (1e-12 of the currency) and a request's cost is exact integer arithmetic. Costs are kept and
summed in nano-units (1e-9, `NANO`), each request's cost rounded half-up once: sums stay exact to the cent
for billions of requests and fit a 64-bit counter up to nine billion currency units.

A model is priced by its exact entry, else by the first glob written that matches it (load order of the
files, then list order). `PriceTable.price` memoises the answer per (provider, model): a dict lookup per
request; the memo is derived data, the table itself never changes once built.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .diagnostics import Diagnostic
from .sections import SectionPlaces
from .yaml_source import DocumentPath

DEFAULT_CURRENCY = "USD"
PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")
MICRO = 10**6  # a price per million tokens in micro-units is the price of one token in pico-units
PICO_PER_NANO = 1000
NANO = 10**9  # nano-units per currency unit


@dataclass(frozen=True, slots=True)
class Price:
    """One entry, each price in pico-units per token (= micro-units per million tokens)."""

    provider: str
    model: str  # exact upstream model name or a glob
    input: int
    output: int = 0
    cached_input: int | None = None  # None: cache reads cost the input price
    cache_write: int | None = None  # None: cache writes cost the input price

    def cost(self, usage: Mapping[str, Any]) -> int:
        """Nano-units for a usage block in the gateway's (OpenAI chat's) shape: `prompt_tokens` includes
        the cached tokens, named in `prompt_tokens_details` (`cached_tokens`, `cache_creation_tokens`)."""
        details = usage.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
        written = int(details.get("cache_creation_tokens") or 0) if isinstance(details, Mapping) else 0
        prompt = int(usage.get("prompt_tokens") or 0)
        fresh = max(0, prompt - cached - written)
        pico = (
            fresh * self.input
            + cached * (self.input if self.cached_input is None else self.cached_input)
            + written * (self.input if self.cache_write is None else self.cache_write)
            + int(usage.get("completion_tokens") or 0) * self.output
        )
        return (pico + PICO_PER_NANO // 2) // PICO_PER_NANO


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Every configured price, in one currency."""

    currency: str
    entries: tuple[Price, ...]
    _memo: dict[tuple[str, str], Price | None] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def price(self, provider: str, model: str) -> Price | None:
        """The entry pricing `model` on `provider`: the exact one, else the first matching glob."""
        key = (provider, model)
        memo = self._memo
        if key in memo:
            return memo[key]
        found = self._find(provider, model)
        memo[key] = found
        return found

    def _find(self, provider: str, model: str) -> Price | None:
        globs = []
        for entry in self.entries:
            if entry.provider != provider:
                continue
            if entry.model == model:
                return entry
            if _is_glob(entry.model):
                globs.append(entry)
        return next((entry for entry in globs if fnmatch.fnmatchcase(model, entry.model)), None)


def format_cost(nano: int) -> str:
    """`0.000123`: at least 6 decimals, up to 9 when the cost has them (no float on the way)."""
    text = f"{Decimal(nano).scaleb(-9):.9f}"
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(6, '0')}"


def check_prices(
    sections: Mapping[str, Any], places: SectionPlaces, providers: Mapping[str, object]
) -> list[Diagnostic]:
    """Unknown providers, negative prices, prices finer than 6 decimals and two entries for one
    (provider, model or glob), each at the place it was written."""
    raw = sections.get("prices") or {}
    diagnostics: list[Diagnostic] = []
    seen: dict[tuple[str, str], str] = {}
    for index, entry in enumerate(raw.get("models") or ()):
        path: DocumentPath = ("prices", "models", index)
        provider, model = entry["provider"], entry["model"]
        if provider not in providers:
            known = ", ".join(sorted(providers)) or "none"
            diagnostics.append(
                _error(
                    places,
                    (*path, "provider"),
                    f"prices: unknown provider {provider!r}",
                    f"price models of a provider defined under providers: (defined: {known})",
                )
            )
        for name in PRICE_FIELDS:
            if name not in entry:
                continue
            value = Decimal(str(entry[name]))
            if value < 0:
                diagnostics.append(
                    _error(
                        places,
                        (*path, name),
                        f"prices: {name} of {provider}/{model} is negative ({entry[name]})",
                        "prices are per million tokens, 0 or more",
                    )
                )
            elif (value * MICRO) % 1:
                diagnostics.append(
                    _error(
                        places,
                        (*path, name),
                        f"prices: {name} of {provider}/{model} has more than 6 decimal places",
                        "write the price per million tokens with at most 6 decimals",
                    )
                )
        first = seen.get((provider, model))
        if first is None:
            seen[(provider, model)] = _where(places, (*path, "model"))
        else:
            diagnostics.append(
                _error(
                    places,
                    (*path, "model"),
                    f"prices: {provider}/{model} is priced twice: here and at {first}",
                    "give each provider and model (or glob) one entry",
                )
            )
    return diagnostics


def build_prices(sections: Mapping[str, Any]) -> PriceTable | None:
    """The table of sections that passed the schema and `check_prices`; None when no price is set (the
    request path then skips costing with one attribute check)."""
    raw = sections.get("prices") or {}
    models = raw.get("models") or ()
    if not models:
        return None
    entries = tuple(
        Price(
            provider=entry["provider"],
            model=entry["model"],
            input=_pico(entry["input"]),
            output=_pico(entry.get("output", 0)),
            cached_input=_pico(entry["cached_input"]) if "cached_input" in entry else None,
            cache_write=_pico(entry["cache_write"]) if "cache_write" in entry else None,
        )
        for entry in models
    )
    return PriceTable(raw.get("currency", DEFAULT_CURRENCY), entries)


def _pico(per_million: float | int) -> int:
    return int((Decimal(str(per_million)) * MICRO).to_integral_value(ROUND_HALF_UP))


def _is_glob(model: str) -> bool:
    return any(ch in model for ch in "*?[")


def _where(places: SectionPlaces, path: DocumentPath) -> str:
    where, line, column = places.find(path)
    return where if line is None else f"{where}:{line}:{column}"


def _error(places: SectionPlaces, path: DocumentPath, message: str, hint: str) -> Diagnostic:
    where, line, column = places.find(path)
    return Diagnostic(where, line, column, message, hint=hint, code="semantic")
