"""The testbenches of a configuration: what ``ternforge test`` runs, at the user's parameters.

Each unit a configuration generates has one testbench, the same code the pytest suite runs at
its own fixed points:

- ``tlmm``: the LUT-RAM TLMM engine of ``[tlmm]`` (``ternforge.tb.tlmm_tb``);
- ``gemv``: the GEMV top of ``[tlmm]``, DDR to results (``ternforge.tb.gemv_tb``);
- ``eltwise``: the element-wise unit of ``[eltwise]`` (``ternforge.tb.eltwise_tb``);
- ``attention-prefill``, ``attention-decode``: the attention units of ``[attention]``
  (``ternforge.tb.attention_tb``);
- ``accelerator``: the whole accelerator of ``[tlmm]`` and ``[accelerator]`` (engine, bus and
  HP ports, attention tile and lanes, vector lanes) with the tiny model's sizes, the only
  model the simulator runs whole: a prefill and greedy decode steps of the shipped tiny
  model (:func:`ternforge.sim.machine.generate`) against the golden model, once without
  stalls (tokens, every hidden state and every step's cycles exact) and once under random
  stalls on every DDR channel (tokens and states exact).

Every run has a seed (:func:`~ternforge.sim.cocotb.check.case_seed`): the data and the stalls
of every case come from it, so a failure reproduces with the same seed. A run can record a
VCD per testbench (``waves``) and report as JUnit XML (:func:`junit_xml`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.back import verilog

from ..hdl.accelerator.model import preset
from ..hdl.gemv.parameters import GemvParameters
from ..hdl.gemv.top import GemvTop
from ..sim import verilator
from ..sim.cocotb.check import FAULT_VARIABLE, case_seed, check_generation
from .accelerator import accelerator_parameters
from .config import DesignConfig
from .elaborate import GEMV_TOP, MODULE_NAMES

__all__ = ["UNITS", "CLOCK_PERIOD_NS", "Case", "UnitRun", "CocotbBench", "AcceleratorBench",
           "benches", "junit_xml"]

#: the units ``ternforge test`` knows, in the order it runs them
UNITS = ("tlmm", "gemv", "eltwise", "attention-prefill", "attention-decode", "accelerator")

#: the clock period every testbench drives (:mod:`ternforge.sim.cocotb.streams`), which turns
#: simulated time into cycles
CLOCK_PERIOD_NS = 4

#: the DDR in the simulator of the accelerator's testbench (the machine tests', so that a
#: configuration of their accelerator shares their build)
MEMORY_BYTES = 1 << 21
#: the accelerator's workload: the prompt's tokens (bytes of the shipped tiny model's
#: vocabulary) and the greedy tokens decoded after it
PROMPT, NEW_TOKENS = list(b"ROMEO:"), 3
#: the DDR's random stalls in the accelerator's stalled case (the case ``waves`` records:
#: every signal of the accelerator over its 220,000 cycles, a VCD of about 4 GB)
STALL = 0.3


@dataclass(frozen=True)
class Case:
    """One test case of a run: its name, whether it passed, the first failure's message
    (empty if it passed), its simulated cycles, its wall time in seconds, and a note on what
    it could not check (empty if none)."""

    name: str
    passed: bool
    message: str
    cycles: int
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class UnitRun:
    """A unit's testbench run: its cases, wall time (build included) and the VCD and log it
    left (None if none)."""

    unit: str
    cases: tuple
    seconds: float
    waves: Path | None = None
    log: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(case.passed for case in self.cases)

    @property
    def cycles(self) -> int:
        return sum(case.cycles for case in self.cases)

    def first_failure(self) -> Case | None:
        return next((case for case in self.cases if not case.passed), None)


def _results(path: Path) -> tuple:
    """The cases of a cocotb ``results.xml`` (JUnit), in order."""
    cases = []
    for element in ET.parse(path).getroot().iter("testcase"):
        if element.find("skipped") is not None:
            continue
        failure = element.find("failure")
        if failure is None:
            failure = element.find("error")
        message = "" if failure is None else (failure.get("message") or failure.text or
                                              "failed").strip()
        properties = {p.get("name"): p.get("value") for p in element.iter("property")}
        nanoseconds = float(properties.get("sim_time_duration", 0))
        cases.append(Case(name=element.get("name"), passed=failure is None, message=message,
                          cycles=round(nanoseconds / CLOCK_PERIOD_NS),
                          seconds=float(element.get("time", 0))))
    return tuple(cases)


def _keep(work: Path, out: Path | None, unit: str, waves: bool) -> tuple:
    """Move the run's VCD and log from ``work`` into ``out`` (``<unit>.vcd``,
    ``<unit>.log``); return their new paths (None for what is not there)."""
    kept = []
    for name, wanted in (("dump.vcd", waves), ("sim.log", True)):
        source = work / name
        if out is None or not wanted or not source.exists():
            kept.append(None)
            continue
        target = out / f"{unit}{Path(name).suffix}"
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        kept.append(target)
    return tuple(kept)


@dataclass(frozen=True)
class CocotbBench:
    """A unit's cocotb testbench module (``test_module``) on its Verilog (module
    ``toplevel``), described to the testbench by ``description`` (``TERNFORGE_TB``)."""

    unit: str
    toplevel: str
    test_module: str
    description: dict
    component: object = field(compare=False, repr=False)

    def run(self, *, seed: int, work: Path, out: Path | None = None, waves: bool = False,
            fault: bool = False) -> UnitRun:
        """Build (cached) and run the testbench with ``seed``; with ``waves`` into a VCD.
        ``fault`` corrupts the model's every expectation (the checker's self-test)."""
        started, work = time.perf_counter(), work.resolve()
        build = verilator.build(verilog.convert(self.component(), name=self.toplevel),
                                toplevel=self.toplevel, trace="vcd" if waves else None)
        env = {"TERNFORGE_TB": json.dumps({**self.description, "seed": seed}),
               FAULT_VARIABLE: "1" if fault else ""}
        try:
            verilator.run(build, toplevel=self.toplevel, test_module=self.test_module,
                          work_dir=work, env=env, seed=seed, trace=waves)
            problem = None
        except verilator.SimulationError as error:
            problem = str(error).splitlines()[0]
        results = work / "results.xml"
        cases = _results(results) if results.exists() else ()
        if problem and all(case.passed for case in cases):  # the simulator itself stopped
            cases += (Case("simulation", False, problem, 0, 0.0),)
        vcd, log = _keep(work, out, self.unit, waves)
        return UnitRun(self.unit, cases, time.perf_counter() - started, vcd, log)


@dataclass(frozen=True)
class AcceleratorBench:
    """The whole accelerator of ``parameters`` (with the tiny model's sizes) generating text
    from the shipped tiny model, against the golden model."""

    parameters: object
    unit: str = "accelerator"

    def run(self, *, seed: int, work: Path, out: Path | None = None, waves: bool = False,
            fault: bool = False) -> UnitRun:
        """Build (cached) and run the generation without stalls and under stalls of
        ``seed``; with ``waves``, the stalled run into a VCD."""
        from ..sim import machine
        from ..sim.checkpoint import load_checkpoint, shipped_weights
        from ..sim.models.bitnet import Golden, greedy

        started, work = time.perf_counter(), work.resolve()
        p = self.parameters
        path = shipped_weights("tiny")
        weights = load_checkpoint(path, p.model)
        golden = Golden(weights, cols=p.attention.engine.cols, vector_lanes=p.vector.lanes)
        tokens, states = greedy(golden, PROMPT, NEW_TOKENS)
        cases, vcd = [], None
        for stall in (0.0, STALL):
            name = f"generation under random stalls of {stall:g}" if stall else \
                "generation without stalls"
            trace, run_dir = waves and bool(stall), work / f"stall-{stall:g}"
            begun = time.perf_counter()
            try:
                built = machine.build(p, memory_bytes=MEMORY_BYTES,
                                      trace="vcd" if trace else None)
                result = machine.generate(built, p, weights, path, PROMPT, NEW_TOKENS,
                                          work=run_dir, memory_bytes=MEMORY_BYTES,
                                          stall=stall, seed=case_seed(seed, 1), trace=trace)
                with _faulty(fault):  # (the checker runs here, in this process)
                    check_generation(result, tokens, states, stalled=bool(stall))
                note = f"cycles not checked: {result['unmodeled']}" \
                    if result.get("unmodeled") else ""
                case = Case(name, True, "", _cycles(result), time.perf_counter() - begun,
                            note)
            except (AssertionError, verilator.SimulationError) as error:
                case = Case(name, False, str(error).splitlines()[0], 0,
                            time.perf_counter() - begun)
            cases.append(case)
            if trace:
                vcd, _ = _keep(run_dir, out, self.unit, True)
        return UnitRun(self.unit, tuple(cases), time.perf_counter() - started, vcd)


@contextmanager
def _faulty(fault: bool):
    """With ``fault``, the checkers in this process corrupt their expectations (their
    self-test, :data:`~ternforge.sim.cocotb.check.FAULT_VARIABLE`) until the block ends."""
    previous = os.environ.pop(FAULT_VARIABLE, None)
    if fault:
        os.environ[FAULT_VARIABLE] = "1"
    try:
        yield
    finally:
        os.environ.pop(FAULT_VARIABLE, None)
        if previous is not None:
            os.environ[FAULT_VARIABLE] = previous


def _cycles(result: dict) -> int:
    return result["prefill_cycles"] + sum(result["decode_cycles"])


def benches(config: DesignConfig, units=None) -> list:
    """The testbenches of ``config``'s units (``units``, names of :data:`UNITS`; default
    all), in :data:`UNITS`' order."""
    from ..sim.jobs.eltwise import EltwiseJob

    chosen = UNITS if not units else tuple(units)
    for unit in chosen:
        if unit not in UNITS:
            raise ValueError(f"Unit must be one of {', '.join(UNITS)}, not {unit!r}")
    found = {}
    engine = config.tlmm.parameters("tlmm-lutram")
    if "tlmm" in chosen:
        from ..hdl.matmul.engines import matmul_engine
        found["tlmm"] = CocotbBench("tlmm", MODULE_NAMES["tlmm-lutram"], "ternforge.tb.tlmm_tb",
                                    _fields(engine), lambda: matmul_engine(engine))
    if "gemv" in chosen:
        gemv = GemvParameters(engine=engine)
        found["gemv"] = CocotbBench(
            "gemv", GEMV_TOP, "ternforge.tb.gemv_tb",
            {"engine": _fields(engine), "data_bits": gemv.data_bits,
             "buffer_depth": gemv.buffer_depth}, lambda: GemvTop(gemv))
    if "eltwise" in chosen:
        e = config.eltwise
        if e.acc_width != 32:
            raise ValueError(f"The element-wise unit's testbench takes 32-bit accumulators, "
                             f"not {e.acc_width!r}")
        job = EltwiseJob(op="unit", format=e.format, max_length=e.hidden)
        found["eltwise"] = CocotbBench("eltwise", job.module_name, "ternforge.tb.eltwise_tb",
                                       dict(job.__dict__), job.component)
    for phase, job in config.attention.jobs().items():
        unit = f"attention-{phase}"
        if unit in chosen:
            found[unit] = CocotbBench(unit, job.module_name, "ternforge.tb.attention_tb",
                                      job.to_dict(), job.component)
    if "accelerator" in chosen:
        found["accelerator"] = AcceleratorBench(
            accelerator_parameters(config, preset("tiny")))
    return [found[unit] for unit in UNITS if unit in found]


