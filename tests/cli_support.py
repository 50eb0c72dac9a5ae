"""Helpers shared by the command-line tests."""

import numpy as np

from ternforge.gen.cli import main


def invoke(capsys, *argv):
    """Run the command line with ``argv``; return (exit status, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save_arrays(tmp_path, **arrays):
    """Save each array as ``tmp_path / name.npy``; return the options that name them
    (``--name`` with ``_`` as ``-``)."""
    argv = []
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
        argv += [f"--{name.replace('_', '-')}", str(tmp_path / f"{name}.npy")]
    return argv
