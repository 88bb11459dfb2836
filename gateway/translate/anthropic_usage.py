"""Anthropic's usage block in the gateway's usage shape (OpenAI chat's), for accounting and metrics.

Anthropic counts cached input apart (`input_tokens` excludes `cache_read_input_tokens` and
`cache_creation_input_tokens`); OpenAI's `prompt_tokens` includes cached tokens and names them in
`prompt_tokens_details.cached_tokens`.
"""

from __future__ import annotations

from typing import Any


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI chat usage for an Anthropic `usage` object (missing counts are 0)."""
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + cache_write
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_creation_tokens": cache_write},
    }
