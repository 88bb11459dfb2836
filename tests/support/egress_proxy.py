"""An HTTP proxy of our own on loopback, for the egress tests: CONNECT tunnels (https upstreams) and
absolute-form forwarding (http upstreams), with optional Basic credentials. It records what it saw."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ProxyLog:
    tunnels: list[str] = field(default_factory=list)  # CONNECT authorities
    forwarded: list[str] = field(default_factory=list)  # absolute URLs of forwarded requests
    authorizations: list[str | None] = field(default_factory=list)  # Proxy-Authorization seen, per request


class EgressProxy:
    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.expected = (
            "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            if credentials
            else None
        )
        self.log = ProxyLog()
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EgressProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)
            }
            authorization = headers.get("proxy-authorization")
            self.log.authorizations.append(authorization)
            if self.expected is not None and authorization != self.expected:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                self.log.tunnels.append(target)
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                upstream = up_writer
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await _pipe_both(reader, writer, up_reader, up_writer)
                return
            self.log.forwarded.append(target)
            url = urlsplit(target)
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
            upstream = up_writer
            origin_form = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-authorization")]
            up_writer.write(
                f"{method} {origin_form} HTTP/1.1\r\n".encode() + "\r\n".join(kept).encode() + b"\r\n\r\n"
            )
            await _pipe_both(reader, writer, up_reader, up_writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            if upstream is not None:
                upstream.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        sink.close()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
