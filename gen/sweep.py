"""Sweeps: one line per point of a parameter grid, with the synthesised resources and the
performance of the units whose parameters are swept.

A point is a :class:`~ternforge.gen.config.DesignConfig`. Sweeping ``tlmm.*`` (or only
``board``) synthesises the three ternary matmul engines side by side; ``eltwise.*`` the
element-wise unit (and its cycles per token); ``attention.*`` the prefill and decode
attention units (and the milliseconds of prefill and decode of the report's cases). A grid
over several sections gives each point every one of their entries.
"""

from __future__ import annotations

from rich.table import Table

from ..boards import RESOURCE_KEYS, Board, get_board
from .reports.attention import attention_entry
from .config import ENGINES, SECTIONS, DesignConfig
from .elaborate import ELTWISE_UNIT
from .reports.design import eltwise_entry, engine_entry

__all__ = ["swept_sections", "sweep_line", "sweep_tables"]


def swept_sections(names) -> list[str]:
    """The configuration sections the parameter ``names`` belong to (``tlmm`` for a sweep
    of the board alone)."""
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
