"""The H1 client's gaps closed (issue 13): interim answers, limits on the head, framing faults, and bytes
that arrive where no answer is expected. Each answer comes over a real loopback socket, often in pieces."""

from __future__ import annotations

import zlib

import httpx
import pytest

from tests.providers.wire_support import Outcome, bytewise, pieces, run

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def assert_ok(outcome: Outcome, *, reused: bool = True) -> None:
    assert outcome.error is None, outcome.error
    assert (outcome.status, outcome.body, outcome.reused) == (200, b"ok", reused)


def assert_protocol_error(outcome: Outcome, match: str) -> None:
    assert isinstance(outcome.error, httpx.RemoteProtocolError), repr(outcome.error)
    assert match.lower() in str(outcome.error).lower(), str(outcome.error)
    assert outcome.reused is False  # a connection that spoke nonsense is closed, never pooled


# 1xx: interim answers are skipped, their headers left out; 101 is an answer we never asked for.


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"],
)
def test_an_interim_answer_is_skipped_and_its_headers_do_not_leak(interim: bytes) -> None:
    for answer in ([interim + OK], [interim, OK], bytewise(interim + OK)):
        outcome = run(answer)
        assert_ok(outcome)
        assert outcome.headers == {"content-length": "2"}


def test_several_interim_answers_are_skipped() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
    assert_ok(run([interim * 3 + OK]))


def test_an_interim_answer_and_then_the_end_of_the_connection_is_an_error() -> None:
    outcome = run([b"HTTP/1.1 100 Continue\r\n\r\n"], close_after=True)
    assert_protocol_error(outcome, "without an answer")


def test_switching_protocols_is_a_protocol_error() -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n\x81\x00"
    assert_protocol_error(run([answer]), "101")


# Limits on the head: 64 KiB in all, 16 KiB a line (gateway/providers/h1/limits.py says why).


def head_with(*lines: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + b"content-length: 2\r\n\r\nok"
    )


def test_a_head_over_64_kib_is_refused_even_when_it_arrives_in_one_read() -> None:
    answer = head_with(*(b"x-filler-%d: %s" % (index, b"a" * 1000) for index in range(70)))
    assert_protocol_error(run([answer]), "64 KiB")


def test_a_head_just_under_the_limit_is_read() -> None:
    answer = head_with(*(b"x-filler-%d: %s" % (index, b"a" * 1000) for index in range(60)))
    outcome = run(pieces(answer, 1000, 30_000))
    assert_ok(outcome)
    assert outcome.headers is not None and len(outcome.headers) == 61


def test_a_head_that_never_ends_is_refused_once_past_the_limit_not_at_the_read_timeout() -> None:
    lines = [b"x-filler-%d: %s\r\n" % (index, b"a" * 10_000) for index in range(10)]
    outcome = run([b"HTTP/1.1 200 OK\r\n", *lines], read_timeout=5)  # 100 KiB, then the upstream is silent
    assert_protocol_error(outcome, "64 KiB")


def test_a_header_line_over_16_kib_is_refused() -> None:
    assert_protocol_error(run([head_with(b"x-big: " + b"a" * 17_000)]), "16 KiB")
    assert_ok(run([head_with(b"x-big: " + b"a" * 16_000)]))


def test_a_status_line_over_16_kib_is_refused() -> None:
    answer = b"HTTP/1.1 200 " + b"O" * 17_000 + b"\r\ncontent-length: 2\r\n\r\nok"
    assert_protocol_error(run([answer]), "16 KiB")


def test_trailers_are_bounded_like_the_head_and_never_become_headers() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
    outcome = run([chunked + b"x-trailer: 1\r\n\r\n"])
    assert_ok(outcome)
    assert outcome.headers == {"transfer-encoding": "chunked"}
    trailers = b"".join(b"x-trailer-%d: %s\r\n" % (index, b"a" * 1000) for index in range(70))
    assert_protocol_error(run([chunked + trailers + b"\r\n"]), "64 KiB")


# Framing.


def test_a_duplicate_identical_content_length_is_accepted() -> None:
    for head in (b"content-length: 2\r\ncontent-length: 2", b"content-length: 2, 2"):
        answer = b"HTTP/1.1 200 OK\r\n" + head + b"\r\nx-after: 1\r\n\r\nok"
        for split in ([answer], pieces(answer, 20, 40), bytewise(answer)):
            outcome = run(split)
            assert_ok(outcome)
            assert outcome.headers == {"content-length": "2", "x-after": "1"}


def test_a_duplicate_content_length_after_an_interim_answer_is_accepted() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok"
    )
    assert_ok(run(pieces(answer, 30, 60)))


@pytest.mark.parametrize("head", [b"content-length: 2\r\ncontent-length: 3", b"content-length: 2, 3"])
def test_conflicting_content_lengths_are_refused(head: bytes) -> None:
    assert_protocol_error(run([b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\nok"]), "content-length")


def test_content_length_with_chunked_is_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert_protocol_error(run([answer]), "content-length")


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"identity"])
def test_a_transfer_coding_other_than_chunked_is_refused(coding: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: " + coding + b"\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert_protocol_error(run([answer]), "transfer-encoding")


def test_bare_lf_line_endings_in_the_head_are_accepted() -> None:
    answer = b"HTTP/1.1 200 OK\ncontent-length: 2\nx-a: 1\n\nok"
    for split in ([answer], bytewise(answer)):
        outcome = run(split)
        assert_ok(outcome)
        assert outcome.headers == {"content-length": "2", "x-a": "1"}


def test_obsolete_line_folding_is_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nx-a: 1\r\n  2\r\ncontent-length: 2\r\n\r\nok"
    assert_protocol_error(run([answer]), "invalid HTTP")


def test_http_1_0_keeps_the_connection_only_when_it_says_so() -> None:
    assert_ok(run([b"HTTP/1.0 200 OK\r\n\r\nok"], close_after=True), reused=False)
    assert_ok(run([b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"]), reused=False)
    assert_ok(run([b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok"]))


def test_bytes_after_a_complete_answer_close_the_connection_and_leave_the_answer_alone() -> None:
    surplus = b"HTTP/1.1 500 Oops\r\ncontent-length: 1\r\n\r\nz"
    for split in ([OK + surplus], [OK, surplus], [OK + surplus[:10]]):
        outcome = run(split, settle=0.05)
        assert_ok(outcome, reused=False)
        assert outcome.headers == {"content-length": "2"}


def test_a_raw_deflate_body_arriving_a_byte_at_a_time_is_decoded() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = compressor.compress(b"ok" * 50) + compressor.flush()
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: deflate\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    outcome = run(pieces(answer, *range(answer.index(b"\r\n\r\n") + 4, len(answer))))
    assert outcome.error is None, outcome.error
    assert outcome.body == b"ok" * 50
