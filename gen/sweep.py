"""Sweeps: one line per point of a parameter grid.

A point is a :class:`~ternforge.gen.config.DesignConfig`. Two kinds of sweep share it:

- **units** (:func:`sweep_line`): the synthesised resources and the performance of the units
  whose parameters are swept. Sweeping ``tlmm.*`` (or only ``board``) synthesises the three
  ternary matmul engines side by side; ``eltwise.*`` the element-wise unit (and its cycles
  per token); ``attention.*`` the prefill and decode attention units (and the milliseconds
  of prefill and decode of the report's cases). A grid over several sections gives each
  point every one of their entries.
- **the whole accelerator of a model** (:class:`ModelPoint`, :func:`evaluate_point`): the
  point's modeled decode speed and time to the first token (:func:`~ternforge.gen.perf.
  performance`) and, with synthesis, its resources, fit and estimated power: the figures the
  objectives of :mod:`ternforge.gen.pareto` read. :func:`run_points` evaluates points in
  this process, in ``jobs`` processes or on a Dask ``distributed`` cluster, and keeps each
  point's line in the cache (``sweep/``) under a hash of the point and of ternforge's own
  sources, so a rerun of the same points costs nothing and a changed cycle model is never
  answered from an old entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from ..boards import RESOURCE_KEYS, Board, get_board
from ..hdl.accelerator.model import PROJECTIONS, preset
from ..hdl.common.checks import check_int
from ..sim.cache import cache_root, write_atomically
from .accelerator import (accelerator_fit, accelerator_parameters, accelerator_resources,
                          check_memory)
from .reports.attention import attention_entry
from .config import ENGINES, SECTIONS, DesignConfig
from .elaborate import ELTWISE_UNIT
from .perf import latency_cycles, memory_timing, performance
from .reports.design import eltwise_entry, engine_entry

__all__ = ["swept_sections", "sweep_line", "sweep_tables", "ModelPoint", "check_point",
           "evaluate_point", "run_points"]


def swept_sections(names) -> list[str]:
    """The configuration sections the parameter ``names`` belong to (``tlmm`` for a sweep
    of the board alone); refuses the ``accelerator`` section's, which only a sweep of a
    model's accelerator against objectives measures."""
    for name in names:
        if name.startswith("accelerator."):
            raise ValueError(f"Parameter {name} must be swept against an --objective (it is "
                             f"the accelerator's), not {name!r} alone")
    return [s for s in SECTIONS if any(n.startswith(f"{s}.") for n in names)] or ["tlmm"]


def _tlmm(config: DesignConfig, board: Board) -> dict:
    engines = {kind: engine_entry(config.tlmm, kind, board) for kind in ENGINES}
    return {**{kind: {**entry["resources"], "macs_per_cycle": entry["macs_per_cycle"],
                      "lut_per_mac_per_cycle": entry["lut_per_mac_per_cycle"]}
               for kind, entry in engines.items()},
            **{f"lut_ratio_{kind}_to_adder": round(
                engines[kind]["resources"]["LUT"] / engines["adder"]["resources"]["LUT"], 3)
               for kind in ("tlmm", "tlmm-lutram")}}


def _eltwise(config: DesignConfig, board: Board) -> dict:
    resources, facts = eltwise_entry(config.eltwise, board)
    return {ELTWISE_UNIT: {**resources, "cycles_per_token": facts["cycles_per_token"]}}


def _attention(config: DesignConfig, board: Board) -> dict:
    modules, facts = attention_entry(config.attention, board)
    return {**modules, "attention_cases": [
        {key: case[key] for key in ("phase", "tokens", "keys", "cycles", "ms")}
        for case in facts["cases"]]}


_ENTRIES = {"tlmm": _tlmm, "eltwise": _eltwise, "attention": _attention}


def sweep_line(point: dict, config: DesignConfig, sections: list[str]) -> dict:
    """One point's line: ``params``, ``board``, each swept section's units (resources and
    figures, by name) and ``fits``: each unit fits the point's board."""
    board = get_board(config.board)
    units = {}
    for section in sections:
        units.update(_ENTRIES[section](config, board))
    fits = {name: not board.fits({key: entry[key] for key in RESOURCE_KEYS})
            for name, entry in units.items()
            if isinstance(entry, dict) and set(RESOURCE_KEYS) <= set(entry)}
    return {"params": point, "board": config.board, "fits": fits, **units}