def _fields(engine) -> dict:
    """The fields of a :class:`~ternforge.hdl.matmul.parameters.TlmmParameters` as JSON
    (its kind by value)."""
    fields = asdict(engine)
    fields["kind"] = engine.kind.value
    return fields


def junit_xml(runs, *, seed: int) -> str:
    """JUnit XML of ``runs`` (:class:`UnitRun`): a test suite a unit, a test case a case,
    the seed as a property of each suite."""
    root = ET.Element("testsuites", name="ternforge test",
                      tests=str(sum(len(r.cases) for r in runs)),
                      failures=str(sum(not c.passed for r in runs for c in r.cases)),
                      time=f"{sum(r.seconds for r in runs):.3f}")
    for run in runs:
        suite = ET.SubElement(root, "testsuite", name=run.unit, tests=str(len(run.cases)),
                              failures=str(sum(not c.passed for c in run.cases)),
                              time=f"{run.seconds:.3f}")
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="seed", value=str(seed))
        for case in run.cases:
            element = ET.SubElement(suite, "testcase", name=case.name,
                                    classname=f"ternforge.{run.unit}",
                                    time=f"{case.seconds:.3f}")
            ET.SubElement(element, "system-out").text = \
                f"{case.cycles} simulated cycles" + (f"; {case.note}" if case.note else "")
            if not case.passed:
                failure = ET.SubElement(element, "failure", message=case.message)
                failure.text = f"{case.message}\nreproduce with --seed {seed}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
