"""The served config version as the `x-gateway-config-version` response header, encoded once per config
snapshot: a response pays one list append, never a format or an encode."""

from __future__ import annotations

CONFIG_VERSION_HEADER = "x-gateway-config-version"
HeaderPair = tuple[bytes, bytes]


def version_header(version: str) -> HeaderPair:
    """The raw (name, value) header pair for `version` (a short hex hash: latin-1 safe)."""
    return CONFIG_VERSION_HEADER.encode("latin-1"), version.encode("latin-1")
