"""Config objects -> flat `{dotted.field: value}` maps that two sides are compared on.

Generic over dataclass fields (`compare=False` fields such as positions are skipped), so a field added to a
model later (a key's budget, a new limit) is compared and reported without a change here. Secrets become
`Secret` (a digest: equal or not, never shown); URLs lose their credentials, which become a `Secret` of
their own.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value, known by a digest of it: compared, never printed."""

    digest: str

    @classmethod
    def of(cls, value: str | bytes) -> Secret:
        data = value if isinstance(value, bytes) else value.encode()
        return cls(hashlib.sha256(data).hexdigest())


Value = Scalar | tuple[Scalar, ...] | Secret
Flat = dict[str, Value]

SECRET_FIELDS = frozenset({"api_key", "digest", "secret", "password", "token"})
SECRET_MAPPINGS = frozenset({"headers"})  # names are shown, values are secrets
URL_FIELDS = frozenset({"base_url", "proxy", "url", "endpoint"})
CREDENTIALS = " credentials"  # suffix of the field that stands for a URL's user:password


def flatten(value: Any, prefix: str = "", skip: frozenset[str] = frozenset()) -> Flat:
    """Every leaf of `value` (dataclasses, mappings, sequences of scalars) under a dotted name."""
    flat: Flat = {}
    _into(flat, prefix, value, skip)
    return flat


def _into(flat: Flat, name: str, value: Any, skip: frozenset[str]) -> None:
    leaf = name.rpartition(".")[2]
    if value is None or isinstance(value, (str, int, float, bool)):
        if leaf in SECRET_FIELDS and value is not None:
            flat[name] = Secret.of(str(value))
        elif leaf in URL_FIELDS and isinstance(value, str):
            url_into(flat, name, value)
        else:
            flat[name] = value
    elif isinstance(value, bytes):
        flat[name] = Secret.of(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if field.compare and field.name not in skip and not field.name.startswith("_"):
                _into(flat, _join(name, field.name), getattr(value, field.name), frozenset())
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if leaf in SECRET_MAPPINGS:
                flat[_join(name, str(key))] = Secret.of(str(item))
            else:
                _into(flat, _join(name, str(key)), item, frozenset())
    elif isinstance(value, (frozenset, set)):
        flat[name] = tuple(sorted(str(item) for item in value))
    elif isinstance(value, (tuple, list)):
        if all(item is None or isinstance(item, (str, int, float, bool)) for item in value):
            flat[name] = tuple(value)
        else:
            for index, item in enumerate(value):
                _into(flat, f"{name}[{index}]", item, frozenset())
    else:
        flat[name] = str(value)


def url_into(flat: Flat, name: str, url: str) -> None:
    """The URL without user:password; those, when present, as a secret of their own."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        flat[name] = url
        return
    host = parts.netloc.rpartition("@")[2]
    flat[name] = urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))
    flat[name + CREDENTIALS] = Secret.of(parts.netloc.rpartition("@")[0])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
