"""What every inference endpoint does with a request: open its exchange, admit it, answer it whole or as
a stream, and record every exit (an error as it is answered, a bug as a 500 whose traceback is only
logged). The endpoints differ only in their API, their body checks and the client headers they pass on.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.admit import BodyParser, admit, open_exchange
from gateway.api.respond import respond_complete, respond_stream
from gateway.api.state import gateway_state
from gateway.config.models import ApiName
from gateway.errors import GatewayError


async def serve_request(
    request: Request,
    api: ApiName,
    parse: BodyParser,
    forwarded: tuple[tuple[str, str], ...] = (),
    *,
    force_asgi: bool = False,
) -> ASGIApp:
    """The answer to one request of `api` (`force_asgi`: streams use the ASGI streamer whatever the
    route says, for `/v1/chat/completions/asgi`)."""
    state = gateway_state(request)
    exchange = open_exchange(request, state)
    try:
        runtime = await admit(request, state, exchange, api, parse, forwarded)
        ctx = exchange.ctx
        assert ctx is not None  # admit routed the request
        if not ctx.stream:
            return await respond_complete(
                runtime.dispatcher, exchange, ctx, request.receive, state.late_watches
            )
        return await respond_stream(request, state, runtime.dispatcher, exchange, ctx, force_asgi=force_asgi)
    except GatewayError as exc:
        await exchange.failed(exc)
        raise
    except Exception as exc:  # a bug: recorded and answered 500 like any error, its traceback only logged
        raise await exchange.crashed(exc) from None
