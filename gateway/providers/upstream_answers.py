"""Upstream answers a client must not see as they came: a redirect (3xx) and a refusal of the gateway's
own credentials (401/403).

Passed on, a 302 shows the client a Location it cannot use (and that may hold a token), and a 401 reads
to the client as its own gateway key being wrong. Both are the target's configuration problem: each
becomes a 502 naming the provider, and the attempt loop fails over to the next target without retrying
this one (`UpstreamError.target_misconfigured`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from gateway.errors import UpstreamAuthFailed, UpstreamError, UpstreamRedirect

logger = logging.getLogger("gateway.providers")

AUTH_STATUSES = frozenset({401, 403})
MASK = "***"
# Token-looking words an upstream may echo back in an error body (its own key, a bearer token).
_TOKEN_LIKE = re.compile(
    r"(?i)\b(?:bearer\s+)[^\s\"',]+|\b(?:sk|pk|rk|key|tok)[-_][A-Za-z0-9_\-*.]{6,}|\b[A-Za-z0-9_\-]{32,}\b"
)
_LOGGED_BODY_CHARS = 500


def unusable_answer(
    status_code: int,
    content: bytes,
    headers: Mapping[str, str],
    provider: str,
    secrets: Iterable[str] = (),
) -> UpstreamError | None:
    """The error to raise for an answer the client must not see as it came, or None for any other one."""
    if 300 <= status_code < 400:
        return UpstreamRedirect(
            f"provider {provider!r} redirected ({status_code}{_redirect_target(headers)}); the gateway "
            "does not follow redirects: check the provider's base_url"
        )
    if status_code in AUTH_STATUSES:
        if logger.isEnabledFor(logging.DEBUG):
            text = content[:_LOGGED_BODY_CHARS].decode("utf-8", "replace")
            logger.debug("provider %s answered %d: %s", provider, status_code, mask_secrets(text, secrets))
        return UpstreamAuthFailed(
            f"provider {provider!r} rejected the gateway's credentials ({status_code}); check the "
            "provider's api_key (and headers) in the gateway's configuration"
        )
    return None


def _redirect_target(headers: Mapping[str, str]) -> str:
    """`to host 'x'` from the Location header: its host only, never its path or query (they can hold
    tokens); a relative Location stays on the provider's own host."""
    location = headers.get("location")
    if not location:
        return ", no Location"
    try:
        host = urlsplit(location.strip()).hostname
    except ValueError:
        return ", unreadable Location"
    return f" to host {host!r}" if host else " to a path on its own host"


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every value of `secrets` (the provider's key and configured header values) and every
    token-looking word replaced by `***`."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
            if secret.lower().startswith("bearer "):
                text = text.replace(secret[7:], MASK)
    return _TOKEN_LIKE.sub(MASK, text)
