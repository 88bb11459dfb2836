"""`discover_models` in route files: the TTL it builds to, and the checks that it needs a glob route with a
target that passes the client's model name on."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config
from gateway.config.loader import LoadResult
from gateway.providers.model_list import model_ids

HEAD = "providers:\n  mock: {type: mock}\nroutes:\n"


def load(tmp_path: Path, route: str) -> LoadResult:
    (tmp_path / "routes.yaml").write_text(HEAD + route)
    return load_config([tmp_path])


def test_true_keeps_lists_300_seconds_and_a_ttl_sets_it(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, '  yi:\n    model: "yi-*"\n    discover_models: true\n    targets: [{provider: mock}]\n'
    )
    assert loaded.config is not None
    assert loaded.config.routes[0].discover_models == 300.0
    loaded = load(
        tmp_path,
        '  yi:\n    model: "yi-*"\n    discover_models: {ttl: 20}\n    targets: [{provider: mock}]\n',
    )
    assert loaded.config is not None
    assert loaded.config.routes[0].discover_models == 20.0
    loaded = load(tmp_path, '  yi:\n    model: "yi-*"\n    targets: [{provider: mock}]\n')
    assert loaded.config is not None
    assert loaded.config.routes[0].discover_models is None


def test_an_exact_route_cannot_discover(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, "  yi:\n    model: yi-large\n    discover_models: true\n    targets: [{provider: mock}]\n"
    )
    assert loaded.config is None
    (error,) = [d for d in loaded.diagnostics if d.severity == "error"]
    assert (error.line, error.column) == (6, 5)
    assert "is not a glob" in error.message


def test_every_target_renaming_is_a_warning(tmp_path: Path) -> None:
    route = '  yi:\n    model: "yi-*"\n    discover_models: true\n    targets: [{provider: mock, model: m}]\n'
    loaded = load(tmp_path, route)
    assert loaded.config is not None
    (warning,) = [d for d in loaded.diagnostics if d.severity == "warning"]
    assert "every target renames the model" in warning.message


def test_a_bad_ttl_is_refused_by_the_schema(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, '  yi:\n    model: "yi-*"\n    discover_models: {ttl: 0}\n    targets: [{provider: mock}]\n'
    )
    assert loaded.config is None
    assert any("discover_models" in d.message for d in loaded.diagnostics)


def test_model_ids_reads_openai_and_anthropic_lists_and_refuses_the_rest() -> None:
    assert model_ids(200, b'{"object":"list","data":[{"id":"a"},{"id":"b"},{"id":"a"},{"x":1}]}') == (
        "a",
        "b",
    )
    assert model_ids(200, b'{"data":[{"type":"model","id":"claude-x"}],"has_more":false}') == ("claude-x",)
    for status, content in ((500, b"{}"), (200, b"not json"), (200, b'{"data": 3}'), (200, b"[]")):
        try:
            model_ids(status, content)
        except ValueError:
            continue
        raise AssertionError(f"accepted {status} {content!r}")
