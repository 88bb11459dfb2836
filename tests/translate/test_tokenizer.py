"""The cl100k tokenizer: known counts, the same encoding as tiktoken's own, the file check, loading once
and lazily, and loading with no network at all (and writing nothing)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from gateway.translate import tokenizer as tokenizer_module
from gateway.translate.tokenizer import (
    LazyTokenizer,
    Tokenizer,
    TokenizerUnavailable,
    load_cl100k,
)
from tests.support.cl100k_oracle import oracle_encoding

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cl100k() -> Tokenizer:
    return load_cl100k()


# Counts under cl100k_base from OpenAI's cookbook "How to count tokens with tiktoken".
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("tiktoken is great!", 6),
        ("antidisestablishmentarianism", 6),
        ("2 + 2 = 4", 7),
        ("お誕生日おめでとう", 9),
        ("hello world", 2),
        ("", 0),
    ],
)
def test_known_counts(cl100k: Tokenizer, text: str, tokens: int) -> None:
    assert cl100k.count(text) == tokens


def test_the_token_ids_are_cl100k_ones(cl100k: Tokenizer) -> None:
    assert cl100k.encoding.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]


def test_special_token_text_in_a_prompt_counts_as_text(cl100k: Tokenizer) -> None:
    assert cl100k.count("<|endoftext|>") > 1  # not the one special token: a user typed it


def test_the_encoding_is_tiktokens_own(cl100k: Tokenizer) -> None:
    official = oracle_encoding()
    mine = cl100k.encoding
    assert mine._pat_str == official._pat_str
    assert mine._special_tokens == official._special_tokens
    assert mine.n_vocab == official.n_vocab == 100277
    for text in ("Hello there friend", "def f(x):\n    return x ** 2\n", "naïve café, 東京 🚀", " \n\t "):
        assert mine.encode_ordinary(text) == official.encode_ordinary(text)


def test_a_file_that_is_not_openais_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_module, "ENCODING_SHA256", "0" * 64)
    with pytest.raises(TokenizerUnavailable, match="sha256"):
        load_cl100k()


def test_a_missing_file_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_module, "ENCODING_FILE", "data/no-such.tiktoken")
    with pytest.raises(TokenizerUnavailable, match="not installed"):
        load_cl100k()


async def test_concurrent_first_callers_share_one_load_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, cl100k: Tokenizer
) -> None:
    threads: list[threading.Thread] = []

    def load() -> Tokenizer:
        threads.append(threading.current_thread())
        return cl100k

    monkeypatch.setattr(tokenizer_module, "load_cl100k", load)
    lazy = LazyTokenizer()
    assert not lazy.loaded  # nothing at construction
    results = await asyncio.gather(*(lazy.get() for _ in range(5)))
    assert all(result is cl100k for result in results)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert await lazy.get() is cl100k and len(threads) == 1


async def test_a_failed_load_is_logged_once_and_answers_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Tokenizer:
        raise TokenizerUnavailable("the cl100k encoding file is not installed")

    monkeypatch.setattr(tokenizer_module, "load_cl100k", broken)
    lazy = LazyTokenizer()
    with caplog.at_level(logging.ERROR, logger="gateway.tokens"):
        assert await lazy.get() is None
        assert await lazy.get() is None
    assert [record.getMessage() for record in caplog.records] == [
        "no tokenizer: cut streams are estimated by characters instead: "
        "the cl100k encoding file is not installed"
    ]


def test_importing_the_gateway_does_not_import_tiktoken() -> None:
    """Idle RSS: tiktoken (~3 MB) and the encoding are loaded by the first cut stream only."""
    code = "import sys, gateway.api.app, gateway.translate.tokenizer; print('tiktoken' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


LOAD_OFFLINE = textwrap.dedent(
    """
    import socket, sys
    def refuse(*args, **kwargs):
        raise OSError("network use attempted")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    from gateway.translate.tokenizer import load_cl100k
    print(load_cl100k().count("tiktoken is great!"), "requests" in sys.modules)
    """
)


def test_the_encoding_loads_without_network_and_writes_nothing(tmp_path: Path) -> None:
    """In a network namespace of its own (`unshare -n`: no interface but a down loopback), with sockets
    refused too, and tiktoken's cache directories pointed at empty ones: the load counts, never imports
    tiktoken's downloader (`requests`), and leaves both directories empty."""
    cache, temp = tmp_path / "tiktoken-cache", tmp_path / "tmp"
    cache.mkdir()
    temp.mkdir()
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "TMPDIR": str(temp)}
    command = [sys.executable, "-c", LOAD_OFFLINE]
    unshare = shutil.which("unshare")
    if unshare is not None and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        command = [unshare, "-n", *command]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6", "False"]
    assert list(cache.iterdir()) == [] and list(temp.iterdir()) == []


async def test_a_broken_install_answers_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Tokenizer:
        raise ImportError("tiktoken's extension module failed to load")

    monkeypatch.setattr(tokenizer_module, "load_cl100k", broken)
    assert await LazyTokenizer().get() is None
