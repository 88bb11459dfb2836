"""The parts `gateway diff` is built from: generic field comparison (fields added to the config models
later are compared without a change in the diff), secrets and URL credentials, unset-variable
placeholders, and names that change route without their own route changing."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gateway.config import KeyLimits
from gateway.config.models import GatewayConfig
from gateway.config_diff.compare import Change, compare
from gateway.config_diff.flatten import Secret, flatten
from gateway.config_diff.render import MARKDOWN_ROWS, Diff, SideInfo, render_markdown
from gateway.config_diff.sides import Side, load_side
from gateway.config_diff.snapshot import model_names, snapshot
from gateway.diff_command import run_diff

FIXTURES = Path(__file__).parent.parent / "fixtures" / "diff"


@dataclass(frozen=True, slots=True)
class BudgetedLimits(KeyLimits):
    """A limit field another change may add (budgets): the diff must see it without knowing it."""

    usd_per_day: float | None = None


@dataclass(frozen=True, slots=True)
class ConfigWithBudgets(GatewayConfig):
    """A top-level section added later."""

    budgets: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


def _base(name: str) -> Side:
    folder = FIXTURES / "limit" / "old"
    return load_side(name, name, folder, folder, {}, shown_from=FIXTURES)


def _with(side: Side, config: GatewayConfig) -> Side:
    return dataclasses.replace(side, result=dataclasses.replace(side.result, config=config))


def _changes(old: Side, new: Side) -> list[tuple[str, str, str | None, object, object]]:
    names = list(dict.fromkeys(model_names(old.config) + model_names(new.config)))
    changes, _ = compare(snapshot(old, names), snapshot(new, names))
    return [(change.group, change.name, change.field, change.old, change.new) for change in changes]


def test_a_limit_field_added_later_is_compared_generically() -> None:
    old, new = _base("old"), _base("new")
    (key,) = new.config.access.keys
    assert key.limits.requests_per_minute == 60
    budgeted = dataclasses.replace(key, limits=BudgetedLimits(requests_per_minute=60, usd_per_day=25.0))
    access = dataclasses.replace(new.config.access, keys=(budgeted,))
    changed = _with(new, dataclasses.replace(new.config, access=access))
    assert _changes(old, changed) == [("keys", "search", "limits.usd_per_day", None, 25.0)]


def test_a_config_section_added_later_is_compared_in_the_settings() -> None:
    old, new = _base("old"), _base("new")
    fields = {item.name: getattr(new.config, item.name) for item in dataclasses.fields(new.config)}
    before = _with(old, ConfigWithBudgets(**fields))
    after = _with(new, ConfigWithBudgets(**fields, budgets=MappingProxyType({"search": 100.0})))
    assert _changes(before, after) == [("settings", "settings", "budgets.search", None, 100.0)]


def test_secrets_are_digests_and_urls_lose_their_credentials() -> None:
    @dataclass(frozen=True)
    class Provider:
        api_key: str
        proxy: str
        headers: Mapping[str, str]

    flat = flatten(Provider("sk-1", "http://user:pa55@proxy.example:3128", {"X-Team": "t0ken"}))
    assert flat["proxy"] == "http://***@proxy.example:3128"
    assert isinstance(flat["proxy credentials"], Secret)
    assert isinstance(flat["api_key"], Secret)
    assert isinstance(flat["headers.X-Team"], Secret)
    assert "pa55" not in repr(flat) and "sk-1" not in repr(flat) and "t0ken" not in repr(flat)
    other = flatten(Provider("sk-1", "http://user:other@proxy.example:3128", {"X-Team": "t0ken"}))
    assert [name for name in flat if flat[name] != other[name]] == ["proxy credentials"]


def test_unset_base_url_variables_are_shown_as_written(tmp_path: Path) -> None:
    for side, host in (("old", "${OLD_HOST}"), ("new", "${NEW_HOST}")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "routes.yaml").write_text(
            f"providers:\n  p:\n    type: openai\n    base_url: https://{host}/v1\n"
            "routes:\n  chat:\n    targets: [{provider: p}]\n"
        )
    out = io.StringIO()
    assert run_diff("old", "new", out=out, environ={}, cwd=tmp_path) == 1
    assert "  ~ provider p: base_url: https://${OLD_HOST}/v1 -> https://${NEW_HOST}/v1  " in out.getvalue()


def test_a_name_that_changes_route_is_reported_though_no_route_of_it_changed(tmp_path: Path) -> None:
    """The old side answers `claude-sonnet` by a glob; the new one adds an exact route for it."""
    for side in ("old", "new"):
        (tmp_path / side).mkdir()
        for name in ("providers.yaml", "routes.yaml"):
            text = (FIXTURES / "limit" / "old" / name).read_text()
            (tmp_path / side / name).write_text(text)
    (tmp_path / "new" / "sonnet.yaml").write_text(
        "routes:\n  sonnet:\n    model: claude-sonnet\n    targets: [{provider: claude, model: "
        "claude-sonnet-4}]\n"
    )
    out = io.StringIO()
    assert run_diff("old", "new", out=out, environ={}, cwd=tmp_path) == 1
    lines = out.getvalue().splitlines()
    assert (
        "  ~ model claude-sonnet: route: claude -> sonnet  (old old/routes.yaml:14 -> new new/sonnet.yaml:2)"
        in lines
    )
    assert (
        "  ~ model claude-sonnet: match: glob claude-* -> exact  (old old/routes.yaml:14 -> new "
        "new/sonnet.yaml:2)" in (lines)
    )
    assert (
        "  ~ model claude-sonnet: chain: [claude/claude-sonnet] -> [claude/claude-sonnet-4]  "
        "(old old/routes.yaml:14 -> new new/sonnet.yaml:2)"
    ) in lines
    assert "  + route sonnet: model claude-sonnet: claude/claude-sonnet-4  (new new/sonnet.yaml:2)" in lines


def test_markdown_stays_short_for_a_large_change() -> None:
    changes = [
        Change(
            "routes",
            f"route-{number:02d}",
            "changed",
            "strategy",
            "ordered",
            "weighted",
            "a.yaml:1",
            "a.yaml:1",
        )
        for number in range(MARKDOWN_ROWS + 7)
    ]
    side = SideInfo("old", "v1", ("a.yaml",))
    text = render_markdown(Diff(side, dataclasses.replace(side, label="new", version="v2"), changes, []))
    rows = [line for line in text.splitlines() if line.startswith("| ~ |")]
    assert len(rows) == MARKDOWN_ROWS
    assert (
        rows[0] == "| ~ | route `route-00` | strategy: ordered -> weighted | old a.yaml:1 -> new a.yaml:1 |"
    )
    assert text.splitlines()[-1] == "…and 7 more (see `gateway diff` in the job log)."
    assert f"**{MARKDOWN_ROWS + 7} changes** (routes {MARKDOWN_ROWS + 7})" in text
