"""Resource and performance reports of generated engines.

A report is JSON with stable keys plus a rich table for people. Resources come from Yosys
(``synth_xilinx -family xcup``, see :mod:`ternforge.gen.synthesis`); performance figures come
from the engines' own cycle models.
"""

from __future__ import annotations

from rich.table import Table

from ...boards import RESOURCE_KEYS, Board
from .attention import attention_entry
from ..config import ENGINES, DesignConfig, EltwiseConfig, EngineConfig
from ..elaborate import ELTWISE_UNIT, GEMV_TOP, MODULE_NAMES, to_rtlil
from ..synthesis import synthesize

__all__ = ["engine_entry", "gemv_entry", "eltwise_entry", "design_report", "power_estimate",
           "check_fits", "resource_table", "accelerator_table", "REPORT_LAYER"]

#: the layer the report's weight plan describes: a BitNet b1.58 0.7B projection, decoding
REPORT_LAYER = {"n": 4096, "k": 1536, "tokens": 1}

#: switching activity assumed by the power estimate until simulation supplies one
DEFAULT_TOGGLE_RATE = 0.125


def engine_entry(config: EngineConfig, kind: str, board: Board) -> dict:
    """Resources and performance of one engine, synthesised (cached) with Yosys."""
    engine = config.parameters(kind)
    synthesis = synthesize(to_rtlil(config, kind), top=MODULE_NAMES[kind])
    macs = engine.macs_per_cycle
    return {
        "kind": kind,
        "resources": {key: synthesis[key] for key in RESOURCE_KEYS},
        "cells": synthesis["cells"],
        "macs_per_cycle": macs,
        "lut_per_mac_per_cycle": round(synthesis["LUT"] / macs, 3),
        "ff_per_mac_per_cycle": round(synthesis["FF"] / macs, 3),
        "latency": engine.latency,
        "acc_width": engine.acc_width,
        "weight_bits_per_weight": round(engine.slot_bits / config.group_size, 3),
        "peak_gmacs_per_s": round(macs * board.clock_hz / 1e9, 2),
    }


def gemv_entry(config: EngineConfig, board: Board) -> tuple[dict, dict]:
    """The synthesised resources of the GEMV top (burst reader, descriptor table, line
    assembler, URAM buffer sized by the plan, LUT-RAM engine, registers) and the plan of
    :data:`REPORT_LAYER`."""
    from amaranth.back import rtlil

    from ..elaborate import gemv_top
    from ...sim.models.weight_plan import plan_layer

    plan = plan_layer(engine=config.parameters("tlmm-lutram"), board=board, **REPORT_LAYER)
    top = gemv_top(config, buffer_depth=plan.capacity_beats)
    synthesis = synthesize(rtlil.convert(top, name=GEMV_TOP, emit_src=False), top=GEMV_TOP)
    summary = {key: value for key, value in plan.to_dict().items() if key != "descriptors"}
    return {key: synthesis[key] for key in RESOURCE_KEYS}, summary


def eltwise_entry(config: EltwiseConfig, board: Board) -> tuple[dict, dict]:
    """The synthesised resources of the element-wise unit and its facts: latencies, the
    token buffers and the cycles of one token of the configured hidden size."""
    from amaranth.back import rtlil

    unit = config.parameters
    synthesis = synthesize(rtlil.convert(config.component(), name=ELTWISE_UNIT,
                                         emit_src=False), top=ELTWISE_UNIT)
    cycles = unit.cycles(1, config.hidden)
    facts = {"format": config.format, "hidden": config.hidden,
             "buffer_bits": unit.buffer_bits, "cycles_per_token": cycles,
             "token_period_cycles": unit.token_period(config.hidden),
             "us_per_token": round(cycles / board.clock_hz * 1e6, 3)}
    return {key: synthesis[key] for key in RESOURCE_KEYS}, facts


