"""``ternforge perf``: a model's decode tokens per second and time to the first token on a
board, from the accelerator's cycle model (:mod:`ternforge.gen.perf`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from ...hdl.accelerator.model import preset
from ...hdl.accelerator.parameters import AcceleratorParameters
from ...sim.machine import SIMULATED
from ..accelerator import (accelerator_fit, accelerator_parameters, accelerator_resources,
                           check_memory, part_names)
from ..perf import CONTEXTS, LATENCY_NS, PARTS, PROMPTS, performance, plot_performance
from ._common import check_out_file, console, design, model_design_options, staging

__all__ = ["perf"]


def _numbers(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{what} must be integers separated by commas, not {text!r}") from None


@click.command()
@model_design_options
@click.option("--contexts", default=None,
              help=f"Decode contexts, comma-separated (default: those of "
                   f"{', '.join(map(str, CONTEXTS))} the design's KV cache holds).")
@click.option("--prompts", default=",".join(map(str, PROMPTS)), show_default=True,
              help="Prompt lengths for the time to the first token, comma-separated.")
@click.option("--latency", default=None, type=int,
              help=f"DDR read latency in cycles that the cycle model assumes (default: "
                   f"{LATENCY_NS} ns at the board's clock).")
@click.option("--synthesis/--no-synthesis", default=True, show_default=True,
              help="Synthesise the accelerator's parts (cached by content) to say whether it "
                   "fits the board; without, fits is null.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), default=None,
              help="Write the figures as JSON.")
@click.option("--plot", "plot_file", type=click.Path(path_type=Path), default=None,
              help="Draw time per token against context, by part, as PNG.")
def perf(model_name, board, config_file, contexts, prompts, latency, synthesis, json_file,
         plot_file):
    """Decode tokens per second and time to the first token of a model on a board, broken
    down by part, with the DDR bytes per token against the memory roofline: from the
    accelerator's cycle model of the runtime's programs (modeled, not measured)."""
    config, target = design(board, config_file)
    model = preset(model_name)
    for out in (json_file, plot_file):
        if out is not None:
            check_out_file(out, (config_file,))
    if plot_file is not None and plot_file.suffix.lower() != ".png":
        raise ValueError(f"Plot must be a .png file, not {str(plot_file)!r}")
    if model_name in SIMULATED:  # on the accelerator ``run model`` simulates
        parameters = AcceleratorParameters.for_simulation(model,
                                                          context=SIMULATED[model_name])
    else:
        parameters = accelerator_parameters(config, model)
        check_memory(parameters, target)
    with console.status("modeling") as status:
        result = performance(parameters, target, contexts=_numbers(contexts, "Contexts"),
                             prompts=_numbers(prompts, "Prompts"), latency=latency,
                             lm_head=config.accelerator.lm_head,
                             progress=lambda what: status.update(f"modeling the {what}"))
    result["accelerator"] = "simulation" if model_name in SIMULATED else "design"
    result.update(fits=None, resources=None, utilization=None)
    if synthesis:
        with Progress(console=console, transient=True) as progress:
            parts = len(part_names(parameters))
            task = progress.add_task(f"synthesising {parts} parts (Yosys)", total=parts)
            modules = accelerator_resources(parameters, advance=lambda name: progress.advance(
                task))
        fit = accelerator_fit(modules, target)
        result.update({key: fit[key] for key in ("fits", "resources", "utilization")})
    for out, write in ((json_file, _write_json), (plot_file, plot_performance)):
        if out is not None:
            with staging(out.parent) as folder:
                write(result, folder / out.name)
                (folder / out.name).replace(out)
    console.print(_table(result))
    if result["fits"] is not None:
        console.print(f"the accelerator {'fits' if result['fits'] else 'does NOT fit'} "
                      f"{target.name}: " + ", ".join(
                          f"{key} {share:.1f} %" for key, share in result["utilization"].items()))
    for out in (json_file, plot_file):
        if out is not None:
            console.print(f"wrote {out}")


def _write_json(result: dict, path: Path) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict) -> Table:
    table = Table(title=f"{result['model']} on {result['board']}: modeled from the cycle "
                        f"model, DDR latency {result['memory']['latency']} cycles")
    for column in ("", "tokens/s", "roofline tokens/s", "of roofline", "MB/token",
                   *(p.replace("_", " ") + " ms" for p in PARTS)):
        table.add_column(column, justify="right")
    for context, speed in result["decode_tokens_per_s"].items():
        parts = result["breakdown"]["decode"][context]
        table.add_row(f"decode, context {context:,}", f"{speed:,.2f}",
                      f"{result['roofline_tokens_per_s'][context]:,.2f}",
                      f"{result['roofline_fraction'][context]:.0%}",
                      f"{result['ddr_bytes_per_token'][context] / 1e6:,.1f}",
                      *(f"{1e3 * parts[p]:,.2f}" for p in PARTS))
    for prompt, seconds in result["ttft_s"].items():
        parts = result["breakdown"]["prefill"][prompt]
        table.add_row(f"first token, prompt {prompt}", f"{seconds:,.3f} s", "", "", "",
                      *(f"{1e3 * parts[p]:,.1f}" for p in PARTS))
    return table
