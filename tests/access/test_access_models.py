"""`GET /v1/models` and `/v1/models/{id}` under keys: a key sees the models it may use, and nothing
without a key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from gateway.access.keys import hash_secret
from gateway.config import load_config
from tests.support.access_support import keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.openai_schemas import validate_error, validate_model_list

NARROW_KEY = "sk-gw-narrow-0123456789"
WIDE_KEY = "sk-gw-wide-9876543210"


def test_models_list_follows_the_key_allowlist(write_routes: Callable[..., Path]) -> None:
    keys = f"""\
    narrow:
      secret: {hash_secret(NARROW_KEY)}
      models: [mock]
    wide:
      secret: {hash_secret(WIDE_KEY)}
    """
    with running_gateway(write_routes(keyed_routes_yaml(keys))) as gateway:
        base_url = f"{gateway.base_url}/v1"
        with openai.OpenAI(base_url=base_url, api_key=NARROW_KEY, timeout=CLIENT_TIMEOUT) as narrow:
            page = narrow.models.list()
            validate_model_list(page.model_dump(mode="json"))
            assert sorted(model.id for model in page.data) == ["mock", "mock-alias"]
        with openai.OpenAI(base_url=base_url, api_key=WIDE_KEY, timeout=CLIENT_TIMEOUT) as wide:
            assert sorted(model.id for model in wide.models.list().data) == ["mock", "mock-alias", "other"]
        with (
            openai.OpenAI(
                base_url=base_url, api_key="sk-gw-not-a-key", timeout=CLIENT_TIMEOUT, max_retries=0
            ) as stranger,
            pytest.raises(openai.AuthenticationError) as caught,
        ):
            stranger.models.list()
        assert caught.value.code == "invalid_api_key"
        validate_error(caught.value.response.json())


def test_models_retrieve_follows_the_key_allowlist(write_routes: Callable[..., Path]) -> None:
    keys = f"""\
    narrow:
      secret: {hash_secret(NARROW_KEY)}
      models: [mock]
    """
    with running_gateway(write_routes(keyed_routes_yaml(keys))) as gateway:
        base_url = f"{gateway.base_url}/v1"
        with openai.OpenAI(
            base_url=base_url, api_key=NARROW_KEY, timeout=CLIENT_TIMEOUT, max_retries=0
        ) as client:
            model = client.models.retrieve("mock-alias")
            assert (model.id, model.object, model.owned_by) == ("mock-alias", "model", "gateway")
            for hidden in ("other", "no-such-model"):  # not allowed, and not there: the same 404
                with pytest.raises(openai.NotFoundError) as caught:
                    client.models.retrieve(hidden)
                assert caught.value.code == "model_not_found"
                validate_error(caught.value.response.json())
        with (
            openai.OpenAI(
                base_url=base_url, api_key="sk-gw-nope", timeout=CLIENT_TIMEOUT, max_retries=0
            ) as bad,
            pytest.raises(openai.AuthenticationError),
        ):
            bad.models.retrieve("mock")


def test_models_retrieve_answers_names_a_glob_route_matches(write_routes: Callable[..., Path]) -> None:
    routes = """\
    providers:
      mock: {type: mock}
    routes:
      yi:
        model: "yi-*"
        targets: [{provider: mock}]
    """
    with running_gateway(write_routes(routes)) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT)
        assert client.models.retrieve("yi-lightning").id == "yi-lightning"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4o")


def test_a_glob_route_shows_its_listed_models(write_routes: Callable[..., Path]) -> None:
    routes = """\
    providers:
      mock: {type: mock}
    routes:
      yi:
        model: "yi-*"
        listed_models: [yi-lightning, yi-large]
        targets: [{provider: mock}]
      yi-large-pinned:
        model: yi-large
        targets: [{provider: mock}]
    """
    with running_gateway(write_routes(routes)) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT)
        # yi-large is an exact route of its own: listed once, for the route that answers it.
        assert [model.id for model in client.models.list().data] == ["yi-large", "yi-lightning"]


def test_a_listed_model_the_glob_does_not_match_is_refused(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(
        'providers:\n  mock: {type: mock}\nroutes:\n  yi:\n    model: "yi-*"\n'
        "    listed_models: [yi-lightning, gpt-4o]\n    targets: [{provider: mock}]\n"
    )
    result = load_config([tmp_path], environ={})
    assert result.config is None
    [error] = result.errors
    assert (error.line, error.column) == (6, 35) and "'gpt-4o'" in error.message


def test_the_anthropic_sdk_lists_and_retrieves_models_in_its_own_shape(
    write_routes: Callable[..., Path],
) -> None:
    routes = """\
    providers:
      mock: {type: mock}
    routes:
      claude-sonnet-4-5:
        targets: [{provider: mock}]
      yi:
        model: "yi-*"
        listed_models: [yi-large]
        targets: [{provider: mock}]
    """
    with running_gateway(write_routes(routes)) as gateway:
        client = anthropic.Anthropic(base_url=gateway.base_url, api_key="x", timeout=30.0)
        page = client.models.list()
        assert [model.id for model in page.data] == ["claude-sonnet-4-5", "yi-large"]
        assert page.first_id == "claude-sonnet-4-5" and page.last_id == "yi-large" and not page.has_more
        info = client.models.retrieve("yi-lightning")
        assert (info.type, info.id, info.display_name, info.lifecycle) == (
            "model",
            "yi-lightning",
            "yi-lightning",
            "active",
        )
        assert info.created_at.tzinfo is not None
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve("gpt-4o")
        # Without anthropic-version the same paths answer OpenAI's shape.
        plain = httpx.get(f"{gateway.base_url}/v1/models", timeout=CLIENT_TIMEOUT).json()
        validate_model_list(plain)
