"""The attention golden model: bit for bit against a scalar transcription of its documented
order, close to float64 on realistic and adversarial inputs, independent of the query tile
size, its traffic and buffer model, and its input checks."""

import numpy as np
import pytest

from ternforge.hdl.fp.format import float_format
from ternforge.sim.models import attention as am
from ternforge.sim.models import fp as fm
from ternforge.sim.models.fp_functions import evaluate

RNG = np.random.default_rng(0)

# Largest error over the largest |reference| of a head; measured over 8 seeds: float32
# 9.4e-7 (realistic) and 5.4e-6 (logits up to +-160: the scores' rounding, ulp(128) = 2**-16,
# moves the exponentials); float16 7.6e-3 and 4.6e-2.
BOUND = {("float32", None): 3e-6, ("float32", "large"): 3e-5, ("float32", "equal"): 1e-6,
         ("float16", None): 2e-2, ("float16", "large"): 0.15, ("float16", "equal"): 5e-3}


def bits(shape, fmt="float32", scale=1.0):
    return fm.to_bits(RNG.standard_normal(shape) * scale, fmt)


def scalar_attention(q, k, v, positions, rows, cols, fmt):
    """The module documentation's order, one element and one rounded operation at a time."""
    f = float_format(fmt)

    def one(op, *operands):
        return int(op(*[np.array([x], fm.bits_dtype(f)) for x in operands], f)[0])

    def fma(a, b, c):
        return one(fm.fma, a, b, c)

    def value(a):
        return float(fm.from_bits(np.array([a]), f)[0])

    def exp(a):  # the online softmax's promise: no argument above zero
        assert value(a) <= 0
        return one(lambda x, f: evaluate("exp", x, f), a)

    (m, d), n = q.shape, k.shape[0]
    c, unit = int(fm.to_bits(1 / np.sqrt(d), f)), int(fm.to_bits(1.0, f))
    out = np.zeros_like(q)
    for i0 in range(0, m, rows):
        tile = range(i0, min(i0 + rows, m))
        qs = {r: [fma(int(q[r, i]), c, 0) for i in range(d)] for r in tile}
        mx = {r: f.sign_bit | f.infinity for r in tile}
        acc = {r: [0] * (d + 1) for r in tile}
        for j0 in range(0, max(positions[r] for r in tile) + 1, cols):
            keys = range(j0, min(j0 + cols, n))
            for r in tile:
                s = {}
                for j in keys:
                    s[j] = 0
                    for i in range(d):
                        s[j] = fma(qs[r][i], int(k[j, i]), s[j])
                visible = [j for j in keys if j <= positions[r]]
                if not visible:
                    continue
                best = max(visible, key=lambda j: (value(s[j]), -j))
                new = s[best] if value(s[best]) > value(mx[r]) else mx[r]
                alpha = exp(one(fm.add, mx[r], new ^ f.sign_bit))
                acc[r] = [fma(a, alpha, 0) for a in acc[r]]
                for j in keys:
                    p = exp(one(fm.add, s[j], new ^ f.sign_bit)) if j in visible else 0
                    acc[r] = [fma(p, int(x), a) for x, a in zip(list(v[j]) + [unit], acc[r])]
                mx[r] = new
        for r in tile:
            rl = one(lambda x, f: evaluate("reciprocal", x, f), acc[r][d])
            out[r] = [fma(a, rl, 0) for a in acc[r][:d]]
    return out


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16"])
def test_model_follows_its_documented_order(fmt):
    """Positions out of order and a tile whose first row sees no key of the later key tiles
    (a row whose visible keys in a tile are none keeps its state)."""
    q, k, v = bits((7, 3), fmt, 3), bits((9, 3), fmt, 3), bits((9, 3), fmt)
    positions = np.array([0, 6, 2, 8, 1, 1, 5])
    want = scalar_attention(q, k, v, positions, 3, 2, fmt)
    got = am.attention(q, k, v, positions, rows=3, cols=2, fmt=fmt)
    assert fm.same(got, want, fmt).all()


def test_masked_row_keeps_its_state():
    """Row 0 sees key 0 only; its tile goes on to key 7: its output is that of its own."""
    q, k, v = bits((4, 8)), bits((8, 8)), bits((8, 8))
    positions = np.array([0, 7, 3, 5])
    tiled = am.attention(q, k, v, positions, rows=4, cols=2)
    alone = am.attention(q[:1], k, v, positions[:1], rows=1, cols=2)
    assert (tiled[0] == alone[0]).all()
    # one visible key: o = (p v) * (1 / p) with p = exp(0) = 1
    assert (tiled[0] == v[0]).all()


@pytest.mark.parametrize("fmt", ["float32", "float16"])
@pytest.mark.parametrize("adversarial", [None, "large", "equal"])
@pytest.mark.parametrize("phase, shape", [
    ("prefill", (2, 1, 23, 23)), ("prefill", (2, 2, 1, 1)), ("decode", (4, 2, 1, 37)),
    ("decode", (4, 1, 3, 20))])
