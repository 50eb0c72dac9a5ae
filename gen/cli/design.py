"""The design-wide commands: ``boards``, ``generate`` (the accelerator of a model),
``report units`` (the separate units side by side) and ``plan``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from amaranth.back import verilog
from rich.progress import Progress
from rich.table import Table

from ...boards import RESOURCE_KEYS, all_boards, get_board
from ...hdl.accelerator.model import preset
from ...hdl.common.checks import check_int
from ..accelerator import (TOP, accelerator_parameters, accelerator_report,
                           accelerator_verilog, check_memory, part_names)
from ..elaborate import ATTENTION_UNITS, ELTWISE_UNIT, GEMV_TOP, MODULE_NAMES, gemv_top, to_verilog
from ..reports.design import accelerator_table, check_fits, design_report, resource_table
from ..vivado import SCRIPTS, check_board, vivado_design, write_vivado
from ._common import (check_out_file, check_out_folder, console, design,
                      model_design_options, publish)
from ._common import staging as staging_folder  # (``staging`` names the folder itself)

__all__ = ["boards", "generate", "report_units", "plan"]


@click.command()
def boards():
    """List the known boards and their resources."""
    table = Table(title="ternforge boards")
    for column in ("board", "part", "clock MHz", *RESOURCE_KEYS, "DDR GB/s"):
        table.add_column(column, justify="left" if column in ("board", "part") else "right")
    for board in all_boards().values():
        table.add_row(board.name, board.part, f"{board.clock_hz / 1e6:g}",
                      *(f"{board.resources[k]:,}" for k in RESOURCE_KEYS),
                      f"{board.ddr_bytes_per_s / 1e9:g}")
    console.print(table)


@click.command()
@model_design_options
@click.option("--jobs", default=None, type=int, help="Parts synthesised at once (default: one "
              "a core).")
@click.option("--vivado", is_flag=True, help="Also write Vivado Tcl scripts (vivado/): "
              "synthesis and implementation with reports, and a block design with the Zynq "
              "processing system.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
def generate(model_name, board, config_file, jobs, vivado, out):
    """Write the accelerator of a model for a board: one Verilog top
    (verilog/ternforge_accelerator.v) and report.json (its resources, DDR memory map and
    registers) to OUT; with --vivado, also the scripts that take it into Vivado (vivado/)."""
    config, target = design(board, config_file)
    model = preset(model_name)
    if jobs is not None:
        check_int("--jobs", jobs, 1, 256)
    check_out_folder(out)
    parameters = accelerator_parameters(config, model)
    memory = check_memory(parameters, target)  # before any work: it fits the board's DDR
    if vivado:
        check_board(target)  # before any work too: Vivado has board files for it
    with staging_folder(out.parent) as staging:
        (staging / "verilog").mkdir()
        parts = len(part_names(parameters))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"elaborating {TOP}", total=parts + 1)
            text = accelerator_verilog(parameters)
            (staging / "verilog" / f"{TOP}.v").write_text(text)
            progress.update(task, description=f"synthesising {parts} parts (Yosys)")
            progress.advance(task)

            def advance(name):
                progress.update(task, description=f"synthesised {name}")
                progress.advance(task)
            report = accelerator_report(config, parameters, target, memory=memory, jobs=jobs,
                                        advance=advance)
        (staging / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        (staging / "config.toml").write_text(config.to_toml())
        if vivado:
            write_vivado(vivado_design(text, target), staging / "vivado")
        publish(staging, out)
    console.print(accelerator_table(report))
    console.print(f"wrote {out / 'verilog' / (TOP + '.v')} and {out / 'report.json'}")
    if vivado:
        folder = out / "vivado"
        console.print(f"wrote {folder}: run vivado -mode batch -source "
                      f"{folder / SCRIPTS['project']} (utilisation and timing) or "
                      f"{folder / SCRIPTS['block design']} (block design and bitstream)",
                      soft_wrap=True)


@click.command("units")
@click.option("--board", default=None, help="Target board (default: the configuration's, kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
def report_units(board, config_file, out):
    """Write the separate units' Verilog and their resource report (report.json) to OUT:
    the three engines (the LUT-RAM TLMM engine, the register-table engine and the adder
    baseline) side by side, the GEMV top, the element-wise unit and the attention units."""
    config, target = design(board, config_file)
    check_out_folder(out)
    with staging_folder(out.parent) as staging:
        (staging / "verilog").mkdir()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("elaborating", total=2 * len(MODULE_NAMES) + 7)
            for kind, name in MODULE_NAMES.items():
                progress.update(task, description=f"elaborating {name}")
                (staging / "verilog" / f"{name}.v").write_text(to_verilog(config.tlmm, kind))
                progress.advance(task)
            progress.update(task, description=f"elaborating {GEMV_TOP}")
            (staging / "verilog" / f"{GEMV_TOP}.v").write_text(
                verilog.convert(gemv_top(config.tlmm), name=GEMV_TOP))
            progress.advance(task)
            progress.update(task, description=f"elaborating {ELTWISE_UNIT}")
            (staging / "verilog" / f"{ELTWISE_UNIT}.v").write_text(
                verilog.convert(config.eltwise.component(), name=ELTWISE_UNIT))
            progress.advance(task)
            for phase, job in config.attention.jobs().items():
                name = ATTENTION_UNITS[phase]
                progress.update(task, description=f"elaborating {name}")
                (staging / "verilog" / f"{name}.v").write_text(
                    verilog.convert(job.component(), name=name))
                progress.advance(task)

            def advance(name):
                progress.update(task, description=f"synthesising {name} (Yosys)")
                progress.advance(task)
            report = design_report(config, target, advance=advance)
        check_fits(report, target)
        (staging / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        (staging / "config.toml").write_text(config.to_toml())
        publish(staging, out)
    console.print(resource_table(report))
    console.print(f"wrote {out / 'verilog'} and {out / 'report.json'}")


def _layer_shape(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--layer must be N,K with positive integers, not {text!r}")
    return int(parts[0]), int(parts[1])


@click.command()
@click.option("--layer", required=True, help="Layer shape N,K (output rows, reduction).")
@click.option("--tokens", default=1, show_default=True, help="Tokens M (1: decode).")
@click.option("--board", default=None, help="Target board (default kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON.")
@click.option("--mem-latency", default=64, show_default=True, help="DDR latency in cycles.")
@click.option("--mem-bytes-per-cycle", type=float, default=None,
              help="DDR bandwidth in bytes per cycle (default: the board's peak).")
@click.option("--json", "json_file", type=click.Path(path_type=Path), default=None,
              help="Also write the plan, with its descriptors, as JSON.")
def plan(layer, tokens, board, config_file, mem_latency, mem_bytes_per_cycle, json_file):
    """Plan a layer's weights from DDR through URAM into the LUT-RAM TLMM engine."""
    from ...sim.models.weight_plan import MemoryModel, plan_layer

    config, target = design(board, config_file)
    if json_file is not None:
        check_out_file(json_file, (config_file,))
    n, k = _layer_shape(layer)
    overrides = {"latency": mem_latency}
    if mem_bytes_per_cycle is not None:
        overrides["bytes_per_cycle"] = mem_bytes_per_cycle
    engine = config.tlmm.parameters("tlmm-lutram")
    engine.check_job(tokens, k, n)  # a layer the engine computes exactly, as run gemv asks
    result = plan_layer(n=n, k=k, tokens=tokens, engine=engine, board=target,
                        memory=MemoryModel.of_board(target, **overrides))
    values = result.to_dict()
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(values, indent=2) + "\n")
    table = Table(title=f"weight plan: {n} x {k}, {tokens} token(s), on {target.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in values.items():
        if key != "descriptors":
            table.add_row(key, f"{value:,}" if isinstance(value, int) and not
                          isinstance(value, bool) else str(value))
    table.add_row("descriptors", str(len(values["descriptors"])))
    console.print(table)