def _tlmm_table(lines, names, board):
    table = Table(title=f"TLMM engines vs plain-adder baseline (Yosys synth_xilinx, base "
                        f"board {board})")
    for column in (*names, "MAC/cycle", *(f"{kind} LUT/MAC" for kind in ENGINES),
                   *(f"{kind} LUT" for kind in ENGINES), *(f"{kind} FF" for kind in ENGINES)):
        table.add_column(column, justify="right")
    for line in lines:
        table.add_row(*(str(line["params"][n]) for n in names),
                      str(line["adder"]["macs_per_cycle"]),
                      *(f"{line[kind]['lut_per_mac_per_cycle']:.2f}" for kind in ENGINES),
                      *(f"{line[kind]['LUT']:,}" for kind in ENGINES),
                      *(f"{line[kind]['FF']:,}" for kind in ENGINES))
    return table


def _units_table(lines, names, board, title, units, figures):
    """A row a point: its parameters, each unit's resources, then ``figures`` (column name
    -> the value of a line)."""
    table = Table(title=f"{title} (Yosys synth_xilinx, base board {board})")
    columns = [f"{unit} {key}" for unit in units for key in ("LUT", "FF", "DSP", "BRAM36")]
    for column in (*names, *columns, *figures):
        table.add_column(column, justify="right")
    for line in lines:
        table.add_row(*(str(line["params"][n]) for n in names),
                      *(f"{line[unit][key]:,}" for unit in units
                        for key in ("LUT", "FF", "DSP", "BRAM36")),
                      *(figure(line) for figure in figures.values()))
    return table


def _case_ms(phase):
    return lambda line: " / ".join(f"{case['ms']:.2f}" for case in line["attention_cases"]
                                   if case["phase"] == phase)


def sweep_tables(lines: list[dict], sections: list[str], board: str) -> list[Table]:
    """A rich table per swept section."""
    names = list(lines[0]["params"])
    tables = {
        "tlmm": lambda: _tlmm_table(lines, names, board),
        "eltwise": lambda: _units_table(lines, names, board, "Element-wise unit",
                                        [ELTWISE_UNIT], {"cycles/token": lambda line: (
                                            f"{line[ELTWISE_UNIT]['cycles_per_token']:,}")}),
        "attention": lambda: _units_table(
            lines, names, board, "Attention units", ["attention_prefill", "attention_decode"],
            {"prefill ms (M = 64 / 128)": _case_ms("prefill"),
             "decode ms (L = 128 / max)": _case_ms("decode")}),
    }
    return [tables[section]() for section in sections]


