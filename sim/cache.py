"""ternforge's on-disk cache: where it lives, how an entry is locked and published, what it
holds and how it is cleared.

The cache (``$TERNFORGE_CACHE``, else ``~/.cache/ternforge``) keeps five kinds of entry:

- ``verilator/<top>-<key>/``: a Verilator build, named by a hash of everything that decides
  it and published by a manifest (:mod:`ternforge.sim.verilator`);
- ``synth/<key>.json``: a Yosys resource report, named by a hash of its inputs
  (:mod:`ternforge.gen.synthesis`);
- ``sweep/<key>.json``: a point of a sweep of a model's accelerator, named by a hash of the
  point and of ternforge's sources (:mod:`ternforge.gen.sweep`);
- ``activity/<key>.json``: the switching activity of the accelerator's parts measured on
  Verilator, named by a hash of the workload and of the sources it depends on
  (:mod:`ternforge.sim.activity`);
- ``logs/``: the log of every tool run that failed, named in its error message.

An entry is written under a temporary name and renamed when complete, and built under a lock
(:func:`locked`), so two processes that need the same entry at once build it once: one builds,
the other waits and reuses it. Deleting an entry is always safe; it is built again when next
needed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["KINDS", "cache_root", "locked", "write_atomically", "log_path", "cache_info",
           "clear"]

#: folder of the cache -> what its entries are
KINDS = {"verilator": "Verilator builds", "synth": "Yosys resource reports",
         "sweep": "points of design sweeps",
         "activity": "activity measured on Verilator",
         "logs": "logs of failed tool runs"}


def cache_root() -> Path:
    """Root of ternforge's caches: ``$TERNFORGE_CACHE`` or ``~/.cache/ternforge``."""
    root = os.environ.get("TERNFORGE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "ternforge"


@contextmanager
def locked(lock_path: Path, *, blocking: bool = True):
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the ``with`` block.

    Yields whether the lock is held: always true when ``blocking``, false if another process
    holds it otherwise. If the lock file is deleted (by :func:`clear`) while this process
    waits for it, the lock is taken again on the new file, so a waiter never holds a lock that
    nobody else can see.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                same = os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                lock_path.parent.mkdir(parents=True, exist_ok=True)
                continue
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            return


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` under a temporary name, then rename it into place: a reader
    sees the old file or the whole new one, never part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def log_path(tool: str, name: str, folder: Path | None = None) -> Path:
    """Where the log of a failed ``tool`` run on ``name`` is kept: ``<tool>-<name>.log`` in
    ``folder``, by default the cache's ``logs/`` (created)."""
    folder = folder if folder is not None else cache_root() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{tool}-{name}.log"


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(item.lstat().st_size for item in path.rglob("*") if not item.is_dir())


def _entries(kind: str) -> list[Path]:
    folder = cache_root() / kind
    if not folder.is_dir():
        return []
    if kind == "verilator":
        return sorted(item for item in folder.iterdir() if item.is_dir())
    pattern = "*.log" if kind == "logs" else "*.json"
    return sorted(folder.glob(pattern))


def cache_info() -> dict:
    """What the cache holds: ``root``, ``bytes`` (all of it, temporary files included) and,
    for each kind of :data:`KINDS`, its ``entries`` and ``bytes``."""
    root = cache_root()
    kinds = {kind: {"what": what, "entries": len(entries := _entries(kind)),
                    "bytes": sum(_size(entry) for entry in entries)}
             for kind, what in KINDS.items()}
    return {"root": str(root), "bytes": _size(root) if root.is_dir() else 0, "kinds": kinds}


def _lock_of(kind: str, item: Path) -> Path | None:
    """The lock that guards ``item`` of the cache's ``kind`` folder while it is built (None
    for a log, which is written once and never built)."""
    if kind == "verilator":
        return item / ".lock" if item.is_dir() else None
    if kind in ("synth", "activity"):  # <key>.json, its work folder <key>.work, .<key>.json...
        return item.parent / f"{item.name.lstrip('.').split('.')[0]}.lock"
    return None


def clear() -> dict:
    """Delete every entry (and what a killed run left) that no running process is building;
    return ``removed`` (entries), ``bytes`` (freed) and ``busy`` (entries left because a build
    holds their lock)."""
    removed = freed = busy = 0
    for kind in KINDS:
        folder = cache_root() / kind
        if not folder.is_dir():
            continue
        entries = set(_entries(kind))
        for item in sorted(folder.iterdir()):
            if not item.exists():
                continue
            if item.suffix == ".lock":  # a lock with no entry: a finished or killed run's
                with locked(item, blocking=False) as held:
                    if held:
                        item.unlink(missing_ok=True)
                continue
            lock = _lock_of(kind, item)
            with (locked(lock, blocking=False) if lock else _held()) as held:
                if not held:
                    busy += item in entries
                    continue
                size = _size(item)
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
                if lock is not None and lock.parent == folder:
                    lock.unlink(missing_ok=True)
                removed, freed = removed + (item in entries), freed + size
    return {"removed": removed, "bytes": freed, "busy": busy}


@contextmanager
def _held():
    yield True
