"""The reload manager without HTTP: last good wins, providers follow the config, nothing leaks."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.config import LoadResult, load_config
from gateway.providers.base import Provider
from gateway.runtime.inflight import InflightTracker
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import Runtime, RuntimeHolder, build_runtime
from tests.support.waiting import eventually


def provider_yaml(name: str, text: str) -> str:
    return textwrap.dedent(
        f"""\
        providers:
          {name}:
            type: mock
            base_url: http://mock.gateway.invalid/v1
            mock: {{text: "{text}", tokens: 2}}
        """
    )


def routes_yaml(*providers: str) -> str:
    routes = "".join(f"  {name}-model:\n    targets: [{{provider: {name}}}]\n" for name in providers)
    return "routes:\n" + routes


def write(directory: Path, name: str, text: str) -> None:
    temp = directory / f".{name}.tmp"
    temp.write_text(text)
    os.replace(temp, directory / name)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "routes"
    directory.mkdir()
    write(directory, "a.yaml", provider_yaml("a", "alpha one"))
    write(directory, "b.yaml", provider_yaml("b", "beta one"))
    write(directory, "routes.yaml", routes_yaml("a", "b"))
    return directory


def start(config_dir: Path, **options: object) -> tuple[ReloadManager, RuntimeHolder]:
    result = load_config([config_dir], {})
    assert result.config is not None, result.diagnostics
    runtime, _ = build_runtime(result.config)
    holder = RuntimeHolder(runtime)
    manager = ReloadManager(holder, [config_dir], InflightTracker(), **options)  # type: ignore[arg-type]
    return manager, holder


async def stop(manager: ReloadManager) -> None:
    await manager.aclose()
    await manager.holder.current.registry.aclose()


def provider(runtime: Runtime, name: str) -> Provider:
    found = runtime.registry.get(name)
    assert found is not None
    return found


def is_closed(provider: Provider) -> bool:
    return provider.closed


async def settle() -> None:
    """Let retirement tasks run (they close clients without waiting when nothing is in flight)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_valid_edit_swaps_and_unchanged_providers_keep_pool_and_health(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    before = holder.current
    write(config_dir, "b.yaml", provider_yaml("b", "beta two"))
    assert await manager.reload("test") == "applied"
    after = holder.current
    assert after is not before and after.config.version != before.config.version
    # a did not change: the same provider object, so the same pool, health state and breaker.
    assert provider(after, "a") is provider(before, "a")
    assert provider(after, "a").transport is provider(before, "a").transport
    assert after.dispatcher.health.get("a") is before.dispatcher.health.get("a")
    # b changed: a new provider; the old one is closed as nothing was in flight.
    assert provider(after, "b") is not provider(before, "b")
    assert after.dispatcher.health.get("b") is not before.dispatcher.health.get("b")
    await settle()
    assert is_closed(provider(before, "b")) and not is_closed(provider(after, "a"))
    assert (manager.reload_count, manager.attempt_count, manager.rejected_count) == (1, 1, 0)
    assert manager.status()["last_reload"]["outcome"] == "applied"
    await stop(manager)


async def test_unchanged_files_do_not_swap(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    before = holder.current
    write(config_dir, "a.yaml", provider_yaml("a", "alpha one"))  # same bytes, new inode
    assert await manager.reload("test") == "unchanged"
    assert holder.current is before and manager.reload_count == 0
    await stop(manager)


async def test_invalid_edit_is_rejected_whole_and_a_later_fix_is_applied(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    before = holder.current
    # One valid change and one broken file in the same save: nothing of it may be applied.
    write(config_dir, "a.yaml", provider_yaml("a", "alpha two"))
    write(config_dir, "routes.yaml", routes_yaml("a", "b") + "  c-model:\n    targets: [{provider: c}]\n")
    assert await manager.reload("test") == "rejected"
    assert holder.current is before
    status = manager.status()
    assert status["serving_last_good"] is True and status["rejected_count"] == 1
    error = status["last_error"]
    assert error["trigger"] == "test"
    assert error["errors"] == [
        {
            "path": str(config_dir / "routes.yaml"),
            "line": 7,
            "column": 26,
            "severity": "error",
            "code": "semantic",
            "message": "route 'c-model' targets unknown provider 'c'",
            "hint": error["errors"][0]["hint"],
            "location": f"{config_dir / 'routes.yaml'}:7:26",
        }
    ]
    assert error["message"].startswith(f"{config_dir / 'routes.yaml'}:7:26: error: route 'c-model'")

    write(config_dir, "routes.yaml", routes_yaml("a", "b"))
    assert await manager.reload("test") == "applied"
    after = holder.current
    assert provider(after, "a").config.mock.text == "alpha two"
    status = manager.status()
    assert status["serving_last_good"] is False and status["reload_count"] == 1
    assert status["last_error"] == error  # kept, with when it happened
    await stop(manager)


@pytest.mark.parametrize(
    ("broken", "reported_in"),
    [
        ("providers: [\n", "a.yaml"),  # bad YAML
        ("providers:\n  a:\n    type: mock\n    mock: {tokens: many}\n", "a.yaml"),  # schema error
        ('providers:\n  a:\n    type: mock\n    mock: {text: "alp', "a.yaml"),  # half-written
        # Truncated by an in-place write not yet written: defines nothing, so the route to `a` breaks.
        ("", "routes.yaml"),
    ],
)
async def test_each_kind_of_broken_file_keeps_the_last_good_config(
    config_dir: Path, broken: str, reported_in: str
) -> None:
    manager, holder = start(config_dir)
    before = holder.current
    write(config_dir, "a.yaml", broken)
    assert await manager.reload("test") == "rejected"
    assert holder.current is before
    errors = manager.status()["last_error"]["errors"]
    assert errors and errors[0]["path"] == str(config_dir / reported_in) and errors[0]["line"]
    await stop(manager)


async def test_an_emptied_directory_is_rejected_and_restoring_it_is_unchanged(config_dir: Path) -> None:
    """`git checkout` or a careless `rm` may remove every file for a moment: keep serving."""

    manager, holder = start(config_dir)
    before = holder.current
    saved = {path.name: path.read_text() for path in config_dir.iterdir()}
    for path in config_dir.iterdir():
        path.unlink()
    assert await manager.reload("test") == "rejected"
    assert holder.current is before
    assert manager.status()["last_error"]["errors"][0]["message"].startswith("no route files")
    for name, text in saved.items():
        write(config_dir, name, text)
    assert await manager.reload("test") == "unchanged"
    assert holder.current is before and manager.status()["serving_last_good"] is False
    await stop(manager)


async def test_retired_provider_closes_only_after_requests_that_could_use_it(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    tracker = manager.tracker
    old_b = provider(holder.current, "b")
    old_request = tracker.enter()  # a request that may hold the old runtime
    write(config_dir, "b.yaml", provider_yaml("b", "beta two"))
    assert await manager.reload("test") == "applied"
    new_request = tracker.enter()  # arrived after the swap: cannot see the old provider
    await asyncio.sleep(0.05)
    assert not is_closed(old_b) and manager.status()["retiring_providers"] == ["b"]
    tracker.leave(old_request)
    await settle()
    assert is_closed(old_b) and manager.status()["retiring_providers"] == []
    tracker.leave(new_request)
    await stop(manager)


async def test_retire_timeout_closes_a_pool_held_by_a_stuck_request(config_dir: Path) -> None:
    manager, holder = start(config_dir, retire_timeout=0.1)
    old_b = provider(holder.current, "b")
    stuck = manager.tracker.enter()
    write(config_dir, "b.yaml", provider_yaml("b", "beta two"))
    await manager.reload("test")
    await eventually(lambda: is_closed(old_b))
    manager.tracker.leave(stuck)
    await stop(manager)


async def test_shutdown_closes_retiring_providers_at_once(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    old_b = provider(holder.current, "b")
    manager.tracker.enter()  # never leaves
    write(config_dir, "b.yaml", provider_yaml("b", "beta two"))
    await manager.reload("test")
    await asyncio.wait_for(stop(manager), 2)
    assert is_closed(old_b) and is_closed(provider(holder.current, "b"))


async def test_a_hundred_reloads_leave_only_the_current_clients_open(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    seen: dict[int, Provider] = {id(p): p for p in holder.current.registry}
    for number in range(100):
        request = manager.tracker.enter()
        write(config_dir, "b.yaml", provider_yaml("b", f"beta {number}"))
        if number % 10 == 0:  # adding and removing a provider too
            write(config_dir, "c.yaml", provider_yaml("c", f"gamma {number}"))
        elif number % 10 == 5:
            (config_dir / "c.yaml").unlink()
        assert await manager.reload(f"edit {number}") == "applied"
        seen.update((id(p), p) for p in holder.current.registry)
        manager.tracker.leave(request)
    await settle()
    current = {id(p) for p in holder.current.registry}
    still_open = [p for key, p in seen.items() if key not in current and not is_closed(p)]
    assert still_open == []
    assert len(seen) == 2 + 100 + 10  # a kept throughout; b new each time; c added ten times
    assert manager.reload_count == 100
    await stop(manager)
    assert all(is_closed(p) for p in seen.values())


async def test_a_crashing_loader_is_a_rejected_reload(config_dir: Path) -> None:
    def crash(paths: Sequence[str | Path]) -> LoadResult:
        raise RuntimeError("disk on fire")

    manager, holder = start(config_dir, loader=crash)
    before = holder.current
    assert await manager.reload("test") == "rejected"
    assert holder.current is before
    assert "disk on fire" in manager.status()["last_error"]["message"]
    await stop(manager)


async def test_swap_listeners_see_old_and_new_runtime(config_dir: Path) -> None:
    manager, holder = start(config_dir)
    swaps: list[tuple[Runtime, Runtime]] = []
    manager.on_swap.append(lambda old, new: swaps.append((old, new)))
    before = holder.current
    write(config_dir, "a.yaml", provider_yaml("a", "alpha two"))
    await manager.reload("test")
    assert swaps == [(before, holder.current)]
    await stop(manager)


async def test_sighup_reloads_in_the_main_thread(config_dir: Path) -> None:
    async def scenario() -> None:
        manager, holder = start(config_dir)
        manager.start(watch=False)
        assert manager.sighup_installed and not manager.watching
        write(config_dir, "a.yaml", provider_yaml("a", "alpha two"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if manager.reload_count:
                break
            await asyncio.sleep(0.01)
        assert provider(holder.current, "a").config.mock.text == "alpha two"
        assert manager.status()["last_reload"]["trigger"] == "SIGHUP"
        await stop(manager)
        assert not manager.sighup_installed

    await scenario()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the handler is gone after shutdown


async def test_tracker_waits_for_every_earlier_generation() -> None:
    tracker = InflightTracker()
    first = tracker.enter()  # generation 0
    ended_0 = tracker.advance()
    second = tracker.enter()  # generation 1
    ended_1 = tracker.advance()
    third = tracker.enter()  # generation 2
    waits = [asyncio.create_task(tracker.drained(ended_0)), asyncio.create_task(tracker.drained(ended_1))]
    await asyncio.sleep(0)
    tracker.leave(second)
    await asyncio.sleep(0)
    assert not any(task.done() for task in waits)  # generation 0 is still in flight
    tracker.leave(first)
    await asyncio.sleep(0)
    assert all(task.done() for task in waits)
    assert tracker.in_flight() == 1 and tracker.in_flight(up_to=1) == 0
    tracker.leave(third)
    assert tracker.in_flight() == 0
    await tracker.drained(5)  # nothing in flight: returns at once
