"""``ternforge run fp``: results bit-exact to numpy (and to exact rounding for fma), and bad
input."""

import numpy as np
import pytest

from cli_support import invoke, save_arrays
from ternforge.sim.models import fp as fm
from ternforge.sim.models.fp_units import golden


def run_fp(capsys, tmp_path, op, dtype, *arrays):
    paths = save_arrays(tmp_path, **dict(zip("abc", arrays)))
    return invoke(capsys, "run", "fp", "--op", op, "--dtype", dtype, *paths,
                  "--out", str(tmp_path / "out.npy"))


@pytest.mark.verilator
@pytest.mark.parametrize("op, dtype", [("add", "float16"), ("mul", "bfloat16"),
                                       ("fma", "float32")])
def test_run_fp_is_bit_exact(capsys, tmp_path, op, dtype):
    rng = np.random.default_rng(11)
    values = [rng.standard_normal((3, 7)) * 10.0 ** rng.integers(-3, 4, (3, 7))
              for _ in range(3 if op == "fma" else 2)]
    bits = [fm.to_bits(v, dtype) for v in values]
    arrays = bits if dtype == "bfloat16" else [fm.from_bits(b, dtype) for b in bits]
    code, out, err = run_fp(capsys, tmp_path, op, dtype, *arrays)
    assert code == 0, err
    result = np.load(tmp_path / "out.npy")
    assert result.shape == (3, 7)
    expected = golden(op, np.stack([b.reshape(-1) for b in bits], 1), dtype).reshape(3, 7)
    assert np.array_equal(result.view(expected.dtype), expected)
    latency = {"add": 4, "mul": 5, "fma": 7}[op]
    assert f"cycles: {21 + latency} (cycle model {21 + latency}, latency {latency})" in out
    if op == "add":  # numpy's own float16 arithmetic, directly
        assert np.array_equal(result, arrays[0] + arrays[1])


@pytest.mark.parametrize("op, dtype, arrays, message", [
    ("add", "float32", [np.ones(3, np.float16)] * 2,
     "A must be an array of float32, not of dtype 'float16'"),
    ("mul", "bfloat16", [np.ones(3, np.float32)] * 2,
     "A must be an array of bfloat16 (uint16 bit patterns), not of dtype 'float32'"),
    ("add", "float16", [np.ones(3, np.float16), np.ones(4, np.float16)],
     "B must be of shape (3,), not of shape (4,)"),
    ("fma", "float16", [np.ones(3, np.float16)] * 2,
     "--c must be given for fma and only for fma, not for 'fma'"),
    ("add", "float16", [np.ones(3, np.float16)] * 3,
     "--c must be given for fma and only for fma, not for 'add'"),
    ("add", "float16", [np.ones(0, np.float16)] * 2, "A must be non-empty, not of shape (0,)"),
])
def test_run_fp_rejects_bad_input(capsys, tmp_path, op, dtype, arrays, message):
    code, out, err = run_fp(capsys, tmp_path, op, dtype, *arrays)
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not (tmp_path / "out.npy").exists()


def test_run_fp_missing_input(capsys, tmp_path):
    code, _, err = invoke(capsys, "run", "fp", "--op", "add", "--dtype", "float16", "--a",
                          str(tmp_path / "none.npy"), "--b", str(tmp_path / "none.npy"),
                          "--out", str(tmp_path / "out.npy"))
    assert code == 2 and err.startswith("ternforge: A file must be a readable .npy array")
    assert not (tmp_path / "out.npy").exists()

