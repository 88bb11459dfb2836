"""The TLS context of one provider's pool, from its `tls:` options. None is global: each pool has its own."""

from __future__ import annotations

import ssl

import httpx

from gateway.config.models import TlsOptions


def ssl_context_for(options: TlsOptions) -> ssl.SSLContext:
    """Verification on (certifi's CA bundle, as httpx's default, or `ca_bundle`) unless `verify: false`;
    the client certificate for mutual TLS when given; HTTP/1.1 offered by ALPN."""
    if options.ca_bundle is not None:
        context = ssl.create_default_context(cafile=options.ca_bundle)
    else:
        context = httpx.create_ssl_context()
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.client_cert is not None:
        context.load_cert_chain(options.client_cert, options.client_key)
    context.set_alpn_protocols(["http/1.1"])
    return context
