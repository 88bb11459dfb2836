"""What charging cut streams by the cl100k tokenizer costs (`translate/tokenizer.py`,
`StreamStats.streamed`): loading the encoding (time, RSS), counting (speed), and what keeping a priced
stream's pieces adds per piece the relay hands out.

    .venv/bin/python bench/tokenizer_cost.py        # ~30 s

Loading is measured in fresh processes (import of tiktoken included: the gateway imports it only then);
the relay runs in-process over a scripted upstream, one event per read (the most pieces per event, so the
worst case for a per-piece cost), with `stats.streamed` off and on, rounds alternating.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

if __package__ in (None, ""):  # run as a script: make `bench` and `gateway` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config.models import ProviderConfig
from gateway.streaming.relay import StreamRelay, StreamStats
from gateway.streaming.stats import STREAMED_LIMIT
from gateway.translate.openai_openai import OpenAIChatToOpenAIChat
from gateway.translate.prompt_tokens import count_prompt
from gateway.translate.streamed_tokens import count_streamed
from gateway.translate.tokenizer import load_cl100k

ROOT = Path(__file__).resolve().parent.parent
LOADS, ROUNDS, PIECES = 5, 9, 20_000

LOAD = """
import time
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
before, started = rss(), time.perf_counter()
from gateway.translate.tokenizer import load_cl100k
tokenizer = load_cl100k()
print(time.perf_counter() - started, rss() - before)
"""


def load_figures() -> tuple[float, float]:
    """Median seconds and kB of RSS that importing tiktoken and loading cl100k add to a fresh process."""
    seconds, kilobytes = [], []
    for _ in range(LOADS):
        out = subprocess.run(
            [sys.executable, "-c", LOAD], capture_output=True, text=True, check=True, cwd=ROOT
        )
        took, added = out.stdout.split()
        seconds.append(float(took))
        kilobytes.append(float(added))
    return statistics.median(seconds), statistics.median(kilobytes)


def chunk(text: str) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def count_figures() -> dict[str, float]:
    tokenizer = load_cl100k()
    prose = (ROOT / "README.md").read_text()
    code = "".join(path.read_text() for path in sorted((ROOT / "gateway" / "streaming").glob("*.py")))
    figures: dict[str, float] = {}
    for name, text in (("prose", prose), ("code", code)):
        took = float("inf")
        for _ in range(5):  # the least disturbed of five (the machine is shared)
            started = time.perf_counter()
            tokens = tokenizer.count(text)
            took = min(took, time.perf_counter() - started)
        figures[f"{name}_mb_per_s"] = len(text.encode()) / took / 1e6
        figures[f"{name}_chars_per_token"] = len(text) / tokens
    # A cut stream at the retention limit: 1 MiB of chat frames, parsed and counted.
    words = prose.split()
    frames, size = [], 0
    while size < STREAMED_LIMIT:
        frame = chunk(" " + words[len(frames) % len(words)])
        frames.append(frame)
        size += len(frame)
    started = time.perf_counter()
    count_streamed(tokenizer, frames)
    figures["one_mib_stream_ms"] = (time.perf_counter() - started) * 1000
    figures["one_mib_stream_events"] = len(frames)
    # A long chat prompt: 200 messages of ~100 words.
    body = {
        "messages": [{"role": "user", "content": " ".join(words[i : i + 100])} for i in range(0, 20_000, 100)]
    }
    started = time.perf_counter()
    count_prompt(tokenizer, body)
    figures["prompt_200_messages_ms"] = (time.perf_counter() - started) * 1000
    return figures


class Reads:
    """An upstream of `PIECES` reads of one event each, then `[DONE]`."""

    complete = True

    def __init__(self, event: bytes) -> None:
        self.event = event

    async def __aiter__(self) -> AsyncIterator[bytes]:
        event = self.event
        for _ in range(PIECES):
            yield event
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None


async def relay_once(keep: bool, events: OpenAIChatToOpenAIChat, event: bytes) -> float:
    stats = StreamStats("bench", "sim", "m")
    if keep:
        stats.streamed = []  # 20,000 pieces of ~90 bytes: all within the limit, every one appended
    relay = StreamRelay(Reads(event), stats, events=events)
    started = time.perf_counter()
    await relay.prime()
    async for _ in relay.frames():
        pass
    took = time.perf_counter() - started
    await relay.aclose()
    return took / PIECES


async def relay_figures() -> tuple[float, float]:
    config = ProviderConfig(name="sim", type="openai", base_url="http://sim.test/v1")
    events = OpenAIChatToOpenAIChat({}, config, stream=True)
    event = chunk(" token")
    off, on = [], []
    for _ in range(ROUNDS):
        off.append(await relay_once(False, events, event))
        on.append(await relay_once(True, events, event))
    return statistics.median(off), statistics.median(on)


def main() -> None:
    seconds, kilobytes = load_figures()
    print(f"load (import tiktoken + cl100k, fresh process, median of {LOADS}): {seconds * 1000:.0f} ms, "
          f"+{kilobytes / 1024:.1f} MiB RSS")  # fmt: skip
    for name, value in count_figures().items():
        print(f"{name}: {value:.2f}")
    off, on = asyncio.run(relay_figures())
    print(f"relay per piece (1 event per read, median of {ROUNDS} x {PIECES}): off {off * 1e9:.0f} ns, "
          f"kept {on * 1e9:.0f} ns, difference {(on - off) * 1e9:+.0f} ns")  # fmt: skip


if __name__ == "__main__":
    main()
