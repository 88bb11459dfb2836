"""The server's own fence on request heads, ahead of the app's 431 (`api/input_limits.py`).

httptools (uvicorn's fast parser, which `gateway serve` uses) keeps every byte of a request head until
the head ends, without a limit: an 8 MiB header would be held whole before the app could refuse it.
`HeadFenceProtocol` is uvicorn's httptools protocol counting the bytes received while a head is being
read; past `HEAD_FENCE_BYTES` (more than any allowed `settings.limits.max_header_bytes`) it answers 431
itself, in the error shape of the request's API, and closes the connection. At most the fence plus one
read (64 KiB) of a head is ever held.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.errors import ANTHROPIC_PATHS
from gateway.config.models import HEAD_FENCE_BYTES
from gateway.errors import HeadersTooLarge
from gateway.translate.anthropic_errors import anthropic_error_body


class HeadFenceProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the bytes of a request head."""

    head_limit = HEAD_FENCE_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_bytes = 0
        self.in_head = True  # between two requests the next head is being read

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.in_head and self.head_bytes > self.head_limit and not self.transport.is_closing():
            self.refuse_head()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True

    def refuse_head(self) -> None:
        message = f"the request head is larger than {self.head_limit} bytes, the most the server reads"
        error = HeadersTooLarge(message)
        url: bytes = getattr(self, "url", b"")  # set by uvicorn once a request line begins
        anthropic = url.startswith(ANTHROPIC_PATHS.encode())
        body = anthropic_error_body(error.status_code, message) if anthropic else error.body()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()
