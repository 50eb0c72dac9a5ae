"""The ``cache`` commands: what ternforge's cache holds, and clearing it."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ...sim import cache as store
from ._common import check_out_file, console

__all__ = ["cache"]


def _size(count: int) -> str:
    return f"{count / 2**20:,.1f} MiB"


@click.group()
def cache():
    """What the cache keeps (Verilator builds, Yosys reports, failed runs' logs), and clearing
    it. Every entry is rebuilt when next needed."""


@cache.command("info")
@click.option("--json", "json_file", type=click.Path(path_type=Path), default=None,
              help="Also write the figures as JSON (keys: root, bytes, kinds).")
def info(json_file):
    """Where the cache is, how large, how many entries of each kind."""
    if json_file is not None:
        check_out_file(json_file)
    facts = store.cache_info()
    table = Table(title=f"ternforge cache at {facts['root']} ($TERNFORGE_CACHE)")
    for column in ("folder", "holds", "entries", "size"):
        table.add_column(column, justify="right" if column in ("entries", "size") else "left")
    for kind, entry in facts["kinds"].items():
        table.add_row(f"{kind}/", entry["what"], f"{entry['entries']:,}", _size(entry["bytes"]))
    table.add_row("(all)", "", "", _size(facts["bytes"]))
    console.print(table)
    if json_file is not None:
        store.write_atomically(json_file, json.dumps(facts, indent=1) + "\n")


@cache.command("clear")
def clear():
    """Delete every entry that no running ternforge is building."""
    done = store.clear()
    busy = f"; {done['busy']} in use by a running build, left" if done["busy"] else ""
    console.print(f"removed {done['removed']:,} entries ({_size(done['bytes'])}) from "
                  f"{store.cache_root()}{busy}")
