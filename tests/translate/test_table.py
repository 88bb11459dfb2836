"""The translator table and the config's list of translatable pairs (config/apis.py) say the same."""

from __future__ import annotations

from gateway.config.apis import TRANSLATABLE
from gateway.translate import TRANSLATORS


def test_the_config_knows_exactly_the_pairs_the_translators_serve() -> None:
    assert set(TRANSLATORS) == TRANSLATABLE
