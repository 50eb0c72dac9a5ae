"""The ``ternforge`` command line.

Every command validates its input before it writes anything: bad input is one line on stderr
and exit status 2, and no output file or folder is left behind.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from amaranth.back import verilog
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ...boards import RESOURCE_KEYS, all_boards, get_board
from ..config import ENGINES, DesignConfig, EngineConfig, load_config
from ..elaborate import (ATTENTION_UNITS, ELTWISE_UNIT, GEMV_TOP, MODULE_NAMES, gemv_data_bits,
                        gemv_top, to_verilog)
from ..reports.design import check_fits, design_report, resource_table
from ..sweep import sweep_line, sweep_tables, swept_sections

#: piped output is not wrapped at 80 columns, so tables stay whole in logs
console = Console() if sys.stdout.isatty() else Console(width=200)


def _design(board: str, config_file: Path | None) -> tuple[DesignConfig, object]:
    config = load_config(config_file) if config_file else DesignConfig()
    if board is not None:
        config = config.replace("board", board)
    return config, get_board(config.board)


def _check_out_folder(out: Path) -> None:
    """Refuse, before any work, an output folder that cannot be one."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"Output folder must be a folder, not the file {str(path)!r}")
            return


def _check_out_file(out: Path) -> None:
    if out.is_dir():
        raise ValueError(f"Output must be a file, not the folder {str(out)!r}")
    _check_out_folder(out.parent)


def _publish(staging: Path, out: Path) -> None:
    """Move a completed staging folder's files into ``out``, replacing only those files."""
    for item in sorted(staging.rglob("*")):
        target = out / item.relative_to(staging)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(item, target)


@click.group()
@click.version_option(package_name="ternforge")
def cli():
    """Generate, simulate and measure FPGA accelerators for ternary LLMs."""


@cli.command()
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


