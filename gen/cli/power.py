"""``ternforge power``: the power estimate of a model's accelerator on a board, each part's
activity measured on Verilator (:mod:`ternforge.gen.power`, :mod:`ternforge.sim.activity`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import Progress

from ...hdl.accelerator.model import preset
from ...hdl.common.checks import check_int
from ..accelerator import (accelerator_parameters, accelerator_power, accelerator_resources,
                           beside_activity, check_memory, part_names)
from ..power import power_table
from ._common import check_out_file, console, design, model_design_options

__all__ = ["power"]


@click.command()
@model_design_options
@click.option("--jobs", default=None, type=int, help="Parts synthesised at once (default: one "
              "a core).")
@click.option("--json", "json_file", type=click.Path(path_type=Path), default=None,
              help="Write the estimate as JSON (the keys of report.json's power).")
def power(model_name, board, config_file, jobs, json_file):
    """Estimate the power of a model's accelerator on a board: the board's static power once,
    plus each part's resources (Yosys, cached) x the board's W/MHz per resource x the clock x
    the part's activity, measured on Verilator decoding with the tiny model (cached); and the
    energy per decoded token. An estimate, not sign-off."""
    config, target = design(board, config_file)
    model = preset(model_name)
    if jobs is not None:
        check_int("--jobs", jobs, 1, 256)
    if json_file is not None:
        check_out_file(json_file, (config_file,))
    parameters = accelerator_parameters(config, model)
    check_memory(parameters, target)  # a model whose image does not fit: refused first
    parts = len(part_names(parameters))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"synthesising {parts} parts (Yosys) and measuring the "
                                 f"activity (Verilator)", total=parts)

        def advance(name):
            progress.update(task, description=f"synthesised {name}")
            progress.advance(task)
        modules, measured = beside_activity(
            lambda: accelerator_resources(parameters, jobs=jobs, advance=advance))
    estimate = accelerator_power(parameters, target, modules, measured)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(estimate, indent=2) + "\n")
    console.print(power_table(estimate, modules))
    workload = measured["workload"]
    console.print(f"{model.name} on {target.name}: {estimate['total_w']:.2f} W estimated "
                  f"(static {estimate['static_w']:.2f} W); activity from the tiny model on "
                  f"Verilator, a prefill of {workload['prompt_tokens']} tokens and "
                  f"{workload['decode_steps']} decode step")