def design_report(config: DesignConfig, board: Board, *, advance=lambda name: None) -> dict:
    """The ``report.json`` of a design: every engine kind, its resources and utilisation.

    ``advance(name)`` is called before each module is synthesised (for progress display).
    """
    engines = {}
    for kind in ENGINES:
        advance(MODULE_NAMES[kind])
        engines[MODULE_NAMES[kind]] = engine_entry(config.tlmm, kind, board)
    modules = {name: entry["resources"] for name, entry in engines.items()}
    advance(GEMV_TOP)
    modules[GEMV_TOP], plan = gemv_entry(config.tlmm, board)
    advance(ELTWISE_UNIT)
    modules[ELTWISE_UNIT], eltwise = eltwise_entry(config.eltwise, board)
    advance("attention units")
    attention_modules, attention = attention_entry(config.attention, board)
    modules.update(attention_modules)
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
        "total": total,
        "utilization": board.utilization(total),
        "module_utilization": {name: board.utilization(r) for name, r in modules.items()},
        "engines": engines,
        "source": "yosys-synth_xilinx",
    }


def power_estimate(modules: dict, board: Board, toggle_rate=DEFAULT_TOGGLE_RATE) -> dict:
    """An estimate, never sign-off: the board's static power plus, per module, the used
    resources times the board's per-resource coefficients times the clock times an assumed
    switching activity (see :class:`~ternforge.boards.Board`). Each module is estimated as if
    it were the only one on the device."""
    dynamic = {name: round(sum(used[key] * board.dynamic_power_w_per_mhz[key]
                               for key in RESOURCE_KEYS) * board.clock_mhz * toggle_rate, 3)
               for name, used in modules.items()}
    return {"estimate": True, "method": "static + resources x W/MHz x clock x toggle rate",
            "toggle_rate": toggle_rate, "toggle_rate_source": "assumed", "clock_hz": board.clock_hz,
            "static_w": board.static_power_w, "dynamic_w": dynamic,
            "total_w": {name: round(board.static_power_w + watts, 3)
                        for name, watts in dynamic.items()}}


def check_fits(report: dict, board: Board) -> None:
    """Refuse (``ValueError``) a design any of whose modules is larger than the board."""
    for name, resources in report["modules"].items():
        reasons = board.fits(resources)
        if reasons:
            raise ValueError(f"{name} does not fit {board.name}: {'; '.join(reasons)}")


def resource_table(report: dict) -> Table:
    """A rich table of a design report: one row per module, then the total."""
    table = Table(title=f"ternforge resources on {report['board']} ({report['source']})")
    table.add_column("module")
    for key in RESOURCE_KEYS:
        table.add_column(key, justify="right")
    table.add_column("MAC/cycle", justify="right")
    table.add_column("LUT per MAC/cycle", justify="right")
    for name, resources in report["modules"].items():
        engine = report["engines"].get(name)
        table.add_row(name, *(f"{resources[k]:,}" for k in RESOURCE_KEYS),
                      str(engine["macs_per_cycle"]) if engine else "",
                      f"{engine['lut_per_mac_per_cycle']:.2f}" if engine else "")
    table.add_row("total", *(f"{report['total'][k]:,}" for k in RESOURCE_KEYS), "", "",
                  style="bold")
    table.add_row("utilization %", *(f"{report['utilization'][k]:.2f}" for k in RESOURCE_KEYS),
                  "", "", style="dim")
    return table


def accelerator_table(report: dict) -> Table:
    """A rich table of an accelerator's report (:func:`ternforge.gen.accelerator
    .accelerator_report`): a row per part, the total, its utilisation, and its DDR image."""
    memory = report["memory_map"]
    table = Table(title=f"{report['top']} for {report['model']['name']} on {report['board']} "
                        f"({report['source']}); DDR image {memory['bytes'] / 1e6:,.1f} MB")
    table.add_column("part")
    for key in RESOURCE_KEYS:
        table.add_column(key, justify="right")
    for name, resources in report["modules"].items():
        table.add_row(name, *(f"{resources[k]:,}" for k in RESOURCE_KEYS))
    table.add_row("total", *(f"{report['total'][k]:,}" for k in RESOURCE_KEYS), style="bold")
    table.add_row("utilization %", *(f"{report['utilization'][k]:.2f}" for k in RESOURCE_KEYS),
                  style="dim")
    return table