@functools.cache
def _sources_key() -> str:
    """A hash of ternforge's own sources (Python and Verilog): what a point's figures are
    computed by."""
    from .. import boards, gen, hdl, sim

    digest = hashlib.sha256()
    for package in (boards, gen, hdl, sim):
        root = Path(package.__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".v")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPoint:
    """A point of a sweep of a model's accelerator: what decides its line.

    Members
    -------
    params : dict
        The swept parameters' values (the line's ``params``).
    model : str
        The model preset.
    config : dict
        The point's :class:`~ternforge.gen.config.DesignConfig` as :meth:`~ternforge.gen.
        config.DesignConfig.to_dict` gives it.
    contexts, prompts : tuple of int
        The decode contexts and prompt lengths modeled.
    latency : int or None
        The DDR read latency (cycles) the cycle model assumes; None: the board's
        (:func:`~ternforge.gen.perf.latency_cycles`).
    synthesis : bool
        Synthesise the accelerator's parts (resources, fit, power).
    """

    params: dict
    model: str
    config: dict
    contexts: tuple
    prompts: tuple
    latency: int | None
    synthesis: bool

    def key(self) -> str:
        """The hash of the point and of ternforge's sources: its cache entry's name."""
        text = json.dumps({**asdict(self), "sources": _sources_key()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_point(point: ModelPoint):
    """The configuration, accelerator parameters and board of ``point``; refuses
    (``ValueError``) a design that is not one, a model that does not fit the board's DDR, a
    projection outside the GEMV cycle model's domain, and a context or prompt longer than its
    KV cache holds."""
    config = DesignConfig.from_dict(point.config)
    board = get_board(config.board)
    model = preset(point.model)
    parameters = accelerator_parameters(config, model)
    check_memory(parameters, board)
    memory = memory_timing(latency_cycles(board.clock_hz, point.latency))
    for projection in PROJECTIONS:
        parameters.gemv_unit.check_layer(*model.projection_shape(projection), memory=memory)
    for context in point.contexts:
        check_int(f"Context of {point.model} on {point.params}", context, 2,
                  parameters.context)
    for prompt in point.prompts:
        check_int(f"Prompt tokens of {point.model} on {point.params}", prompt, 1,
                  parameters.context)
    return config, parameters, board


def evaluate_point(point: ModelPoint, synthesis_jobs: int | None = 1) -> dict:
    """``point``'s line: ``params``, ``model``, ``board``, the modeled ``decode_tokens_per_s``,
    ``roofline_tokens_per_s``, ``ddr_bytes_per_token`` (by context) and ``ttft_s`` (by
    prompt), and ``fits``, ``resources``, ``utilization`` and ``power_w`` (None without
    synthesis), as JSON gives them back (keys are strings). Its parts are synthesised
    ``synthesis_jobs`` at once (None: one a core)."""
    config, parameters, board = check_point(point)
    result = performance(parameters, board, contexts=list(point.contexts),
                         prompts=list(point.prompts), latency=point.latency,
                         lm_head=config.accelerator.lm_head)
    line = {"params": point.params, "model": point.model, "board": board.name,
            **{key: result[key] for key in ("decode_tokens_per_s", "roofline_tokens_per_s",
                                            "ddr_bytes_per_token", "ttft_s")},
            "fits": None, "resources": None, "utilization": None, "power_w": None}
    if point.synthesis:
        line.update(accelerator_fit(accelerator_resources(parameters, jobs=synthesis_jobs),
                                    board))
    return json.loads(json.dumps(line))


def _entry(point: ModelPoint) -> Path:
    return cache_root() / "sweep" / f"{point.key()}.json"


def _cached(point: ModelPoint) -> dict | None:
    try:
        return json.loads(_entry(point).read_text())
    except (OSError, ValueError):  # none yet, or damaged: evaluated again
        return None


def run_points(points: list[ModelPoint], *, jobs: int = 1, scheduler: str | None = None,
               advance=lambda point, cached: None) -> list[dict]:
    """The lines of ``points``, in order: each from the cache if it is there, else evaluated
    (:func:`evaluate_point`) here (``jobs`` 1), in ``jobs`` processes, or on the Dask
    ``distributed`` scheduler at ``scheduler``, and then cached. ``advance(point, cached)``
    is called as each line is ready."""
    check_int("Jobs", jobs, 1, 256)
    lines, todo = [None] * len(points), []
    for index, point in enumerate(points):
        lines[index] = _cached(point)
        if lines[index] is None:
            todo.append(index)
        else:
            advance(point, True)

    def done(index, line):
        write_atomically(_entry(points[index]), json.dumps(line, sort_keys=True))
        lines[index] = line
        advance(points[index], False)

    if todo and scheduler is not None:
        _on_cluster(scheduler, points, todo, done)
    elif todo and jobs > 1:
        context = multiprocessing.get_context("spawn")  # no forked copy of this process's threads
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
            futures = {pool.submit(evaluate_point, points[i]): i for i in todo}
            for future in as_completed(futures):
                done(futures[future], future.result())
    else:
        for index in todo:  # one point at a time: its parts synthesised in parallel
            done(index, evaluate_point(points[index], synthesis_jobs=None))
    return lines


def _on_cluster(scheduler: str, points, todo, done) -> None:
    """Evaluate the points ``todo`` on the Dask scheduler at ``scheduler``."""
    from distributed import Client
    from distributed import as_completed as completed

    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        raise ValueError(f"Scheduler must be the address of a running Dask scheduler, not "
                         f"{scheduler!r} ({type(error).__name__})") from None
    with client:
        futures = [client.submit(evaluate_point, points[i], key=f"ternforge-point-"
                                 f"{points[i].key()}") for i in todo]
        index = {future.key: i for future, i in zip(futures, todo)}
        for future in completed(futures):
            done(index[future.key], future.result())
