"""Resource and performance reports of generated engines.

A report is JSON with stable keys plus a rich table for people. Resources come from Yosys
(``synth_xilinx -family xcup``, see :mod:`ternforge.gen.synthesis`); performance figures come
from the engines' own cycle models.
"""

from __future__ import annotations

from rich.table import Table

from ...boards import RESOURCE_KEYS, Board
from .attention import attention_entry
from ..config import ENGINES, AttentionConfig, DesignConfig, EltwiseConfig, EngineConfig
from ..elaborate import ATTENTION_UNITS, ELTWISE_UNIT, GEMV_TOP, MODULE_NAMES, to_rtlil
from ..power import power_estimate
from ..synthesis import synthesize
from ..timing import delay_model, design_timing, path_timing

__all__ = ["engine_entry", "gemv_entry", "eltwise_entry", "design_report", "check_fits",
           "resource_table", "accelerator_table", "REPORT_LAYER"]

#: the layer the report's weight plan describes: a BitNet b1.58 0.7B projection, decoding
REPORT_LAYER = {"n": 4096, "k": 1536, "tokens": 1}


def _measures(synthesis: dict, board: Board, levels: bool) -> dict:
    """A module's resources and, with ``levels``, its estimated timing on ``board``
    (:func:`ternforge.gen.timing.path_timing`: ``levels``, ``fmax_mhz``, ``path``)."""
    resources = {key: synthesis[key] for key in RESOURCE_KEYS}
    return {**resources, **path_timing(synthesis, delay_model(board.part))} if levels \
        else resources


def engine_entry(config: EngineConfig, kind: str, board: Board, *,
                 levels: bool = False) -> dict:
    """Resources and performance of one engine, synthesised (cached) with Yosys; with
    ``levels``, its ``resources`` hold its estimated timing too (see :func:`_measures`)."""
    engine = config.parameters(kind)
    synthesis = synthesize(to_rtlil(config, kind), top=MODULE_NAMES[kind], levels=levels)
    macs = engine.macs_per_cycle
    return {
        "kind": kind,
        "resources": _measures(synthesis, board, levels),
        "cells": synthesis["cells"],
        "macs_per_cycle": macs,
        "lut_per_mac_per_cycle": round(synthesis["LUT"] / macs, 3),
        "ff_per_mac_per_cycle": round(synthesis["FF"] / macs, 3),
        "latency": engine.latency,
        "acc_width": engine.acc_width,
        "weight_bits_per_weight": round(engine.slot_bits / config.group_size, 3),
        "peak_gmacs_per_s": round(macs * board.clock_hz / 1e9, 2),
    }


def gemv_entry(config: EngineConfig, board: Board, *,
               levels: bool = False) -> tuple[dict, dict]:
    """The synthesised resources of the GEMV top (burst reader, descriptor table, line
    assembler, URAM buffer sized by the plan, LUT-RAM engine, registers; with ``levels``, its
    estimated timing too) and the plan of :data:`REPORT_LAYER`."""
    from amaranth.back import rtlil

    from ..elaborate import gemv_top
    from ...sim.models.weight_plan import plan_layer

    plan = plan_layer(engine=config.parameters("tlmm-lutram"), board=board, **REPORT_LAYER)
    top = gemv_top(config, buffer_depth=plan.capacity_beats)
    synthesis = synthesize(rtlil.convert(top, name=GEMV_TOP, emit_src=False), top=GEMV_TOP,
                           levels=levels)
    summary = {key: value for key, value in plan.to_dict().items() if key != "descriptors"}
    return _measures(synthesis, board, levels), summary


def eltwise_entry(config: EltwiseConfig, board: Board, *,
                  levels: bool = False) -> tuple[dict, dict]:
    """The synthesised resources of the element-wise unit (with ``levels``, its estimated
    timing too) and its facts: latencies, the token buffers and the cycles of one token of
    the configured hidden size."""
    from amaranth.back import rtlil

    unit = config.parameters
    synthesis = synthesize(rtlil.convert(config.component(), name=ELTWISE_UNIT,
                                         emit_src=False), top=ELTWISE_UNIT, levels=levels)
    cycles = unit.cycles(1, config.hidden)
    facts = {"format": config.format, "hidden": config.hidden,
             "buffer_bits": unit.buffer_bits, "cycles_per_token": cycles,
             "token_period_cycles": unit.token_period(config.hidden),
             "us_per_token": round(cycles / board.clock_hz * 1e6, 3)}
    return _measures(synthesis, board, levels), facts


def _attention_timing(config: AttentionConfig, board: Board) -> dict:
    """The attention units' estimated timing, by module name: each synthesised with its logic
    levels before :func:`~ternforge.gen.reports.attention.attention_entry` asks for its
    resources, which that run caches too (one run of Yosys a unit)."""
    from amaranth.back import rtlil

    model = delay_model(board.part)
    return {ATTENTION_UNITS[phase]: path_timing(synthesize(
                rtlil.convert(job.component(), name=ATTENTION_UNITS[phase], emit_src=False),
                top=ATTENTION_UNITS[phase], levels=True), model)
            for phase, job in config.jobs().items()}