@cli.command()
@click.option("--board", default=None, help="Target board (default: the configuration's, kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
def generate(board, config_file, out):
    """Write the engines' Verilog and a resource report (report.json) to OUT."""
    config, target = _design(board, config_file)
    _check_out_folder(out)
    with tempfile.TemporaryDirectory(prefix=".ternforge-", dir=out.parent if out.parent.exists()
                                     else None) as staging_name:
        staging = Path(staging_name)
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
        _publish(staging, out)
    console.print(resource_table(report))
    console.print(f"wrote {out / 'verilog'} and {out / 'report.json'}")


def _read_npy(path: Path, what: str) -> np.ndarray:
    """The array in the .npy file ``path`` (``what`` names it in errors)."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises many kinds for unreadable files
        raise ValueError(f"{what} file must be a readable .npy array, not {str(path)!r} "
                         f"({type(error).__name__})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{what} file must hold one array, not {str(path)!r}")
    return array


def _load_array(path: Path, what: str) -> np.ndarray:
    array = _read_npy(path, what)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{what} must be an integer array, not of dtype {str(array.dtype)!r}")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{what} must be a non-empty 2-D array, not of shape {array.shape!r}")
    return array


def _check_job(weights: np.ndarray, acts: np.ndarray, config: EngineConfig, kind: str) -> None:
    bad = weights[(weights < -1) | (weights > 1)]
    if bad.size:
        raise ValueError(f"Weights must be in {{-1, 0, 1}}, not {int(bad.flat[0])!r}")
    bad = acts[(acts < -128) | (acts > 127)]
    if bad.size:
        raise ValueError(f"Activations must be int8 (-128..127), not {int(bad.flat[0])!r}")
    if acts.shape[1] != weights.shape[1]:
        raise ValueError(f"Activations must have K = {weights.shape[1]} columns like the "
                         f"weights, not {acts.shape[1]!r}")
    config.check_job(kind, len(acts), weights.shape[1], len(weights))
    if config.component("tlmm").acc_width > 32:
        raise ValueError(f"Maximum K must keep results within int32, not {config.max_k!r}")


@cli.group()
def run():
    """Run a generated unit on Verilator with data from .npy files."""


def _simulate(build: Path, *, toplevel: str, test_module: str, write, shape: str, out: Path,
              output) -> dict:
    """Run the job that ``write(folder)`` puts in a scratch folder (returning its environment)
    on a Verilator build; write ``output(result)`` to ``out`` (an array as .npy, a dict of
    arrays as .npz); return all the result's arrays."""
    from ...sim import verilator

    with tempfile.TemporaryDirectory(prefix="ternforge-run-") as work_name:
        work = Path(work_name)
        env = write(work)
        with console.status(f"simulating {shape} on Verilator"):
            verilator.run(build, toplevel=toplevel, test_module=test_module, work_dir=work,
                          env=env)
        result = dict(np.load(work / "result.npz"))
        arrays = output(result)
        with open(work / "out", "wb") as file:  # (np.save would add a suffix)
            (np.savez(file, **arrays) if isinstance(arrays, dict) else np.save(file, arrays))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(work / "out", out)
    return result


def _job_options(command):
    """The --weights, --acts and --out options every ``run`` of a matmul takes."""
    for option in reversed([
        click.option("--weights", required=True, type=click.Path(path_type=Path),
                     help="Ternary weights W (N, K), integers in {-1, 0, 1}."),
        click.option("--acts", required=True, type=click.Path(path_type=Path),
                     help="Activations X (M, K), int8 values, M >= 1."),
        click.option("--out", required=True, type=click.Path(path_type=Path),
                     help="Where to write Y = X @ W.T (M, N) as int32.")]):
        command = option(command)
    return command


@run.command("tlmm")
@_job_options
@click.option("--group-size", default=3, show_default=True, help="Weights per table group (G).")
@click.option("--rows", default=16, show_default=True, help="Output rows per cycle (R).")
@click.option("--groups-per-cycle", default=8, show_default=True, help="Groups per cycle (P).")
@click.option("--max-tokens", default=8, show_default=True, help="Token tile (accumulators).")
@click.option("--max-k", default=8192, show_default=True, help="Longest K the accumulators hold.")
@click.option("--max-n", default=8192, show_default=True,
              help="Most rows N (tlmm-lutram accumulator depth).")
@click.option("--table-tokens", default=1, show_default=True,
              help="Token tile of tlmm-lutram (tables per bank).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="tlmm-lutram",
              show_default=True,
              help="tlmm-lutram (tables in LUT-RAM), tlmm (tables in registers) or adder "
                   "(the plain-adder baseline).")
def run_tlmm(weights, acts, out, group_size, rows, groups_per_cycle, max_tokens, max_k, max_n,
             table_tokens, engine):
    """Compute Y = X @ W.T on the generated engine, simulated by Verilator."""
    from ...sim import verilator
    from ...sim.cocotb.tlmm import write_job

    config = EngineConfig(group_size=group_size, groups_per_cycle=groups_per_cycle, rows=rows,
                          max_tokens=max_tokens, max_k=max_k, max_n=max_n,
                          table_tokens=table_tokens)
    _check_out_file(out)
    w, x = _load_array(weights, "Weights"), _load_array(acts, "Activations")
    _check_job(w, x, config, engine)
    started = time.perf_counter()
    with console.status("building with Verilator"):
        build = verilator.build(to_verilog(config, engine), toplevel=MODULE_NAMES[engine])
    built = time.perf_counter()
    result = _simulate(build, toplevel=MODULE_NAMES[engine],
                       test_module="ternforge.sim.cocotb.tlmm",
                       write=lambda work: write_job(work, config, engine, x, w),
                       shape=f"{len(x)}x{w.shape[1]}x{len(w)}", out=out,
                       output=lambda result: result["y"].astype(np.int32))
    finished = time.perf_counter()
    cycles = int(result["cycles"])
    console.print(f"cycles: {cycles} (cycle model {config.component(engine).cycles(len(x), w.shape[1], len(w))}); "
                  f"build {built - started:.1f} s, simulation {finished - built:.1f} s; wrote {out}")


def _layer_shape(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--layer must be N,K with positive integers, not {text!r}")
    return int(parts[0]), int(parts[1])


@cli.command()
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

    config, target = _design(board, config_file)
    n, k = _layer_shape(layer)
    overrides = {"latency": mem_latency}
    if mem_bytes_per_cycle is not None:
        overrides["bytes_per_cycle"] = mem_bytes_per_cycle
    result = plan_layer(n=n, k=k, tokens=tokens, engine=config.tlmm, board=target,
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


@run.command("gemv")
@_job_options
@click.option("--board", default=None, help="Target board (default kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON.")
@click.option("--mem-latency", default=20, show_default=True,
              help="Memory model latency in cycles.")
@click.option("--mem-bytes-per-cycle", type=float, default=64.0, show_default=True,
              help="Memory model bandwidth limit in bytes per cycle.")
@click.option("--data-bits", type=int, default=None,
              help="AXI4 read data width (default 512, or narrower than a small weight beat).")
def run_gemv(weights, acts, out, board, config_file, mem_latency, mem_bytes_per_cycle,
             data_bits):
    """Compute Y = X @ W.T through DDR model, weight buffer and TLMM engine on Verilator."""
    from ...sim import verilator
    from ...sim.cocotb.tlmm import write_job

    from ...sim.models.weight_plan import MemoryModel, plan_layer

    design, target = _design(board, config_file)
    config = design.tlmm
    _check_out_file(out)
    w, x = _load_array(weights, "Weights"), _load_array(acts, "Activations")
    _check_job(w, x, config, "tlmm-lutram")
    data_bits = gemv_data_bits(config) if data_bits is None else data_bits
    plan = plan_layer(n=len(w), k=w.shape[1], tokens=len(x), engine=config, board=target,
                      memory=MemoryModel(bytes_per_cycle=mem_bytes_per_cycle,
                                         latency=mem_latency, axi_data_bits=data_bits))
    top = gemv_top(config, data_bits=data_bits, buffer_depth=plan.capacity_beats)
    with console.status("building the GEMV top with Verilator"):
        build = verilator.build(verilog.convert(top, name=GEMV_TOP), toplevel=GEMV_TOP)
    memory = {"data_bits": data_bits, "latency": mem_latency,
              "bytes_per_cycle": mem_bytes_per_cycle, "resident": plan.resident}
    result = _simulate(build, toplevel=GEMV_TOP, test_module="ternforge.sim.cocotb.gemv",
                       write=lambda work: write_job(work, config, "tlmm-lutram", x, w,
                                                    memory=memory),
                       shape=f"{len(x)}x{w.shape[1]}x{len(w)}", out=out,
                       output=lambda result: result["y"].astype(np.int32))
    cycles, stalls, read = (int(result[key]) for key in ("cycles", "stalls", "bytes"))
    console.print(f"cycles: {cycles} (planned {plan.cycles}), stall cycles: {stalls} (planned "
                  f"{plan.stall_cycles}), DDR bytes: {read:,}, achieved "
                  f"{read / cycles:.2f} bytes/cycle of {mem_bytes_per_cycle:g}; wrote {out}")


@cli.group()
def report():
    """Synthesise and compare generated units."""


def _register_commands():
    from .attention import report_attention, run_attention
    from .eltwise import report_eltwise, run_eltwise
    from .fp import report_fp, run_fp
    from .mac import report_mac, run_mac

    for command in (run_mac, run_fp, run_eltwise, run_attention):
        run.add_command(command)
    for command in (report_mac, report_fp, report_eltwise, report_attention):
        report.add_command(command)


_register_commands()


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
    return grid


@cli.command()
@click.option("--param", "params", multiple=True, required=True,
              help="A swept parameter, e.g. tlmm.group_size=2,3,4 (repeat for a grid).")
@click.option("--board", default=None, help="Target board (default kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Base design configuration, TOML or JSON.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
def sweep(params, board, config_file, out):
    """Synthesise every point of a parameter grid: the units of the swept sections (TLMM
    engines and baseline side by side, the element-wise unit, the attention units)."""
    base, target = _design(board, config_file)
    _check_out_folder(out)
    grid = _parse_params(params)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    configs = []
    for point in points:
        config = base
        for name, value in point.items():
            config = config.replace(name, value)
        get_board(config.board)  # every point is valid before any is synthesised
        configs.append(config)
    sections = swept_sections(grid)
    lines = []
    with Progress(console=console) as progress:
        task = progress.add_task("sweeping", total=len(points))
        for point, config in zip(points, configs):
            progress.update(task, description=f"synthesising {point}")
            lines.append(sweep_line(point, config, sections))
            progress.advance(task)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n"
                                             for line in lines))
    for table in sweep_tables(lines, sections, target.name):
        console.print(table)


def main(argv=None):
    """Entry point: click errors and bad input become one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="ternforge", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.exceptions.Abort:
        click.echo("ternforge: aborted", err=True)
        sys.exit(1)
    except click.ClickException as error:
        click.echo(f"ternforge: {error.format_message()}", err=True)
        sys.exit(2)
    except ValueError as error:
        click.echo(f"ternforge: {error}", err=True)
        sys.exit(2)
    except (RuntimeError, OSError) as error:  # a tool failed: its log holds the details
        lines = str(error).splitlines()
        click.echo(f"ternforge: {lines[0] if lines else repr(error)}", err=True)
        sys.exit(1)
