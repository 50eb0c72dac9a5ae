"""Outputs are checked before any work: an output that is one of the inputs (directly or
through a link) or that cannot be written is one line, exit status 2, and every input is left
as it was."""

import os
from pathlib import Path

import numpy as np
import pytest

from cli_support import invoke
from ternforge.gen.cli import _common


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(3)
    paths = {"weights": tmp_path / "w.npy", "acts": tmp_path / "x.npy"}
    np.save(paths["weights"], rng.integers(-1, 2, (6, 20)).astype(np.int8))
    np.save(paths["acts"], rng.integers(-128, 128, (3, 20)).astype(np.int8))
    return paths


def run_tlmm(capsys, arrays, out):
    return invoke(capsys, "run", "tlmm", "--weights", str(arrays["weights"]), "--acts",
                  str(arrays["acts"]), "--out", str(out))


@pytest.mark.parametrize("name", ["weights", "acts"])
def test_an_input_is_never_overwritten(capsys, tmp_path, arrays, name):
    before = arrays[name].read_bytes()
    link = tmp_path / "link.npy"
    link.symlink_to(arrays[name])
    for out in (arrays[name], link):
        code, _, err = run_tlmm(capsys, arrays, out)
        assert (code, err) == (2, f"ternforge: Output must not be an input file, not "
                                  f"{str(out)!r}\n")
        assert arrays[name].read_bytes() == before


def test_plan_json_must_not_be_the_configuration(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('board = "kv260"\n')
    code, _, err = invoke(capsys, "plan", "--layer", "64,48", "--config", str(config),
                          "--json", str(config))
    assert (code, err) == (2, f"ternforge: Output must not be an input file, not "
                              f"{str(config)!r}\n")
    assert config.read_text() == 'board = "kv260"\n'


def test_an_unwritable_output_is_refused_before_any_work(capsys, tmp_path, arrays,
                                                         monkeypatch):
    # (an administrator may write anywhere, so the folder's permission is what is asked)
    locked = tmp_path / "locked"
    locked.mkdir()
    writable = os.access
    monkeypatch.setattr(_common.os, "access", lambda path, mode: Path(path) != locked
                        and writable(path, mode))
    code, _, err = run_tlmm(capsys, arrays, locked / "y.npy")
    assert (code, err) == (2, f"ternforge: Output folder must be writable, not "
                              f"{str(locked)!r}\n")
    code, _, err = invoke(capsys, "generate", "--out", str(locked / "build"))
    assert (code, err) == (2, f"ternforge: Output folder must be writable, not "
                              f"{str(locked)!r}\n")
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--param", "attention.rows=0"], "Rows must be an integer from 1 to 64, not 0"),
    (["sweep", "--param", "attention.max_keys=abc"],
     "Maximum keys must be an integer from 1 to 1048576, not 'abc'"),
    (["sweep", "--param", "attention.cols=x"], "Columns must be an integer from 1 to 128, not 'x'"),
    (["report", "attention", "--heads", "0"], "Heads must be an integer from 1 to 64, not 0"),
    (["report", "attention", "--kv-heads", "0"],
     "KV heads must be an integer from 1 to 64, not 0"),
    (["report", "attention", "--heads", "3", "--kv-heads", "2"],
     "Heads must be a multiple of the 2 KV heads, not 3"),
    (["report", "attention", "--head-dim", "1000000000"],
     "Head dimension must be an integer from 8 to 256, not 1000000000"),
])
def test_bad_attention_shapes_are_refused_before_any_work(capsys, tmp_path, argv, message):
    """Found as tracebacks (division by zero, str - int) or an attempt to allocate TiB."""
    out = tmp_path / "out"
    code, _, err = invoke(capsys, *argv, "--out", str(out))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not out.exists()


def test_a_defect_is_one_line_not_a_traceback(capsys, monkeypatch):
    from ternforge.gen.cli import design

    def broken():
        raise KeyError("lost")
    monkeypatch.setattr(design, "all_boards", broken)
    code, out, err = invoke(capsys, "boards")
    assert (code, err) == (1, "ternforge: internal error (KeyError: 'lost'); please report "
                              "it\n")


@pytest.mark.parametrize("option, value, message", [
    ("--table-tokens", "1000000", "Table tokens must be an integer from 1 to 64, not 1000000"),
    ("--groups-per-cycle", "1000000",
     "Groups per cycle must be an integer from 1 to 64, not 1000000"),
    ("--max-n", "1000000000", "Maximum N must be an integer from 1 to 131072, not 1000000000"),
])
def test_absurd_engine_sizes_are_refused_at_once(capsys, tmp_path, arrays, option, value,
                                                 message):
    """Found as a memory error and as hangs of more than 30 s."""
    out = tmp_path / "y.npy"
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", str(arrays["weights"]), "--acts",
                          str(arrays["acts"]), "--out", str(out), option, value)
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not out.exists()


@pytest.mark.parametrize("text", ["5", "null", "[1, 2]"])
def test_a_configuration_that_is_not_a_table_is_refused(capsys, tmp_path, text):
    config = tmp_path / "c.json"
    config.write_text(text)
    code, _, err = invoke(capsys, "plan", "--layer", "64,48", "--config", str(config))
    assert code == 2 and err.startswith("ternforge: Configuration must be a table of board "
                                        "and sections, not ")


def test_plan_refuses_a_k_the_engine_cannot_hold(capsys):
    """Found as a plan for K = 8,193 (beyond max_k), which ``run gemv`` would refuse."""
    code, _, err = invoke(capsys, "plan", "--layer", "64,8193")
    assert (code, err) == (2, "ternforge: K must be at most the accumulators' max_k = 8192 "
                              "(raise --max-k), not 8193\n")
