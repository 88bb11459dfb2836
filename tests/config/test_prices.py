"""The `prices:` section: what is built, what a request costs, and what `gateway validate-config` refuses
(at file:line:col, run as a subprocess the way an operator or CI runs it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.prices import Price, PriceTable, format_cost

ROUTES = """\
providers:
  oa: {type: mock}
  an: {type: mock}
routes:
  chat:
    targets: [{provider: oa}]
"""


def write(tmp_path: Path, prices: str, name: str = "routes.yaml", routes: str = ROUTES) -> Path:
    path = tmp_path / name
    path.write_text(routes + textwrap.dedent(prices), encoding="utf-8")
    return path


def test_no_prices_builds_no_table(tmp_path: Path) -> None:
    config = load_config([write(tmp_path, "")]).config
    assert config is not None
    assert config.prices is None


def test_prices_are_built_in_pico_units_per_token(tmp_path: Path) -> None:
    prices = """\
    prices:
      currency: EUR
      models:
        - {provider: oa, model: "gpt-4o-mini*", input: 0.15, output: 0.6, cached_input: 0.075}
        - {provider: an, model: claude, input: 3, output: 15, cached_input: 0.3, cache_write: 3.75}
        - {provider: oa, model: embed, input: 0.02}
    """
    config = load_config([write(tmp_path, prices)]).config
    assert config is not None and config.prices is not None
    assert config.prices.currency == "EUR"
    assert config.prices.entries == (
        Price("oa", "gpt-4o-mini*", 150_000, 600_000, 75_000, None),
        Price("an", "claude", 3_000_000, 15_000_000, 300_000, 3_750_000),
        Price("oa", "embed", 20_000, 0, None, None),
    )


def test_currency_defaults_to_usd_and_may_sit_in_another_file(tmp_path: Path) -> None:
    write(tmp_path, "prices:\n  models: [{provider: oa, model: m, input: 1}]\n", "a.yaml")
    config = load_config([tmp_path]).config
    assert config is not None and config.prices is not None
    assert config.prices.currency == "USD"
    write(tmp_path, "prices:\n  currency: GBP\n", "b.yaml", routes="")
    config = load_config([tmp_path]).config
    assert config is not None and config.prices is not None
    assert config.prices.currency == "GBP"


def test_exact_entry_wins_over_glob_and_first_glob_wins() -> None:
    table = PriceTable(
        "USD",
        (
            Price("p", "gpt-*", 1),
            Price("p", "gpt-4*", 2),
            Price("p", "gpt-4o", 3),
            Price("q", "gpt-4o", 4),
        ),
    )
    assert table.price("p", "gpt-4o") == Price("p", "gpt-4o", 3)
    assert table.price("p", "gpt-4.1") == Price("p", "gpt-*", 1)
    assert table.price("q", "gpt-4o-mini") is None
    assert table.price("r", "gpt-4o") is None
    assert table.price("p", "gpt-4o") is table.price("p", "gpt-4o")  # memoised


@pytest.mark.parametrize(
    ("usage", "nano"),
    [
        # 1000 * 0.15 + 200 * 0.60 per million = 0.00027
        ({"prompt_tokens": 1000, "completion_tokens": 200}, 270_000),
        # 400 of the prompt read from cache at 0.075: 600 * 0.15 + 400 * 0.075 + 200 * 0.6
        (
            {
                "prompt_tokens": 1000,
                "completion_tokens": 200,
                "prompt_tokens_details": {"cached_tokens": 400},
            },
            240_000,
        ),
        # cache writes without a cache_write price cost the input price
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 0,
                "prompt_tokens_details": {"cache_creation_tokens": 10},
            },
            1_500,
        ),
        ({"prompt_tokens": 1, "completion_tokens": 0}, 150),
        ({}, 0),
    ],
)
def test_cost_of_a_usage_block(usage: dict[str, object], nano: int) -> None:
    price = Price("p", "m", input=150_000, output=600_000, cached_input=75_000)
    assert price.cost(usage) == nano


def test_costs_round_half_up_to_nano_units_once_per_request() -> None:
    price = Price("p", "m", input=1_500)  # 0.0015 per million tokens: 1.5 nano-units a token
    assert price.cost({"prompt_tokens": 1}) == 2  # 1.5 nano -> 2
    assert price.cost({"prompt_tokens": 3}) == 5  # 4.5 nano -> 5


def test_sums_are_exact_to_the_cent() -> None:
    price = Price("p", "m", input=150_000, output=600_000)
    total = sum(price.cost({"prompt_tokens": 7, "completion_tokens": 3}) for _ in range(1_000_000))
    assert format_cost(total) == "2.850000"  # float sums of 2.85e-6 drift at this count


@pytest.mark.parametrize(
    ("nano", "text"),
    [(0, "0.000000"), (123_000, "0.000123"), (1_500, "0.0000015"), (3_000_000_007, "3.000000007")],
)
def test_format_cost(nano: int, text: str) -> None:
    assert format_cost(nano) == text


ERRORS = [
    pytest.param(
        """\
        prices:
          models:
            - {provider: openai, model: gpt-4o, input: 1}
        """,
        ["routes.yaml:9:18: error: prices: unknown provider 'openai'"],
        id="unknown-provider",
    ),
    pytest.param(
        """\
        prices:
          models:
            - provider: oa
              model: gpt-4o
              input: 1
              output: -2
        """,
        ["routes.yaml:12:15: error: prices: output of oa/gpt-4o is negative (-2)"],
        id="negative-price",
    ),
    pytest.param(
        """\
        prices:
          models:
            - {provider: oa, model: "gpt-*", input: 1}
            - {provider: an, model: "gpt-*", input: 1}
            - {provider: oa, model: "gpt-*", input: 2}
        """,
        ["routes.yaml:11:29: error: prices: oa/gpt-* is priced twice: here and at routes.yaml:9:29"],
        id="two-entries-for-one-glob",
    ),
    pytest.param(
        """\
        prices:
          models:
            - {provider: oa, model: m, input: 0.0000001}
        """,
        ["routes.yaml:9:39: error: prices: input of oa/m has more than 6 decimal places"],
        id="finer-than-six-decimals",
    ),
    pytest.param(
        """\
        prices:
          currency: usd
          models:
            - {provider: oa, model: m}
        """,
        [
            "routes.yaml:8:13: error: prices.currency: A currency is a three-letter code",
            "routes.yaml:10:7: error: prices.models[0] is missing the required key 'input'",
        ],
        id="schema-currency-and-missing-input",
    ),
]


@pytest.mark.parametrize(("prices", "expected"), ERRORS)
def test_validate_config_refuses_at_file_line_column(
    tmp_path: Path, prices: str, expected: list[str]
) -> None:
    write(tmp_path, prices)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "validate-config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    headlines = [
        line.replace(str(tmp_path) + "/", "") for line in result.stdout.splitlines() if ": error: " in line
    ]
    assert len(headlines) == len(expected), result.stdout
    for headline, start in zip(headlines, expected, strict=True):
        assert headline.startswith(start), result.stdout
