"""Per-answer CPU of the H1 connection's parsing path (no sockets): send, feed a typical answer, release.

python bench/h1_parse.py        # us per answer, best of 5
"""

from __future__ import annotations

import timeit
from typing import Any

from gateway.providers.h1.connection import Connection, H1Response
from gateway.providers.h1.target import Origin

BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"content":"hi"}}]}' * 4
HEADERS = b"".join(b"x-header-%d: value-%d\r\n" % (n, n) for n in range(15))
ANSWER = b"HTTP/1.1 200 OK\r\n" + HEADERS + b"content-length: %d\r\n\r\n" % len(BODY) + BODY


class _Transport:
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool:
        return False


class _Pool:
    def release(self, connection: Any, reusable: bool) -> None:
        assert reusable


def main() -> None:
    connection = Connection(_Pool(), Origin("http", "up", 80))  # type: ignore[arg-type]
    connection.transport = _Transport()  # type: ignore[assignment]

    def one() -> None:
        response = H1Response(connection, None)
        connection.send(response, b"")
        connection.data_received(ANSWER)
        response.release()

    runs = 20_000
    best = min(timeit.repeat(one, number=runs, repeat=5))
    print(f"{best / runs * 1e6:.2f} us per answer ({len(ANSWER)} bytes, 16 headers)")


if __name__ == "__main__":
    main()
