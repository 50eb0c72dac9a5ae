"""``ternforge sweep``: every point of a parameter grid, as the separate units or as the whole
accelerator of a model against model-level objectives (:mod:`ternforge.gen.sweep`,
:mod:`ternforge.gen.pareto`)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from ...boards import get_board
from ...hdl.accelerator.model import PRESETS, preset
from ...hdl.common.checks import check_int
from ..pareto import objective_value, parse_objective, pareto_front, plot_pareto
from ..perf import LATENCY_NS
from ..sweep import ModelPoint, check_point, run_points, sweep_line, sweep_tables, swept_sections
from ._common import check_out_folder, console, design, publish, staging

__all__ = ["sweep"]


def _parse_params(params: tuple[str, ...]) -> dict[str, list]:
    grid = {}
    for param in params:
        name, sep, values = param.partition("=")
        if not sep or not values:
            raise ValueError(f"--param must be NAME=V1,V2,..., not {param!r}")
        if name in grid:
            raise ValueError(f"--param names must differ, not {name!r} twice")
        grid[name] = [int(v) if v.strip().lstrip("-").isdigit() else v.strip()
                      for v in values.split(",")]
        if len(set(grid[name])) != len(grid[name]):
            raise ValueError(f"--param values must differ, not {param!r}")
    return grid


@click.command()
@click.option("--param", "params", multiple=True, required=True,
              help="A swept parameter, e.g. tlmm.group_size=2,3,4 (repeat for a grid).")
@click.option("--board", default=None, help="Target board (default kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Base design configuration, TOML or JSON.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--objective", "objectives", multiple=True,
              help="Sweep the model's whole accelerator against this objective (repeat): "
                   "tokens_per_s@CONTEXT, ttft@PROMPT, LUT, FF, CARRY8, DSP, BRAM36, URAM or "
                   "power. Writes pareto.json and pareto.png beside sweep.jsonl.")
@click.option("--model", "model_name", default="bitnet-0.7b", show_default=True,
              help=f"The model of an objective sweep ({', '.join(PRESETS)}).")
@click.option("--latency", default=None, type=int,
              help=f"DDR read latency in cycles that an objective sweep's cycle model assumes "
                   f"(default: {LATENCY_NS} ns at the board's clock).")
@click.option("--synthesis/--no-synthesis", default=True, show_default=True,
              help="Synthesise each point's accelerator (resources, fit, power; cached). "
                   "Without, every point counts as fitting.")
@click.option("--jobs", default=1, show_default=True, type=int,
              help="Points of an objective sweep evaluated at once, each in its own process.")
@click.option("--scheduler", default=None,
              help="Evaluate an objective sweep's points on the Dask distributed scheduler at "
                   "this address (e.g. tcp://10.0.0.1:8786) instead of here.")
def sweep(params, board, config_file, out, objectives, model_name, latency, synthesis, jobs,
          scheduler):
    """Evaluate every point of a parameter grid: without --objective, the units of the swept
    sections (TLMM engines and baseline side by side, the element-wise unit, the attention
    units) synthesised; with, the model's whole accelerator, modeled (and synthesised),
    and the Pareto front of the objectives. Points of an objective sweep are cached by
    content: a rerun costs nothing."""
    base, target = design(board, config_file)
    check_out_folder(out)
    grid = _parse_params(params)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    configs = []
    for point in points:
        config = base
        for name, value in point.items():
            config = config.replace(name, value)
        get_board(config.board)  # every point is valid before any is evaluated
        configs.append(config)
    if objectives:
        _objective_sweep(points, configs, out, objectives, model_name, latency, synthesis,
                         jobs, scheduler)
    else:
        _unit_sweep(points, configs, out, grid, target)


def _unit_sweep(points, configs, out, grid, target):
    sections = swept_sections(grid)
    lines = []
    with Progress(console=console) as progress:
        task = progress.add_task("sweeping", total=len(points))
        for point, config in zip(points, configs):
            progress.update(task, description=f"synthesising {point}")
            lines.append(sweep_line(point, config, sections))
            progress.advance(task)
    with staging(out.parent) as folder:
        _write_lines(folder / "sweep.jsonl", lines)
        publish(folder, out)
    for table in sweep_tables(lines, sections, target.name):
        console.print(table)
    console.print(f"wrote {out / 'sweep.jsonl'}")


def _write_lines(path: Path, lines) -> None:
    path.write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))


def _objective_sweep(points, configs, out, texts, model_name, latency, synthesis, jobs,
                     scheduler):
    preset(model_name)
    objectives = [parse_objective(text) for text in texts]
    if len({o.name for o in objectives}) != len(objectives):
        raise ValueError(f"Objectives must differ, not {list(texts)!r}")
    for objective in objectives:
        if objective.needs_synthesis and not synthesis:
            raise ValueError(f"Objective {objective.name} must be synthesised, not swept "
                             f"with --no-synthesis")
    check_int("Jobs", jobs, 1, 256)
    contexts = tuple(sorted({o.at for o in objectives if o.kind == "tokens_per_s"}))
    prompts = tuple(sorted({o.at for o in objectives if o.kind == "ttft"}))
    model_points = [ModelPoint(params=point, model=model_name, config=config.to_dict(),
                               contexts=contexts, prompts=prompts, latency=latency,
                               synthesis=synthesis)
                    for point, config in zip(points, configs)]
    with console.status("checking the points"):
        for point in model_points:
            check_point(point)
    cached = []
    with Progress(console=console) as progress:
        where = f"on {scheduler}" if scheduler else f"in {jobs} process(es)"
        task = progress.add_task(f"evaluating {len(points)} points {where}",
                                 total=len(points))

        def advance(point, from_cache):
            cached.append(from_cache)
            progress.advance(task)

        lines = run_points(model_points, jobs=jobs, scheduler=scheduler, advance=advance)
    for line in lines:
        line["objectives"] = {o.name: objective_value(o, line) for o in objectives}
    front = pareto_front(lines, objectives)
    result = {"model": model_name, "board": lines[0]["board"],
              "objectives": [{"name": o.name, "sense": o.sense, "unit": o.unit}
                             for o in objectives],
              "synthesis": synthesis, "latency": latency, "points": len(lines),
              "fitting": sum(line["fits"] is not False for line in lines),
              "front": [lines[i] for i in front]}
    with staging(out.parent) as folder:
        _write_lines(folder / "sweep.jsonl", lines)
        (folder / "pareto.json").write_text(json.dumps(result, indent=2) + "\n")
        plot_pareto(lines, objectives, front, folder / "pareto.png",
                    f"{model_name} on {result['board']}: {len(front)} of {len(lines)} points "
                    f"on the Pareto front (modeled)")
        publish(folder, out)
    console.print(_front_table(result, objectives))
    console.print(f"{sum(cached)} of {len(lines)} points from the cache; wrote "
                  f"{out / 'sweep.jsonl'}, {out / 'pareto.json'}, {out / 'pareto.png'}")


def _front_table(result, objectives) -> Table:
    table = Table(title=f"Pareto front: {result['model']} on {result['board']} (modeled"
                        f"{', synthesised' if result['synthesis'] else ''})")
    names = list(result["front"][0]["params"]) if result["front"] else []
    for column in (*names, *(f"{o.name} ({o.unit})" for o in objectives), "fits"):
        table.add_column(column, justify="right")
    for line in result["front"]:
        table.add_row(*(str(line["params"][n]) for n in names),
                      *(f"{line['objectives'][o.name]:,.4g}" for o in objectives),
                      {True: "yes", False: "no", None: "-"}[line["fits"]])
    return table
