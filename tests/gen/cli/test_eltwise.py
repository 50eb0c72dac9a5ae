"""``ternforge run eltwise``: outputs equal to the golden model bit for bit, and bad input."""

import numpy as np
import pytest

from cli_support import invoke, save_arrays
from ternforge.sim.models import eltwise as em
from ternforge.sim.models import fp as fm


def floats(rng, shape, dtype="float32"):
    bits = fm.to_bits(rng.standard_normal(shape) * 2, dtype)
    return bits if dtype == "bfloat16" else fm.from_bits(bits, dtype)


def bits(array, dtype="float32"):
    return array if dtype == "bfloat16" else array.view(fm.bits_dtype(dtype))


@pytest.mark.verilator
@pytest.mark.parametrize("op, dtype", [("dequant", "float32"), ("rope", "float32"),
                                       ("silu", "bfloat16"), ("rmsnorm", "float16")])
def test_run_eltwise_single_output(capsys, tmp_path, op, dtype):
    rng = np.random.default_rng(2)
    if op == "dequant":
        arrays = dict(acc=rng.integers(-9000, 9000, (3, 10)),
                      act_scale=np.float32([0.01, 0.02, 0.03]), weight_scale=np.float32(0.5))
        expected = em.dequantise(arrays["acc"], bits(arrays["act_scale"]),
                                 bits(arrays["weight_scale"]), dtype)
    elif op == "rope":
        cos, sin = em.rope_tables([0, 5, 9], 12, fmt=dtype)
        arrays = dict(x=floats(rng, (3, 12), dtype), cos=fm.from_bits(cos, dtype),
                      sin=fm.from_bits(sin, dtype))
        x = bits(arrays["x"], dtype)
        y0, y1 = em.rope(x[:, :6], x[:, 6:], cos, sin, dtype)
        expected = np.concatenate([y0, y1], 1)
    elif op == "silu":
        arrays = dict(gate=floats(rng, (2, 9), dtype), up=floats(rng, (2, 9), dtype))
        expected = em.gated("silu", arrays["gate"], arrays["up"], dtype)
    else:
        arrays = dict(x=floats(rng, (2, 21), dtype), gain=floats(rng, (21,), dtype))
        expected = em.rmsnorm(bits(arrays["x"], dtype), bits(arrays["gain"], dtype),
                              eps=1e-5, lanes=7, fmt=dtype)
    code, out, err = invoke(capsys, "run", "eltwise", "--op", op, "--dtype", dtype,
                            *save_arrays(tmp_path, **arrays), "--out", str(tmp_path / "y.npy"))
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(bits(y, dtype), expected)
    assert "cycles: " in out and "(cycle model " in out
    cycles, model = out.split("cycles: ")[1].split(" (cycle model ")
    assert int(cycles) == int(model.split(")")[0])


@pytest.mark.verilator
def test_run_eltwise_unit_writes_hidden_codes_and_scale(capsys, tmp_path):
    rng = np.random.default_rng(4)
    arrays = dict(acc=rng.integers(-(1 << 18), 1 << 18, (2, 24)),
                  act_scale=np.float32([0.004, 0.007]), weight_scale=np.float32([0.8]),
                  residual=floats(rng, (2, 24)), gain=floats(rng, (24,)))
    code, _, err = invoke(capsys, "run", "eltwise", "--op", "unit", "--eps", "1e-6",
                          *save_arrays(tmp_path, **arrays), "--out", str(tmp_path / "y.npz"))
    assert code == 0, err
    result = np.load(tmp_path / "y.npz")
    hidden, codes, scale = em.residual_path(
        arrays["acc"], bits(arrays["act_scale"]), bits(arrays["weight_scale"][0]),
        bits(arrays["residual"]), bits(arrays["gain"]), eps=1e-6, lanes=7)
    assert np.array_equal(bits(result["hidden"]), hidden)
    assert np.array_equal(result["codes"], codes) and result["codes"].dtype == np.int8
    assert np.array_equal(bits(result["scale"]), scale)


X = np.ones((2, 4), np.float32)


@pytest.mark.parametrize("op, arrays, message", [
    ("rmsnorm", dict(x=X), "--gain must be given to rmsnorm"),
    ("quant", dict(x=X, gain=np.ones(4, np.float32)),
     "--gain must not be given to quant (it takes --x)"),
    ("residual", dict(x=X.astype(np.float16), residual=X),
     "X must be an array of float32, not of dtype 'float16'"),
    ("rmsnorm", dict(x=X, gain=np.ones(5, np.float32)),
     "Gain must be of shape (4,), not of shape (5,)"),
    ("rope", dict(x=np.ones((2, 5), np.float32), cos=X, sin=X),
     "X must be of shape (tokens, d) with d even, not (2, 5)"),
    ("dequant", dict(acc=np.full((2, 4), 1 << 31), act_scale=np.ones(2, np.float32),
                     weight_scale=np.float32(1)), "Accumulators must fit int32, not 2147483648"),
    ("dequant", dict(acc=np.ones((2, 4), int), act_scale=np.ones(2, np.float32),
                     weight_scale=np.ones(2, np.float32)),
     "Weight scale must be one value, not of shape (2,)"),
    ("quant", dict(x=np.ones((2, 70000), np.float32)),
     "Maximum length must be an integer from 2 to 65536, not 131072"),
])
def test_run_eltwise_rejects_bad_input(capsys, tmp_path, op, arrays, message):
    code, _, err = invoke(capsys, "run", "eltwise", "--op", op, *save_arrays(tmp_path, **arrays),
                          "--out", str(tmp_path / "y.npy"))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not (tmp_path / "y.npy").exists()