def design_report(config: DesignConfig, board: Board, *, advance=lambda name: None) -> dict:
    """The ``report.json`` of a design: every engine kind, its resources and utilisation.

    ``advance(name)`` is called before each module is synthesised (for progress display).
    """
    engines = {}
    for kind in ENGINES:
        advance(MODULE_NAMES[kind])
        engines[MODULE_NAMES[kind]] = engine_entry(config.tlmm, kind, board, levels=True)
    modules = {name: entry["resources"] for name, entry in engines.items()}
    advance(GEMV_TOP)
    modules[GEMV_TOP], plan = gemv_entry(config.tlmm, board, levels=True)
    advance(ELTWISE_UNIT)
    modules[ELTWISE_UNIT], eltwise = eltwise_entry(config.eltwise, board, levels=True)
    advance("attention units")
    attention_timing = _attention_timing(config.attention, board)
    attention_modules, attention = attention_entry(config.attention, board)
    modules.update({name: {**resources, **attention_timing[name]}
                    for name, resources in attention_modules.items()})
    total = {key: sum(resources[key] for resources in modules.values()) for key in RESOURCE_KEYS}
    return {
        "weight_plan": plan,
        "eltwise": eltwise,
        "attention": attention,
        "power": power_estimate(modules, board),
        "board": board.name,
        "part": board.part,
        "clock_hz": board.clock_hz,
        "config": config.to_dict(),
        "modules": modules,
        "timing": design_timing(modules, part=board.part, clock_hz=board.clock_hz),
        "total": total,
        "utilization": board.utilization(total),
        "module_utilization": {name: board.utilization(r) for name, r in modules.items()},
        "engines": engines,
        "source": "yosys-synth_xilinx",
    }


def check_fits(report: dict, board: Board) -> None:
    """Refuse (``ValueError``) a design any of whose modules is larger than the board."""
    for name, resources in report["modules"].items():
        reasons = board.fits(resources)
        if reasons:
            raise ValueError(f"{name} does not fit {board.name}: {'; '.join(reasons)}")


def _timing_cells(entry: dict) -> tuple[str, str]:
    """A module's levels and estimated Fmax as table cells (empty if not reported)."""
    if "levels" not in entry:
        return "", ""
    return str(entry["levels"]), f"{entry['fmax_mhz']:,.0f}"


def _timing_caption(report: dict) -> str | None:
    timing = report.get("timing")
    if not timing or not timing["worst"]:
        return None
    worst = timing["worst"]
    verdict = "meets" if timing["meets_clock"] else "misses"
    return (f"estimated Fmax {timing['fmax_mhz']:,.0f} MHz ({worst['module']}: "
            f"{worst['path_levels']} levels, {worst['from']} -> {worst['to']}); {verdict} "
            f"{timing['clock_mhz']:g} MHz, which allows {timing['max_levels']} LUT levels "
            f"at {timing['speed_grade']} (an estimate)")


def resource_table(report: dict) -> Table:
    """A rich table of a design report: one row per module (its resources, logic levels and
    estimated Fmax), then the total."""
    table = Table(title=f"ternforge resources on {report['board']} ({report['source']})",
                  caption=_timing_caption(report))
    table.add_column("module")
    for key in RESOURCE_KEYS:
        table.add_column(key, justify="right")
    table.add_column("levels", justify="right")
    table.add_column("Fmax MHz", justify="right")
    table.add_column("MAC/cycle", justify="right")
    table.add_column("LUT per MAC/cycle", justify="right")
    for name, resources in report["modules"].items():
        engine = report["engines"].get(name)
        table.add_row(name, *(f"{resources[k]:,}" for k in RESOURCE_KEYS),
                      *_timing_cells(resources),
                      str(engine["macs_per_cycle"]) if engine else "",
                      f"{engine['lut_per_mac_per_cycle']:.2f}" if engine else "")
    table.add_row("total", *(f"{report['total'][k]:,}" for k in RESOURCE_KEYS), "", "", "",
                  "", style="bold")
    table.add_row("utilization %", *(f"{report['utilization'][k]:.2f}" for k in RESOURCE_KEYS),
                  "", "", "", "", style="dim")
    return table


def accelerator_table(report: dict) -> Table:
    """A rich table of an accelerator's report (:func:`ternforge.gen.accelerator
    .accelerator_report`): a row per part (its resources, logic levels and estimated Fmax),
    the total, its utilisation, and its DDR image; the caption names the slowest path."""
    memory = report["memory_map"]
    table = Table(title=f"{report['top']} for {report['model']['name']} on {report['board']} "
                        f"({report['source']}); DDR image {memory['bytes'] / 1e6:,.1f} MB",
                  caption=_timing_caption(report))
    table.add_column("part")
    for key in RESOURCE_KEYS:
        table.add_column(key, justify="right")
    table.add_column("levels", justify="right")
    table.add_column("Fmax MHz", justify="right")
    for name, resources in report["modules"].items():
        table.add_row(name, *(f"{resources[k]:,}" for k in RESOURCE_KEYS),
                      *_timing_cells(resources))
    table.add_row("total", *(f"{report['total'][k]:,}" for k in RESOURCE_KEYS), "", "",
                  style="bold")
    table.add_row("utilization %", *(f"{report['utilization'][k]:.2f}" for k in RESOURCE_KEYS),
                  "", "", style="dim")
    return table
