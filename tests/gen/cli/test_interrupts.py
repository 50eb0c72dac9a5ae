"""A stopped ternforge leaves nothing behind, and runs that meet on one cache share it.

Measured as a user would meet it, with ``ternforge run tlmm`` on an empty cache: stopped by
``SIGTERM`` or killed outright (``SIGKILL``) while Verilator's compilers run, no process it
started is left running; a build that was killed half-way is never taken for a finished one;
two identical runs started together then build once and both give the exact result; and the
scratch folder a killed run could not remove is removed by the next run. The compilers'
temporary files stay inside the build's folder, so a killed compiler leaves none in the
system's temporary folder either.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ternforge.gen.cli import _common

ENGINE = ["--group-size", "3", "--groups-per-cycle", "2", "--rows", "4", "--max-k", "64",
          "--max-tokens", "2", "--max-n", "32"]


def _processes(marker: bytes) -> list[str]:
    """Command lines of the running processes whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


class Runs:
    """``ternforge`` processes on one private cache and temporary folder."""

    def __init__(self, tmp_path):
        rng = np.random.default_rng(8)
        self.folder = tmp_path
        np.save(tmp_path / "w.npy", rng.integers(-1, 2, (5, 17)).astype(np.int8))
        np.save(tmp_path / "x.npy", rng.integers(-128, 128, (3, 17)).astype(np.int8))
        self.expected = (np.load(tmp_path / "x.npy").astype(np.int64)
                         @ np.load(tmp_path / "w.npy").T.astype(np.int64))
        self.cache, self.tmp = tmp_path / "cache", tmp_path / "tmp"
        self.tmp.mkdir()
        self.marker = f"TERNFORGE_CACHE={self.cache}\0".encode()

    def start(self, out: str) -> subprocess.Popen:
        env = {**os.environ, "TERNFORGE_CACHE": str(self.cache), "TMPDIR": str(self.tmp)}
        return subprocess.Popen(
            [sys.executable, "-m", "ternforge", "run", "tlmm", "--weights",
             str(self.folder / "w.npy"), "--acts", str(self.folder / "x.npy"), "--out",
             str(self.folder / out), *ENGINE], env=env, cwd=self.folder,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def compiling(self, process) -> None:
        """Wait until ``process``'s build runs the C++ compiler."""
        deadline = time.monotonic() + 120
        while not any("make" in line.split(" ", 1)[0] or "cc1plus" in line
                      for line in _processes(self.marker)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the build never reached the compiler"
            time.sleep(0.1)

    def nothing_running(self) -> None:
        deadline = time.monotonic() + 10
        while (left := _processes(self.marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"left running: {left}"

    def exact(self, process, out: str) -> None:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr.decode()
        assert np.array_equal(np.load(self.folder / out), self.expected)


@pytest.mark.verilator
def test_stopped_and_killed_runs_leave_nothing_and_the_next_runs_share_one_build(tmp_path):
    runs = Runs(tmp_path)
    for stop, status in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, -9)):
        process = runs.start("stopped.npy")
        runs.compiling(process)
        process.send_signal(stop)  # the process alone, not its group: its tools must follow
        assert process.wait(30) == status
        runs.nothing_running()
        assert not (tmp_path / "stopped.npy").exists()
        assert list(runs.tmp.iterdir()) == []
    first, second = runs.start("y1.npy"), runs.start("y2.npy")
    runs.exact(first, "y1.npy")
    runs.exact(second, "y2.npy")
    assert len(list((runs.cache / "verilator").iterdir())) == 1  # one build, shared
    assert list(runs.tmp.iterdir()) == []
    runs.nothing_running()


def test_scratch_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    left = tmp_path / f".ternforge-{dead}-abc"
    live = tmp_path / f".ternforge-{os.getppid()}-abc"  # a running process's: kept
    other = tmp_path / ".ternforge-notapid"
    for folder in (left, live, other):
        folder.mkdir()
    with _common.staging(tmp_path) as scratch:
        assert scratch.parent == tmp_path and scratch.name.startswith(f".ternforge-{os.getpid()}-")
        assert not left.exists() and live.exists() and other.exists()
    assert not scratch.exists()
