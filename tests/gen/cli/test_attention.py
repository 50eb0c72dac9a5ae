"""``ternforge run attention`` and ``report attention``: outputs bit-exact to the golden model,
cycles and DDR bytes, the appended cache row; bad input."""

import numpy as np
import pytest

from cli_support import invoke, save_arrays
from ternforge.boards import get_board
from ternforge.gen.reports.attention import attention_report
from ternforge.sim.models import attention as am
from ternforge.sim.models import fp as fm


@pytest.mark.verilator
@pytest.mark.parametrize("phase, shapes", [("prefill", ((2, 5, 16), (1, 5, 16))),
                                           ("decode", ((4, 1, 16), (2, 9, 16)))])
def test_run_attention_is_bit_exact(capsys, tmp_path, phase, shapes):
    rng = np.random.default_rng(6)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in (shapes[0], *shapes[1:],
                                                                  shapes[1]))
    code, out, err = invoke(capsys, "run", "attention", "--phase", phase,
                            *save_arrays(tmp_path, q=q, k=k, v=v), "--out", str(tmp_path / "o.npy"))
    assert code == 0, err
    o = np.load(tmp_path / "o.npy")
    bits = [fm.to_bits(x.astype(np.float64), "float32") for x in (q, k, v)]
    expected = am.multi_head(*bits, phase=phase, rows=8 if phase == "prefill" else 2, cols=8)
    assert o.dtype == np.float32 and np.array_equal(o.view(np.uint32), expected)
    cycles, rest = out.split("cycles: ")[1].split(" (cycle model ")
    assert int(cycles) == int(rest.split(")")[0])
    assert out.startswith(f"unit: 2 lanes, tiles {8 if phase == 'prefill' else 2} x 8;")
    keys = k.shape[1] - (phase == "decode")
    rows_read = 5 * 2 if phase == "prefill" else keys * 2  # one tile per head; per KV head
    assert f"DDR bytes read: {rows_read * 2 * 16 * 4};" in out


@pytest.mark.verilator
def test_run_attention_in_bfloat16_packs_lanes_of_16_bits(capsys, tmp_path):
    """Decode in bfloat16 on two lanes at D = 32 (32-bit beats, 16 to a 512-bit word)."""
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal(shape).astype(np.float32)
               for shape in ((2, 1, 32), (1, 13, 32), (1, 13, 32)))
    code, out, err = invoke(capsys, "run", "attention", "--phase", "decode", "--dtype",
                            "bfloat16", "--lanes", "2", *save_arrays(tmp_path, q=q, k=k, v=v),
                            "--out", str(tmp_path / "o.npy"))
    assert code == 0, err
    bits = [fm.to_bits(x.astype(np.float64), "bfloat16") for x in (q, k, v)]
    expected = am.multi_head(*bits, phase="decode", rows=2, cols=8, fmt="bfloat16")
    o = np.load(tmp_path / "o.npy")
    assert np.array_equal(o, fm.from_bits(expected, "bfloat16").astype(np.float32))
    assert out.startswith("unit: 2 lanes, tiles 2 x 8;")


@pytest.mark.parametrize("arrays, phase, message", [
    (dict(q=np.ones((2, 3, 8), int)), "prefill", "Q must be a float array, not of dtype 'int64'"),
    (dict(q=np.ones((3, 8), np.float32)), "prefill",
     "Q must be a non-empty (heads, tokens, head_dim) array, not of shape (3, 8)"),
    (dict(q=np.ones((3, 2, 8), np.float32), k=np.ones((2, 2, 8), np.float32)), "prefill",
     "Query heads must be a multiple of the 2 KV heads, not 3"),
    (dict(q=np.ones((2, 2, 8), np.float32), k=np.ones((1, 3, 8), np.float32)), "prefill",
     "Prefill keys must number the 2 queries, not 3"),
    (dict(q=np.ones((2, 2, 8), np.float32)), "decode",
     "Decode queries must be of shape (H, 1, D), not (2, 2, 8)"),
    (dict(q=np.ones((2, 2, 8), np.float32), k=np.ones((1, 2, 4), np.float32)), "prefill",
     "Head dimension of K must be 8, not 4"),
])
def test_run_attention_rejects_bad_input(capsys, tmp_path, arrays, phase, message):
    arrays = {"q": arrays["q"], "k": arrays.get("k", np.ones((1, 2, 8), np.float32)),
              "v": arrays.get("k", np.ones((1, 2, 8), np.float32))}
    code, _, err = invoke(capsys, "run", "attention", "--phase", phase,
                          *save_arrays(tmp_path, **arrays), "--out", str(tmp_path / "o.npy"))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not (tmp_path / "o.npy").exists()


def test_run_attention_rejects_bad_lanes(capsys, tmp_path):
    arrays = save_arrays(tmp_path, **{name: np.ones((1, 2, 8), np.float32) for name in "qkv"})
    code, _, err = invoke(capsys, "run", "attention", "--phase", "prefill", *arrays,
                          "--lanes", "3", "--out", str(tmp_path / "o.npy"))
    assert (code, err) == (2, "ternforge: Lanes must be a power of two dividing the head "
                              "dimension (8), not 3\n")
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.yosys
# (one worker for both: they synthesise the same units, and the second finds them cached)
@pytest.mark.xdist_group("units-synthesis")
def test_attention_report_counts_the_loop_order():
    """(The units of ``report units``' test configuration: one synthesis serves both.)"""
    report = attention_report(get_board("kv260"), head_dim=16, heads=2, kv_heads=1,
                              fmt="bfloat16", rows=2, cols=4, lanes=2, prefill=(8,),
                              decode=(256,))
    prefill, decode = report["cases"]
    row_bytes = 2 * 16 * 2
    # per head: tiles of 2, 4, 6 and 8 keys
    assert prefill["ddr_bytes_read"] == 2 * (2 + 4 + 6 + 8) * row_bytes
    assert prefill["naive_ddr_bytes_read"] == 2 * 8 * 8 * row_bytes
    assert decode["ddr_bytes_read"] == 255 * row_bytes and decode["commands"] == 1
    assert report["units"]["decode"]["rows"] == 2 and report["units"]["decode"]["cols"] == 8
    assert report["units"]["prefill"]["resources"]["LUT"] > 1000
