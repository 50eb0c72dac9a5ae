"""What the command modules share: the console, the design a command works on, output
checks made before any work, reading ``.npy`` inputs and running a simulation."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
from rich.console import Console

from ...boards import get_board
from ...hdl.fp.format import float_format
from ..config import DesignConfig, load_config

__all__ = ["console", "model_design_options", "design", "check_out_folder", "check_out_file",
           "staging", "publish", "read_npy", "load_array", "load_float_array", "float_array",
           "simulate"]

#: piped output is not wrapped at 80 columns, so tables stay whole in logs
console = Console() if sys.stdout.isatty() else Console(width=200)


def model_design_options(command):
    """The ``--model``, ``--board`` and ``--config`` options of a command on a model's
    accelerator (its ``model_name``, ``board`` and ``config_file``)."""
    from ...hdl.accelerator.model import PRESETS

    for option in reversed((
            click.option("--model", "model_name", default="bitnet-0.7b", show_default=True,
                         help=f"The model ({', '.join(PRESETS)})."),
            click.option("--board", default=None,
                         help="Target board (default: the configuration's, kv260)."),
            click.option("--config", "config_file", type=click.Path(path_type=Path),
                         default=None, help="Design configuration, TOML or JSON."))):
        command = option(command)
    return command


def design(board: str, config_file: Path | None) -> tuple[DesignConfig, object]:
    """The configuration (``config_file``, or the default) with ``board`` if given, and its
    board."""
    config = load_config(config_file) if config_file else DesignConfig()
    if board is not None:
        config = config.replace("board", board)
    return config, get_board(config.board)


def check_out_folder(out: Path) -> None:
    """Refuse, before any work, an output folder that cannot be one or cannot be written
    (the nearest folder that exists must be writable)."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"Output folder must be a folder, not the file {str(path)!r}")
            if not os.access(path, os.W_OK | os.X_OK):
                raise ValueError(f"Output folder must be writable, not {str(path)!r}")
            return


def check_out_file(out: Path, inputs=()) -> None:
    """Refuse, before any work, an output file that cannot be written or that is one of
    ``inputs`` (the same file, through a link or not: writing it would destroy an input)."""
    if out.is_dir():
        raise ValueError(f"Output must be a file, not the folder {str(out)!r}")
    if out.exists():
        for path in inputs:
            if path is not None and Path(path).exists() and os.path.samefile(out, path):
                raise ValueError(f"Output must not be an input file, not {str(out)!r}")
        if not os.access(out, os.W_OK):
            raise ValueError(f"Output must be writable, not {str(out)!r}")
    check_out_folder(out.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def staging(parent: Path | None = None, prefix: str = ".ternforge-"):
    """A scratch folder in ``parent`` (the system's temporary folder if None or missing),
    named for this process (``<prefix><pid>-...``) and removed when the block ends.

    A process killed outright (``SIGKILL``) cannot remove its folder, so the folders of this
    ``prefix`` whose process is no longer running are removed first.
    """
    parent = parent if parent is not None and parent.is_dir() else Path(tempfile.gettempdir())
    for old in parent.glob(f"{prefix}*"):
        pid = old.name.removeprefix(prefix).split("-")[0]
        if old.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=parent) as name:
        yield Path(name)


def publish(staging: Path, out: Path) -> None:
    """Move a completed staging folder's files into ``out``, replacing only those files."""
    for item in sorted(staging.rglob("*")):
        target = out / item.relative_to(staging)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(item, target)


def read_npy(path: Path, what: str) -> np.ndarray:
    """The array in the .npy file ``path`` (``what`` names it in errors)."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises many kinds for unreadable files
        raise ValueError(f"{what} file must be a readable .npy array, not {str(path)!r} "
                         f"({type(error).__name__})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{what} file must hold one array, not {str(path)!r}")
    return array


def load_array(path: Path, what: str) -> np.ndarray:
    array = read_npy(path, what)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{what} must be an integer array, not of dtype {str(array.dtype)!r}")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{what} must be a non-empty 2-D array, not of shape {array.shape!r}")
    return array


def load_float_array(path: Path, what: str, fmt, shape=None) -> np.ndarray:
    """The bit patterns of the ``fmt`` array in ``path``: float16 or float32 arrays of that
    dtype, bfloat16 as uint16 bit patterns (or ml_dtypes' bfloat16); ``shape`` if given."""
    from ...sim.models.fp import bits_dtype, numpy_dtype

    fmt = float_format(fmt)
    array = read_npy(path, what)
    accepted = {numpy_dtype(fmt)} | ({np.dtype(np.uint16)} if fmt.name == "bfloat16" else set())
    if array.dtype not in accepted:
        rule = " (uint16 bit patterns)" if fmt.name == "bfloat16" else ""
        raise ValueError(f"{what} must be an array of {fmt.name}{rule}, "
                         f"not of dtype {str(array.dtype)!r}")
    if array.size == 0 or (shape is not None and array.shape != tuple(shape)):
        rule = f"of shape {tuple(shape)!r}" if shape is not None else "non-empty"
        raise ValueError(f"{what} must be {rule}, not of shape {array.shape!r}")
    return array.view(bits_dtype(fmt))


def float_array(bits, fmt) -> np.ndarray:
    """The array to write for bit patterns ``bits``: bfloat16 stays uint16 bit patterns."""
    from ...sim.models.fp import bits_dtype, from_bits

    fmt = float_format(fmt)
    bits = np.asarray(bits).astype(bits_dtype(fmt))
    return bits if fmt.name == "bfloat16" else from_bits(bits, fmt)


def simulate(build: Path, *, toplevel: str, test_module: str, write, shape: str, out: Path,
              output) -> dict:
    """Run the job that ``write(folder)`` puts in a scratch folder (returning its environment)
    on a Verilator build; write ``output(result)`` to ``out`` (an array as .npy, a dict of
    arrays as .npz); return all the result's arrays."""
    from ...sim import verilator

    with staging(prefix="ternforge-run-") as work:
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
