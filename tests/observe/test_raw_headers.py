"""Reading one header from the ASGI scope's raw pairs (observe/raw_headers.py): what Starlette's
`Headers.get` answers, without its KeyError on a miss."""

from __future__ import annotations

from starlette.datastructures import Headers

from gateway.observe.raw_headers import header_mapping, header_value

RAW = [
    (b"host", b"127.0.0.1"),
    (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    (b"x-caf\xe9", b"cr\xe8me"),  # latin-1 on the wire, as Starlette decodes it
    (b"traceparent", b"00-11111111111111111111111111111111-2222222222222222-00"),
]


def test_the_first_value_or_none_as_starlette_answers() -> None:
    starlette = Headers(raw=RAW)
    for name in ("host", "traceparent", "x-caf\xe9", "x-request-id"):
        assert header_value(RAW, name.encode("latin-1")) == starlette.get(name)
    assert header_value([], b"host") is None


def test_the_mapping_keeps_each_names_first_value() -> None:
    mapping = header_mapping(RAW)
    assert mapping["traceparent"].startswith("00-0af7651916cd43dd")
    assert mapping == {name: Headers(raw=RAW)[name] for name in mapping}