def test_close_to_float64(fmt, adversarial, phase, shape):
    """23 tokens: neither a multiple of rows (4) nor of cols (8)."""
    h, hkv, m, n = shape
    report = am.error_report(phase, heads=h, kv_heads=hkv, tokens=m, context=n, head_dim=16,
                             rows=4, cols=8, fmt=fmt, adversarial=adversarial, seed=1)
    assert report["finite"]
    assert report["max_rel_error"] < BOUND[fmt, adversarial], report
    if n == 1:  # a single key: o = (p v) * (1 / p) = v exactly
        assert report["max_abs_error"] == 0
    elif adversarial == "large":
        assert report["inputs"]["logit_max_abs"] > 80  # exp would overflow float32
        assert report["inputs"]["logit_std"] > 20
    else:
        assert 1 < report["inputs"]["logit_std"] < 5 or adversarial == "equal"


def test_bfloat16_runs():
    report = am.error_report("prefill", heads=2, kv_heads=1, tokens=12, context=12,
                             head_dim=8, rows=4, cols=4, fmt="bfloat16", adversarial="large")
    assert report["finite"] and report["max_rel_error"] < 0.5


@pytest.mark.parametrize("rows, cols", [(4, 4), (8, 2), (1, 16), (5, 3)])
def test_tile_sizes_change_only_rounding(rows, cols):
    q, k, v = bits((2, 19, 16), scale=1.5), bits((1, 19, 16), scale=1.5), bits((1, 19, 16))
    o = fm.from_bits(am.multi_head(q, k, v, phase="prefill", rows=rows, cols=cols), "float32")
    ref = am.reference(q, k, v, phase="prefill", fmt="float32")
    assert np.abs(o - ref).max() < 3e-6 * np.abs(ref).max()


def test_query_tile_size_does_not_change_the_bits():
    q, k, v = bits((11, 8)), bits((11, 8)), bits((11, 8))
    outputs = [am.attention(q, k, v, np.arange(11), rows=r, cols=4) for r in (1, 3, 11, 16)]
    assert all((o == outputs[0]).all() for o in outputs)


def test_heads_are_independent_attentions():
    q, k, v = bits((6, 2, 8)), bits((2, 13, 8)), bits((2, 13, 8))
    o = am.multi_head(q, k, v, phase="decode", rows=8, cols=4)
    for h in range(6):
        one = am.attention(q[h], k[h // 3], v[h // 3], np.full(2, 12), rows=2, cols=4)
        assert (o[h] == one).all()
    q = bits((4, 9, 8))
    o = am.multi_head(q, k[:, :9], v[:, :9], phase="prefill", rows=4, cols=4)
    assert (o[3] == am.attention(q[3], k[1, :9], v[1, :9], np.arange(9), rows=4,
                                 cols=4)).all()


def test_reference_is_softmax_attention():
    q, k, v = (RNG.standard_normal((1, 3, 4)) for _ in range(3))
    o = am.reference(q, k, v, phase="prefill")
    assert np.allclose(o[0, 0], v[0, 0])
    w = np.exp(q[0, 2] @ k[0].T / 2)
    assert np.allclose(o[0, 2], w @ v[0] / w.sum())


def test_traffic_model():
    # M = 8, 4 x 4 tiles: query tile 0 reads key tile 0 (4 rows), tile 1 key tiles 0, 1 (8)
    assert am.kv_rows_read(8, rows=4, cols=4, order="query_tiles") == 12
    assert am.kv_rows_read(8, rows=4, cols=4, order="naive") == 64
    # M = 10, rows 4, cols 3: last positions 3, 7, 9 -> keys 6, 9 (partial tile), 10
    assert am.kv_rows_read(10, rows=4, cols=3, order="query_tiles") == 25
    assert am.kv_rows_read(1, rows=4, cols=4, order="query_tiles") == 1
    for m in (5, 64, 100):
        assert am.kv_rows_read(m, rows=8, cols=8, order="query_tiles") < m * m


@pytest.mark.parametrize("call, message", [
    (lambda q, k: am.attention(q, k, k, np.arange(4), rows=0, cols=2),
     "Rows must be a positive integer, not 0"),
    (lambda q, k: am.attention(q, k, k, np.arange(4), rows=2, cols=1.5),
     "Cols must be a positive integer, not 1.5"),
    (lambda q, k: am.attention(q, k[:, :3], k[:, :3], np.arange(4), rows=2, cols=2),
     "Head dimension of k must be 4 .that of q., not 3"),
    (lambda q, k: am.attention(q, k, k, np.array([0, 1, 2, 4]), rows=2, cols=2),
     r"Positions must be 4 integers in \[0, 4\), not"),
    (lambda q, k: am.multi_head(np.stack([q] * 3), np.stack([k] * 2), np.stack([k] * 2),
                                phase="decode", rows=2, cols=2),
     "Heads must be a multiple of the KV heads .2., not 3"),
    (lambda q, k: am.multi_head(q[None], k[None, :3], k[None, :3], phase="prefill", rows=2,
                                cols=2), "Keys must be 4 .the queries. in prefill, not 3"),
    (lambda q, k: am.reference(q[None], k[None], k[None], phase="train"),
     "Phase must be prefill or decode, not 'train'"),
    (lambda q, k: am.kv_rows_read(8, rows=4, cols=4, order="rows"),
     "Order must be query_tiles or naive, not 'rows'"),
])
def test_invalid_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call(bits((4, 4)), bits((4, 4)))
