"""The cache: locks that two processes share, atomic writes, what ``info`` counts and what
``clear`` deletes (never an entry a running build holds)."""

import json
import multiprocessing
import time

from cli_support import invoke
from ternforge.sim import cache


def _fill(root):
    build = root / "verilator" / "top-0123"
    build.mkdir(parents=True)
    (build / "top").write_bytes(b"x" * 1000)
    (build / ".lock").touch()
    (root / "synth").mkdir()
    (root / "synth" / "abc.json").write_text("{}")
    (root / "synth" / "abc.work").mkdir()  # left by a killed synthesis
    (root / "synth" / "def.lock").touch()
    (root / "logs").mkdir()
    (root / "logs" / "yosys-top.log").write_text("ERROR\n")
    (root / "sweep").mkdir()
    (root / "sweep" / "0123.json").write_text("{}\n")
    return build


def test_info_counts_each_kind(monkeypatch, tmp_path):
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path))
    _fill(tmp_path)
    facts = cache.cache_info()
    assert facts["root"] == str(tmp_path) and facts["bytes"] == 1000 + 2 + 6 + 3
    assert {kind: (entry["entries"], entry["bytes"]) for kind, entry in facts["kinds"].items()} \
        == {"verilator": (1, 1000), "synth": (1, 2), "sweep": (1, 3), "activity": (0, 0),
            "logs": (1, 6)}


def _hold(lock, started, release):
    with cache.locked(lock):
        started.set()
        release.wait(30)


def test_clear_leaves_what_a_running_build_holds(monkeypatch, tmp_path):
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path))
    build = _fill(tmp_path)
    context = multiprocessing.get_context("spawn")
    started, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(build / ".lock", started, release))
    holder.start()
    try:
        assert started.wait(30)
        assert cache.clear() == {"removed": 3, "bytes": 2 + 6 + 3, "busy": 1}
        assert build.exists() and sorted(p.name for p in (tmp_path / "synth").iterdir()) == []
    finally:
        release.set()
        holder.join(30)
    assert cache.clear() == {"removed": 1, "bytes": 1000, "busy": 0}
    assert not build.exists()


def _count(lock, counter, seen):
    with cache.locked(lock):
        value = counter.value
        time.sleep(0.05)
        counter.value = value + 1
        seen.append(value)


def test_a_lock_is_exclusive_even_when_its_file_is_deleted(tmp_path):
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    counter, seen = manager.Value("i", 0), manager.list()
    lock = tmp_path / "entry" / ".lock"
    workers = [context.Process(target=_count, args=(lock, counter, seen)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for _ in range(5):  # what clear does to an entry: its folder and lock deleted
        time.sleep(0.03)
        with cache.locked(lock, blocking=False) as held:
            if held:
                lock.unlink()
    for worker in workers:
        worker.join(30)
    assert sorted(seen) == [0, 1, 2, 3] and counter.value == 4  # no two at once


def test_write_atomically_leaves_no_temporary(tmp_path):
    cache.write_atomically(tmp_path / "a" / "r.json", '{"x": 1}')
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r.json"]


def test_cache_commands(capsys, monkeypatch, tmp_path):
    root = tmp_path / "cache"
    monkeypatch.setenv("TERNFORGE_CACHE", str(root))
    _fill(root)
    code, out, err = invoke(capsys, "cache", "info", "--json", str(tmp_path / "info.json"))
    assert (code, err) == (0, "") and "Verilator builds" in out
    assert json.loads((tmp_path / "info.json").read_text()) == cache.cache_info()
    code, out, err = invoke(capsys, "cache", "clear")
    assert (code, err) == (0, "") and out.startswith("removed 4 entries")
    assert cache.cache_info()["bytes"] == 0
