"""`GET /v1/models` under keys: a key sees the models it may use, and nothing without a key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from gateway.access.keys import hash_secret
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
