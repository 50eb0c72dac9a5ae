"""The ``ternforge test`` command: the cocotb testbenches of a configuration's units on
Verilator, at that configuration's parameters (see :mod:`ternforge.gen.testbenches`)."""

from __future__ import annotations

import secrets
import shlex
import shutil
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ...hdl.common.checks import check_int
from ..testbenches import UNITS, benches, junit_xml
from ._common import check_out_file, check_out_folder, console, design, publish, staging

__all__ = ["test"]

#: the testbenches whose VCDs run to gigabytes at the default configuration (measured: the
#: attention units 4.9 and 2.5 GB, the accelerator 4.4 GB; the others 10 to 60 MB)
LARGE_WAVES = ("attention-prefill", "attention-decode", "accelerator")


@click.command()
@click.argument("units", nargs=-1, type=click.Choice(UNITS), metavar="[UNIT]...")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON (default: the built-in one).")
@click.option("--board", default=None, help="Target board (default: the configuration's).")
@click.option("--waves", is_flag=True, help="Record a VCD per testbench into the output folder.")
@click.option("--seed", type=int, default=None,
              help="Seed of every case's data and stalls (default: a new one, printed).")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path), default=None,
              help="Also write the results as JUnit XML.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("ternforge-test"),
              show_default=True, help="Output folder: each testbench's log and waves.")
@click.option("--inject-fault", "fault", is_flag=True, hidden=True,
              help="Corrupt every expectation of the models (the checkers' self-test).")
def test(units, config_file, board, waves, seed, junit_file, out, fault):
    """Run the testbenches of each UNIT (tlmm, gemv, eltwise, attention-prefill,
    attention-decode, accelerator; default: all, the whole accelerator included) at the
    configuration's parameters on Verilator, with random stalls from a reproducible seed.
    Exits 1 if any case fails."""
    config, _ = design(board, config_file)
    seed = secrets.randbelow(1 << 31) + 1 if seed is None else seed
    check_int("Seed", seed, 0, (1 << 32) - 1)
    if junit_file is not None:
        check_out_file(junit_file, (config_file,))
    check_out_folder(out)
    chosen = benches(config, units)
    large = [bench.unit for bench in chosen if bench.unit in LARGE_WAVES]
    if waves and large:
        console.print(f"note: the waves of {', '.join(large)} hold every signal of long runs: "
                      f"VCDs of gigabytes each", highlight=False)
    runs = []
    with staging(out.parent if out.parent.is_dir() else None) as stage:
        for index, bench in enumerate(chosen, 1):
            with console.status(f"[{index}/{len(chosen)}] {bench.unit}: building and "
                                f"running on Verilator"):
                runs.append(bench.run(seed=seed, work=stage / ".work" / bench.unit,
                                      out=stage / "results", waves=waves, fault=fault))
            console.print(f"{bench.unit}: {'passed' if runs[-1].passed else 'FAILED'}")
        if junit_file is not None:
            (stage / "junit.xml").write_text(junit_xml(runs, seed=seed))
        published = stage / "results"
        if published.exists():
            publish(published, out)
        if junit_file is not None:
            junit_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(stage / "junit.xml", junit_file)  # (perhaps another file system)
    _summary(runs, seed, out, waves)
    failed = [run for run in runs if not run.passed]
    for run in failed:
        case = run.first_failure()
        console.print(f"[bold red]{run.unit}[/]: {escape(case.name)}: {escape(case.message)}"
                      if case else f"[bold red]{run.unit}[/]: no case ran", highlight=False)
    if failed:
        again = ["ternforge", "test", *sorted({run.unit for run in failed}), "--seed", str(seed)]
        if config_file is not None:
            again += ["--config", str(config_file)]
        if board is not None:
            again += ["--board", board]
        console.print(f"seed {seed}; reproduce with: {shlex.join(again)}", highlight=False)
        sys.exit(1)


def _summary(runs, seed: int, out: Path, waves: bool) -> None:
    table = Table(title=f"ternforge test (seed {seed})")
    for column in ("unit", "cases", "cycles", "result", "time"):
        table.add_column(column, justify="left" if column in ("unit", "result") else "right")
    for run in runs:
        passed = sum(case.passed for case in run.cases)
        table.add_row(run.unit, f"{passed}/{len(run.cases)}", f"{run.cycles:,}",
                      "[green]pass[/]" if run.passed else "[bold red]FAIL[/]",
                      f"{run.seconds:.1f} s")
    console.print(table)
    for run in runs:
        for case in run.cases:
            if case.note:
                console.print(f"{run.unit}: {case.name}: {case.note}", highlight=False,
                              markup=False)
    if waves:
        for run in runs:
            if run.waves is not None:
                console.print(f"waves: {out / run.waves.name}", highlight=False)
