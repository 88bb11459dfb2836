"""Checks of a provider's wire settings the schema cannot express: headers that would break HTTP framing,
TLS files that must exist, TLS verification turned off, HTTP/2 without its package."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Severity
from .yaml_source import DocumentPath, SourceFile

# Set by the gateway's client from the URL and the body; a configured one would send two, or lie about
# the body's length: request smuggling toward the provider.
FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def check_wire(
    name: str, provider: dict[str, Any], source: SourceFile, path: DocumentPath
) -> Iterator[Diagnostic]:
    def at(
        where: DocumentPath, message: str, hint: str, severity: Severity = "error", *, key: bool = False
    ) -> Diagnostic:
        line, column = source.position(where, key=key)
        return Diagnostic(source.path, line, column, message, hint, severity=severity, code="semantic")

    for header in provider.get("headers") or {}:
        if header.lower() in FRAMING_HEADERS:
            yield at(
                (*path, "headers", header),
                f"header {header!r} of provider {name!r} is set by the gateway itself",
                "remove it: the gateway writes Host and Content-Length from the URL and the body, and keeps "
                "its connections alive",
                key=True,
            )
    tls = provider.get("tls") or {}
    if tls.get("verify") is False:
        yield at(
            (*path, "tls", "verify"),
            f"provider {name!r} does not verify its TLS certificate: anyone on the path can read its traffic",
            "trust the provider's CA with tls.ca_bundle instead, and remove verify: false",
            "warning",
        )
    base = Path(source.path).parent
    for field in ("ca_bundle", "client_cert", "client_key"):
        value = tls.get(field)
        if value and not (base / value).is_file():
            yield at(
                (*path, "tls", field),
                f"tls.{field} of provider {name!r} is not a file: {value}",
                "write a path to a PEM file, absolute or relative to this route file",
            )
    if tls.get("client_key") and not tls.get("client_cert"):
        yield at(
            (*path, "tls", "client_key"),
            f"provider {name!r} has a tls.client_key without a tls.client_cert",
            "add the client certificate (client_cert), or remove the key",
            key=True,
        )
    if provider.get("http2"):
        if provider.get("transport", "h1") != "httpx":
            yield at(
                (*path, "http2"),
                f"http2 of provider {name!r} needs transport: httpx",
                "add transport: httpx (the gateway's own client speaks HTTP/1.1)",
                key=True,
            )
        elif importlib.util.find_spec("h2") is None:
            yield at(
                (*path, "http2"),
                f"http2 of provider {name!r} needs the h2 package, which is not installed",
                "pip install h2 (or httpx[http2]) where the gateway runs",
                key=True,
            )
    if provider.get("type") == "mock":
        for field in ("proxy", "tls", "transport"):
            if field in provider:
                yield at(
                    (*path, field),
                    f"{field} of provider {name!r} is ignored: the mock provider answers in process",
                    f"remove {field}, or set another type",
                    "warning",
                    key=True,
                )
