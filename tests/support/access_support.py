"""Helpers for the access tests: route files with keys, a private Redis key prefix, chat calls."""

from __future__ import annotations

import contextlib
import os
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import redis

CHAT_BODY: dict[str, Any] = {"model": "mock", "messages": [{"role": "user", "content": "hello"}]}


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix no other test (or gateway) uses on the Redis at `url`; its keys are deleted afterwards."""
    prefix = f"gw-test-{os.urandom(6).hex()}"
    client = redis.Redis.from_url(url)
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


def redis_keys(url: str, prefix: str) -> list[str]:
    with contextlib.closing(redis.Redis.from_url(url, decode_responses=True)) as client:
        return sorted(client.scan_iter(match=f"{prefix}:*", count=500))


def keyed_routes_yaml(keys_yaml: str, *, settings_yaml: str = "", extra: str = "") -> str:
    """Route file: the built-in mock provider behind routes `mock` and `other`, plus the given sections.

    `keys_yaml` is the body of the `keys:` mapping (indented by the caller's dedent level).
    """
    text = textwrap.dedent(
        """\
        providers:
          mock: {type: mock, mock: {tokens: 4}}
        routes:
          mock:
            aliases: [mock-alias]
            targets: [{provider: mock}]
          other:
            targets: [{provider: mock}]
        """
    )
    if keys_yaml:
        text += "keys:\n" + textwrap.indent(textwrap.dedent(keys_yaml), "  ")
    if settings_yaml:
        text += "settings:\n" + textwrap.indent(textwrap.dedent(settings_yaml), "  ")
    return text + textwrap.dedent(extra)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ratelimit_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("x-ratelimit-") or name.startswith("retry-after")
    }
