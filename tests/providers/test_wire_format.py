"""Raw upstream answers, each fed to the H1 client over a real loopback socket (whole, in pieces, and for
some a byte at a time), with h11 as the oracle: h11 parses the same bytes as a client, and our client must
agree with its verdict: error or not, status, headers, body (decoded: h11 leaves content-encoding to its
caller), and whether the connection may be reused. Where we differ from h11 on purpose, the case says
`ours=` and why, and both verdicts are asserted."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass

import h11
import pytest

from gateway.providers.h1.limits import MAX_HEAD
from tests.providers.wire_support import Outcome, bytewise, pieces, run


@dataclass(frozen=True)
class Verdict:
    """What a parser made of an answer; for an error only `error` counts."""

    error: bool
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None
    reused: bool | None = None


ERROR = Verdict(error=True)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    close_after: bool = False  # the upstream closes the connection after the answer
    by_byte: bool = False  # also fed a byte at a time
    ours: Verdict | None = None  # where we differ from h11 on purpose
    why: str = ""
    h11: Verdict | None = None  # h11's verdict, asserted where `ours` differs
    h11_accepts: bool = False  # where `ours` differs and h11's whole verdict is too long to spell out


def decoded(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def h11_verdict(raw: bytes, close_after: bool) -> Verdict:
    """h11 as a client that sent a POST, given `raw` (and the end of the connection if the upstream
    closes it); its head limit set to ours."""
    connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    connection.send(h11.Request(method="POST", target="/", headers=[("host", "up"), ("content-length", "2")]))
    connection.send(h11.Data(data=b"{}"))
    connection.send(h11.EndOfMessage())
    connection.receive_data(raw)
    if close_after:
        connection.receive_data(b"")
    response: h11.Response | None = None
    body = bytearray()
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return ERROR  # the answer never ended (our client would wait for its read timeout)
    except h11.RemoteProtocolError:
        return ERROR
    assert response is not None
    headers: dict[str, str] = {}
    for raw_name, raw_value in response.headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    # A connection the upstream closed is never reused, whatever h11's states say of the message.
    reused = connection.our_state is h11.DONE and connection.their_state is h11.DONE and not close_after
    return Verdict(
        False, response.status_code, headers, decoded(bytes(body), headers.get("content-encoding")), reused
    )


def our_verdict(outcome: Outcome) -> Verdict:
    if outcome.error is not None:
        return ERROR
    headers = dict(outcome.headers or {})
    if "transfer-encoding" in headers:  # h11 lower-cases this one value
        headers["transfer-encoding"] = headers["transfer-encoding"].lower()
    return Verdict(False, outcome.status, headers, outcome.body, outcome.reused)


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


BODY = b'{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}'
GZIPPED = gzip.compress(BODY)
ZLIB = zlib.compress(BODY)
RAW_DEFLATE = (lambda c: c.compress(BODY) + c.flush())(zlib.compressobj(wbits=-zlib.MAX_WBITS))


def fixed(body: bytes, *fields: bytes, status: bytes = b"200 OK", version: bytes = b"1.1") -> bytes:
    lines = [b"HTTP/" + version + b" " + status, *fields, b"content-length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


OK_HEADERS = {"content-length": str(len(BODY))}

CASES = [
    Case("content-length", fixed(BODY), by_byte=True),
    Case(
        "chunked",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked") + chunked(BODY[:7], BODY[7:]),
        by_byte=True,
    ),
    Case(
        "chunk extensions",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked") + b'5;a=b\r\n{"id"\r\n0;x\r\n\r\n',
    ),
    Case(
        "trailers",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked") + b"2\r\nok\r\n0\r\nx-usage: 3\r\n\r\n",
    ),
    Case(
        "chunked upper-case size",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: Chunked") + b"A\r\n0123456789\r\n0\r\n\r\n",
    ),
    Case("gzip body", fixed(GZIPPED, b"content-encoding: gzip"), by_byte=True),
    Case(
        "zlib deflate body, chunked",
        head(b"HTTP/1.1 200 OK", b"content-encoding: deflate", b"transfer-encoding: chunked")
        + chunked(ZLIB[:3], ZLIB[3:]),
    ),
    Case("raw deflate body", fixed(RAW_DEFLATE, b"content-encoding: deflate"), by_byte=True),
    Case("204 without body", head(b"HTTP/1.1 204 No Content")),
    Case("204 announcing a length", head(b"HTTP/1.1 204 No Content", b"content-length: 5")),
    Case("304 announcing a length", head(b"HTTP/1.1 304 Not Modified", b"content-length: 5", b"etag: x")),
    Case("100 Continue first", b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n" + fixed(BODY), by_byte=True),
    Case("103 Early Hints twice first", b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" * 2 + fixed(BODY)),
    Case(
        "101 Switching Protocols",
        head(b"HTTP/1.1 101 Switching Protocols", b"upgrade: websocket", b"connection: upgrade"),
    ),
    Case("duplicate identical content-length", fixed(BODY, b"content-length: %d" % len(BODY)), by_byte=True),
    Case("content-length listing one value twice", head(b"HTTP/1.1 200 OK", b"content-length: 2, 2") + b"ok"),
    Case(
        "conflicting content-lengths",
        head(b"HTTP/1.1 200 OK", b"content-length: 2", b"content-length: 3") + b"ok",
    ),
    Case("content-length not a number", head(b"HTTP/1.1 200 OK", b"content-length: +2") + b"ok"),
    Case(
        "content-length with chunked",
        head(b"HTTP/1.1 200 OK", b"content-length: 2", b"transfer-encoding: chunked") + chunked(b"ok"),
        ours=ERROR,
        why="RFC 9112 6.3: such a message 'ought to be handled as an error' (a smuggling and response "
        "splitting vector); llhttp refuses it, h11 lets chunked win",
        h11=Verdict(False, 200, {"content-length": "2", "transfer-encoding": "chunked"}, b"ok", True),
    ),
    Case(
        "transfer-encoding gzip",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: gzip") + b"ok",
        close_after=True,
    ),
    Case(
        "transfer-encoding gzip, chunked",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: gzip, chunked") + chunked(b"ok"),
    ),
    Case("bare LF in the head", b"HTTP/1.1 200 OK\ncontent-length: 2\nx-a: 1\n\nok", by_byte=True),
    Case(
        "bare LF in chunk lines",
        b"HTTP/1.1 200 OK\ntransfer-encoding: chunked\n\n2\nok\n0\n\n",
        close_after=True,
    ),
    Case("bare CR in the head", b"HTTP/1.1 200 OK\rcontent-length: 2\r\n\r\nok", close_after=True),
    Case(
        "obsolete line folding",
        head(b"HTTP/1.1 200 OK", b"x-a: 1", b"  2", b"content-length: 2") + b"ok",
        ours=ERROR,
        why="RFC 9112 5.2: a gateway MUST either refuse a response with obs-fold (as a 502) or unfold it; "
        "llhttp refuses it, h11 unfolds; no modern upstream folds, so we refuse rather than re-parse",
        h11=Verdict(False, 200, {"x-a": "1 2", "content-length": "2"}, b"ok", True),
    ),
    Case("space before the colon", head(b"HTTP/1.1 200 OK", b"content-length : 2") + b"ok"),
    Case("no reason phrase", head(b"HTTP/1.1 200", b"content-length: 2") + b"ok"),
    Case("HTTP/1.0, body until close", b"HTTP/1.0 200 OK\r\n\r\n" + BODY, close_after=True),
    Case("HTTP/1.0 with content-length", fixed(BODY, version=b"1.0")),
    Case(
        "HTTP/1.0 with keep-alive",
        fixed(BODY, b"connection: keep-alive", version=b"1.0"),
        ours=Verdict(False, 200, {"connection": "keep-alive", **OK_HEADERS}, BODY, True),
        why="RFC 9112 9.3: an HTTP/1.0 answer with the keep-alive option persists if the recipient wishes "
        "to honor it; llhttp does, h11 never keeps an HTTP/1.0 connection",
        h11=Verdict(False, 200, {"connection": "keep-alive", **OK_HEADERS}, BODY, False),
    ),
    Case("HTTP/1.0 with chunked", head(b"HTTP/1.0 200 OK", b"transfer-encoding: chunked") + chunked(b"ok")),
    Case(
        "HTTP/1.1, body until close",
        head(b"HTTP/1.1 200 OK", b"content-type: text/plain") + BODY,
        close_after=True,
    ),
    Case("connection: close", fixed(BODY, b"connection: close")),
    Case("body cut short", fixed(BODY)[:-5], close_after=True),
    Case(
        "chunked body cut short",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked") + b"5\r\nab",
        close_after=True,
    ),
    Case(
        "chunk without its CRLF",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked") + b"2\r\nokXX0\r\n\r\n",
    ),
    Case("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n", close_after=True),
    Case("closed without an answer", b"", close_after=True),
    Case("head cut short", b"HTTP/1.1 200 OK\r\ncontent-le", close_after=True),
    Case(
        "header value with latin-1",
        head(b"HTTP/1.1 200 OK", b"x-name: caf\xe9", b"content-length: 2") + b"ok",
    ),
    Case(
        "head of 60 KiB",
        head(b"HTTP/1.1 200 OK", *(b"x-f%d: %s" % (n, b"a" * 1000) for n in range(60)), b"content-length: 2")
        + b"ok",
    ),
    Case(
        "head over 64 KiB",
        head(b"HTTP/1.1 200 OK", *(b"x-f%d: %s" % (n, b"a" * 1000) for n in range(70)), b"content-length: 2")
        + b"ok",
        ours=ERROR,
        why="h11's max_incomplete_event_size (set to our 64 KiB) bounds only bytes buffered without a "
        "complete head: a larger head that arrives whole passes; our limit is on the head itself",
        h11_accepts=True,
    ),
    Case(
        "header line over 16 KiB",
        head(b"HTTP/1.1 200 OK", b"x-big: " + b"a" * 17_000, b"content-length: 2") + b"ok",
        ours=ERROR,
        why="our line limit (limits.py); h11 bounds only the whole head",
        h11=Verdict(False, 200, {"x-big": "a" * 17_000, "content-length": "2"}, b"ok", True),
    ),
    Case(
        "bytes after the answer",
        fixed(BODY) + b"HTTP/1.1 500 Oops\r\ncontent-length: 1\r\n\r\nz",
        ours=Verdict(False, 200, OK_HEADERS, BODY, False),
        why="nobody asked for a second answer: the connection is closed; h11 leaves the bytes in its buffer "
        "for a next cycle (and would take them as the next request's answer)",
        h11=Verdict(False, 200, OK_HEADERS, BODY, True),
    ),
]


def splits(case: Case) -> list[tuple[str, list[bytes]]]:
    raw = case.raw
    end_of_head = raw.find(b"\n\r\n") + 1 if b"\n\r\n" in raw else len(raw) // 2
    variants = [("whole", [raw]), ("thirds", pieces(raw, len(raw) // 3, 2 * len(raw) // 3))]
    variants.append(("in the head's end", pieces(raw, end_of_head, end_of_head + 1)))
    if case.by_byte:
        variants.append(("byte by byte", bytewise(raw)))
    return [(name, split) for name, split in variants if split]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_our_client_agrees_with_h11(case: Case) -> None:
    oracle = h11_verdict(case.raw, case.close_after)
    if case.ours is not None:
        assert case.why, "a deliberate difference says why"
        if case.h11_accepts:
            assert not oracle.error, "h11 no longer accepts it"
        else:
            assert oracle == case.h11, f"h11 no longer says what the table claims: {oracle}"
        assert oracle != case.ours
    expected = case.ours or oracle
    for name, split in splits(case) or [("empty", [])]:
        outcome = run(split, close_after=case.close_after, settle=0.02)
        assert our_verdict(outcome) == expected, f"{name}: {outcome}"


def test_the_table_covers_errors_bodies_and_both_reuse_decisions() -> None:
    verdicts = [case.ours or h11_verdict(case.raw, case.close_after) for case in CASES]
    assert any(verdict.error for verdict in verdicts)
    assert any(verdict.reused is True for verdict in verdicts)
    assert any(verdict.reused is False for verdict in verdicts)
