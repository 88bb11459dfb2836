"""`gateway test [--config DIR] [FILES...] [--format text|json|github]`: check route test files
(route_expectations.py) against a config, without serving or sending anything.

Each expectation is judged by `decision.ConfigJudge`, the same resolution a request gets. A failure
prints `file:line:col: expected X, got Y (model 'm' over chat, key 'k')` at the expected value.
Without FILES, the tests are `<config>/tests/*.yaml`. Keys are named, never needed: unset `${VAR}`
secrets get placeholders (decision.load_offline).

Exit status: 0 every expectation holds, 1 one fails, 2 the config or a test file cannot be loaded (or
there is no test file).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from gateway.config import Diagnostic, Position
from gateway.config.diagnostics import plural
from gateway.config.discover import find_route_files
from gateway.config.prices import MICRO, Price
from gateway.decision import ConfigJudge, Decision, TargetPlan, load_offline
from gateway.route_expectations import Expected, RouteTest, read_expectations, short_api
from gateway.validate_command import github_command

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_LOAD = 2
TESTS_DIRECTORY = "tests"


def run_route_tests(
    config: str,
    files: Sequence[str] = (),
    fmt: str = "text",
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    out = sys.stdout if out is None else out
    paths, problems = _test_files(config, files)
    tests: list[RouteTest] = []
    for path in paths:
        found, diagnostics = read_expectations(path)
        tests += found
        problems += diagnostics
    result = load_offline([config], environ)
    problems = result.errors + problems
    if problems or result.config is None:
        _print(out, fmt, problems, "cannot run the route tests: fix the errors above", EXIT_LOAD)
        return EXIT_LOAD
    judge = ConfigJudge(result.config)
    per_test = [check(test, judge) for test in tests]
    failures = [failure for found in per_test for failure in found]
    failed = sum(1 for found in per_test if found)
    summary = (
        f"route tests: {len(tests) - failed} passed, {failed} failed "
        f"({plural(len(tests), 'test')} in {plural(len(paths), 'file')}, config {result.config.version})"
    )
    status = EXIT_FAILED if failures else EXIT_PASSED
    _print(out, fmt, failures, summary, status, passed=len(tests) - failed)
    return status


def check(test: RouteTest, judge: ConfigJudge) -> list[Diagnostic]:
    """The failed expectations of one test, each at the place it was written."""
    if test.key is not None and test.key not in judge.keys:
        defined = ", ".join(sorted(judge.keys)) or "none"
        assert test.key_position is not None
        return [
            _failure(
                test, test.key_position, f"key {test.key!r} is not defined in the config (keys: {defined})"
            )
        ]
    routing = judge.decide(test.model, test.api, test.key, key_known=test.key is not None)
    admission = judge.decide(test.model, test.api, test.key)
    failures = []
    for expected in test.expected:
        found = _CHECKS[expected.field](expected, routing, admission, judge)
        if found is not None:
            position, message = found
            failures.append(_failure(test, position, message))
    return failures


Check = tuple[Position, str] | None


def _route(expected: Expected, routing: Decision, admission: Decision, judge: ConfigJudge) -> Check:
    got = _route_got(routing)
    if expected.value == (routing.route if routing.outcome not in ("no_route", "api_not_served") else None):
        return None
    want = "no route (404)" if expected.value is None else f"route {expected.value!r}"
    return expected.position, f"expected {want}, got {got}"


def _route_got(decision: Decision) -> str:
    if decision.outcome == "no_route":
        return "no route (404 model_not_found)"
    if decision.outcome == "api_not_served":
        return f"route {decision.route!r}, which does not serve the {short_api(decision.api)} API (404)"
    return f"route {decision.route!r}"


def _targets(expected: Expected, routing: Decision, admission: Decision, judge: ConfigJudge) -> Check:
    wanted: list[Any] = expected.value
    got = "[" + ", ".join(f"{t.label} ({t.translation})" for t in routing.targets) + "]"
    if not routing.targets:
        return expected.position, f"expected targets {_written(wanted)}, got {_route_got(routing)}"
    for number, (want, plan) in enumerate(zip(wanted, routing.targets, strict=False)):
        if not _target_matches(want, plan):
            return expected.item_positions[number], (
                f"expected target {number + 1} {_written([want])[1:-1]}, got {plan.label} "
                f"({plan.translation}): targets {got}"
            )
    if len(wanted) != len(routing.targets):
        return expected.position, f"expected targets {_written(wanted)}, got {got}"
    return None


def _target_matches(want: Any, plan: TargetPlan) -> bool:
    if isinstance(want, str):
        provider, _, model = want.partition("/")
        want = {"provider": provider, **({"model": model} if model else {})}
    return bool(
        want["provider"] == plan.provider
        and want.get("model", plan.upstream_model) == plan.upstream_model
        and want.get("translation", plan.translation) == plan.translation
    )


def _written(targets: list[Any]) -> str:
    shown = []
    for want in targets:
        if isinstance(want, str):
            shown.append(want)
            continue
        text = want["provider"] + (f"/{want['model']}" if "model" in want else "")
        shown.append(text + (f" ({want['translation']})" if "translation" in want else ""))
    return "[" + ", ".join(shown) + "]"


def _allowed(expected: Expected, routing: Decision, admission: Decision, judge: ConfigJudge) -> Check:
    if admission.outcome == "routed":
        got = "allowed"
    elif admission.outcome == "model_not_allowed":
        got = "denied (403 model_not_allowed)"
    elif admission.outcome == "missing_key":
        got = "401 missing_api_key (the test gives no key and the config enforces keys)"
    else:
        got = _route_got(admission)
    want = "allowed" if expected.value else "denied (403 model_not_allowed)"
    return None if want == got else (expected.position, f"expected {want}, got {got}")


def _limits(expected: Expected, routing: Decision, admission: Decision, judge: ConfigJudge) -> Check:
    if admission.key is None:
        return expected.position, "expected limits, got no key: limits are a key's (give the test a key)"
    limits = judge.keys[admission.key].limits
    for name, want in expected.value.items():
        have = getattr(limits, name)
        got = "no limit" if have is None else f"{have} ({limits.mode(name)})"
        if isinstance(want, dict):
            shown = f"{want['limit']} ({want.get('mode', 'enforce')})"
        else:
            shown = "no limit" if want is None else f"{want} (enforce)"
        if shown != got:
            return expected.position, f"expected {name} {shown}, got {got}"
    return None


def _price(expected: Expected, routing: Decision, admission: Decision, judge: ConfigJudge) -> Check:
    if not routing.targets:
        return expected.position, f"expected a price, got {_route_got(routing)}"
    first = routing.targets[0]
    price = judge.price(first)
    currency = judge.config.prices.currency if judge.config.prices is not None else "USD"
    got = "unpriced" if price is None else _show_price(price, expected.value or {}, currency)
    if expected.value is None:
        return None if price is None else (expected.position, f"expected {first.label} unpriced, got {got}")
    want = ", ".join(f"{name} {value}" for name, value in expected.value.items()) + f" {currency}"
    if price is not None and all(_pico_of(price, name) == _pico(v) for name, v in expected.value.items()):
        return None
    return expected.position, f"expected {first.label} at {want} per million tokens, got {got}"


def _pico_of(price: Price, name: str) -> int:
    value: int | None = getattr(price, name)
    return price.input if value is None else value  # cache prices default to the input price


def _pico(per_million: float | int) -> int:
    return int(Decimal(str(per_million)) * MICRO)


def _show_price(price: Price, written: Mapping[str, Any], currency: str) -> str:
    names = list(written) or ["input", "output"]
    shown = ", ".join(
        f"{name} {Decimal(_pico_of(price, name)) / MICRO:f}".rstrip("0").rstrip(".") for name in names
    )
    return f"{shown} {currency}"


_CHECKS = {"route": _route, "targets": _targets, "allowed": _allowed, "limits": _limits, "price": _price}


def _failure(test: RouteTest, position: Position, message: str) -> Diagnostic:
    return Diagnostic(
        position.path, position.line, position.column, f"{message} ({test.describe()})", code="route-test"
    )


def _test_files(config: str, files: Sequence[str]) -> tuple[list[Path], list[Diagnostic]]:
    if files:
        return find_route_files(files)
    directory = Path(config) / TESTS_DIRECTORY
    if not directory.is_dir():
        return [], [
            Diagnostic(
                str(directory),
                None,
                None,
                "no route test files: this directory does not exist",
                hint="write tests in <config>/tests/*.yaml, or name the files",
                code="usage",
            )
        ]
    return find_route_files([directory])


def _print(
    out: TextIO, fmt: str, problems: list[Diagnostic], summary: str, status: int, passed: int = 0
) -> None:
    if fmt == "json":
        document = {
            "exit_code": status,
            "passed": passed,
            "failures": [problem.to_dict() for problem in problems if problem.code == "route-test"],
            "errors": [problem.to_dict() for problem in problems if problem.code != "route-test"],
            "summary": summary,
        }
        out.write(json.dumps(document, indent=2) + "\n")
        return
    for problem in problems:
        if fmt == "github":
            print(github_command(problem), file=out)
        elif problem.code == "route-test":
            print(f"{problem.location}: {problem.message}", file=out)
        else:
            print(problem, file=out)
    print(summary, file=out)
