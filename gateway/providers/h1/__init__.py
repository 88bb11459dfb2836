"""The upstreams' wire: a lean HTTP/1.1 client on asyncio protocols and httptools, with a small pool.

Why our own: the gateway sends one kind of request (a POST with a small JSON body, or a health probe) to a
handful of origins, and under load the upstream client was the largest cost left. aiohttp's
`ClientSession` measured 68-91 us of CPU per request (a `ClientRequest`, a writer task, timers and trace
hooks each time), a bare httptools client ~10 (bench/upstream_clients.py). What this client does:
keep-alive pooling with a bounded wait for a slot (`pool.py`), connect / read / write timeouts,
content-length, chunked and until-close bodies within head limits (`limits.py`, `framing.py`), 1xx skipped,
gzip and deflate, TLS with the pool's own context, HTTP proxies (CONNECT and forwarding) and every address
of a host in turn (`connect.py`). What it does not: redirects, cookies, HTTP/2, `Expect: 100-continue`,
streamed request bodies (none of which the gateway uses; `transport: httpx` is there for the rest).

`H1Transport` implements the providers' `UpstreamTransport` seam (`providers/transport.py`), health probes
included. Errors are httpx's exceptions, which `map_upstream_errors()` maps to ours, chosen by what
happened: nothing sent (refused, unreachable, TLS, a full pool) is `httpx.ConnectError` (or
`httpx.PoolTimeout`), safe to fail over; a connection lost after the request went out is
`httpx.ReadError` or `httpx.RemoteProtocolError`.
"""

from gateway.providers.h1.connection import H1Response
from gateway.providers.h1.transport import ACCEPT_ENCODING, H1Transport

__all__ = ["ACCEPT_ENCODING", "H1Response", "H1Transport"]
