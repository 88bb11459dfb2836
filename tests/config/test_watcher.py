"""The config watcher on a real directory: editor saves, in-place writes, ConfigMap swaps, replaced dirs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import watchfiles

from gateway.config.watcher import ConfigWatcher, watched_directories
from tests.support.reload_support import make_configmap, write_atomically

# A batch must arrive well within this; the watcher's own budget is step 50 ms, debounce 300 ms.
BATCH_TIMEOUT = 3.0
QUIET = 0.6  # long enough for a batch to have arrived if one were coming


async def collect(
    watcher: ConfigWatcher, action: Callable[[], None] | Callable[[], Awaitable[None]], quiet: float = QUIET
) -> list[list[str]]:
    """Start watching, run `action`, and return every batch seen until `quiet` seconds pass without one."""
    stop = asyncio.Event()
    batches: list[list[str]] = []
    arrived = asyncio.Event()

    async def consume() -> None:
        async for batch in watcher.changes(stop):
            batches.append(batch)
            arrived.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # the OS watch is in place once the first watch step has run
    result = action()
    if asyncio.iscoroutine(result):
        await result
    while True:
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), quiet if batches else BATCH_TIMEOUT)
        except TimeoutError:
            break
    stop.set()
    await asyncio.wait_for(task, 2.0)  # stopping takes one watch step, not the watch timeout
    return batches


@pytest.mark.parametrize("polling", [False, True], ids=["notify", "polling"])
async def test_atomic_save_gives_one_batch_naming_the_route_file(tmp_path: Path, polling: bool) -> None:
    (tmp_path / "routes.yaml").write_text("a: 1\n")
    watcher = ConfigWatcher([tmp_path], force_polling=polling)
    batches = await collect(watcher, lambda: write_atomically(tmp_path / "routes.yaml", "a: 2\n"))
    assert batches == [["routes.yaml"]]


async def test_in_place_write_and_new_and_removed_files_are_seen(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "b.yml").write_text("b: 1\n")

    def edit() -> None:
        with open(tmp_path / "a.yaml", "w") as file:  # truncate, then write: a half-written moment
            file.write("a: 2\n")
        (tmp_path / "c.yaml").write_text("c: 1\n")
        (tmp_path / "b.yml").unlink()

    batches = await collect(ConfigWatcher([tmp_path]), edit)
    assert sorted(name for batch in batches for name in batch) == ["a.yaml", "b.yml", "c.yaml"]


async def test_editor_leftovers_and_other_files_give_no_batch(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text("a: 1\n")

    def noise() -> None:
        (tmp_path / ".routes.yaml.swp").write_text("swap")
        (tmp_path / "routes.yaml~").write_text("backup")
        (tmp_path / "notes.txt").write_text("text")
        (tmp_path / "#routes.yaml#").write_text("emacs")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "nested.yaml").write_text("not a route file: not at the top")

    assert await collect(ConfigWatcher([tmp_path]), noise) == []


@pytest.mark.parametrize("polling", [False, True], ids=["notify", "polling"])
async def test_configmap_symlink_swap_is_seen(tmp_path: Path, polling: bool) -> None:
    make_configmap(tmp_path, "2024_01_01_00_00_00.1", {"routes.yaml": "a: 1\n"})
    batches = await collect(
        ConfigWatcher([tmp_path], force_polling=polling),
        lambda: make_configmap(tmp_path, "2024_01_01_00_00_01.2", {"routes.yaml": "a: 2\n"}),
    )
    # inotify reports the `..data` rename; polling sees the timestamped directories come and go.
    assert len(batches) == 1 and "..2024_01_01_00_00_01.2" in batches[0]
    assert (tmp_path / "routes.yaml").read_text() == "a: 2\n"  # the loader reads through the links


async def test_a_configmap_file_path_sees_the_swap(tmp_path: Path) -> None:
    """`--config /etc/gateway/routes.yaml` where routes.yaml is a ConfigMap link: the swap is seen."""
    make_configmap(tmp_path, "2024_01_01_00_00_00.1", {"routes.yaml": "a: 1\n", "other.yaml": "b: 1\n"})
    batches = await collect(
        ConfigWatcher([tmp_path / "routes.yaml"]),
        lambda: make_configmap(tmp_path, "2024_01_01_00_00_01.2", {"routes.yaml": "a: 2\n"}),
    )
    assert len(batches) == 1 and "..data" in batches[0] and "other.yaml" not in batches[0]


async def test_a_file_path_watches_its_directory_for_that_file_only(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("a: 1\n")
    (tmp_path / "other.yaml").write_text("b: 1\n")
    watcher = ConfigWatcher([tmp_path / "main.yaml"])
    assert [directory.path for directory in watcher.directories] == [tmp_path]
    assert await collect(watcher, lambda: (tmp_path / "other.yaml").write_text("b: 2\n")) == []
    batches = await collect(watcher, lambda: write_atomically(tmp_path / "main.yaml", "a: 2\n"))
    assert batches == [["main.yaml"]]


async def test_a_replaced_directory_is_watched_again(tmp_path: Path) -> None:
    config = tmp_path / "routes"
    config.mkdir()
    (config / "routes.yaml").write_text("a: 1\n")

    async def replace_then_edit() -> None:
        staged = tmp_path / "routes.new"
        staged.mkdir()
        (staged / "routes.yaml").write_text("a: 2\n")
        config.rename(tmp_path / "routes.old")
        staged.rename(config)  # a deploy swapping the whole directory
        await asyncio.sleep(1.8)  # the identity check runs every second
        (config / "routes.yaml").write_text("a: 3\n")

    batches = await collect(ConfigWatcher([config]), replace_then_edit)
    assert [] in batches  # "the directory was replaced": reload without knowing which file changed
    assert batches[-1] == ["routes.yaml"]  # and the new directory is being watched


async def test_a_change_the_os_did_not_report_is_found_within_a_second_or_so(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text("a: 1\n")
    watcher = ConfigWatcher([tmp_path])
    watcher.is_relevant = lambda change, path: False  # type: ignore[method-assign]  # deaf to OS events
    batches = await collect(watcher, lambda: write_atomically(tmp_path / "routes.yaml", "a: 2\n"))
    assert batches == [["routes.yaml"]]


@pytest.mark.parametrize(
    ("path", "relevant"),
    [
        ("routes.yaml", True),
        ("extra.yml", True),
        ("..data", True),
        ("..2024_01_01_00_00_00.1", True),
        (".routes.yaml.tmp", False),
        ("routes.yaml~", False),
        ("README.md", False),
        ("4913", False),  # vim's probe file
    ],
)
def test_relevance_filter(tmp_path: Path, path: str, relevant: bool) -> None:
    watcher = ConfigWatcher([tmp_path])
    assert watcher.is_relevant(watchfiles.Change.modified, str(tmp_path / path)) is relevant


def test_watched_directories_merge_files_of_one_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "b.yaml").write_text("")
    (tmp_path / "dir").mkdir()
    found = watched_directories([tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "dir"])
    assert [(d.path, d.names) for d in found] == [
        (tmp_path, frozenset({"a.yaml", "b.yaml"})),
        (tmp_path / "dir", None),
    ]
