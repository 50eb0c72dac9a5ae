"""The element-wise golden model against float64 (it computes what the maths says, to the
format's precision), a whole BitNet layer through it, and a fast Amaranth-simulator check of
the unit's values and cycle model."""

import numpy as np
import pytest

from stream_sim import run_streams
from ternforge.hdl.eltwise.parameters import EltwiseParameters
from ternforge.hdl.eltwise.unit import ElementwiseUnit
from ternforge.sim.models import eltwise as em
from ternforge.sim.models import fp as fm

RNG = np.random.default_rng(0)


def f64(bits, fmt="float32"):
    return fm.from_bits(bits, fmt).astype(np.float64)


def test_rmsnorm_is_close_to_float64():
    x, gain = fm.to_bits(RNG.standard_normal((4, 300)) * 5, "float32"), \
        fm.to_bits(RNG.uniform(0.5, 2, 300), "float32")
    y = f64(em.rmsnorm(x, gain, eps=1e-5, lanes=7))
    xs = f64(x)
    want = xs / np.sqrt((xs ** 2).mean(1, keepdims=True) + 1e-5) * f64(gain)
    assert np.abs(y - want).max() <= 4e-7 * np.abs(want).max()


def test_quantise_follows_bitnet():
    """codes = round(x * 127 / absmax) clamped; the reciprocal's rounding moves a code by at
    most one, and only at a rounding tie's neighbourhood."""
    x = fm.to_bits(RNG.standard_normal((5, 200)), "float32")
    codes, scale = em.quantise(x)
    xs = f64(x)
    absmax = np.abs(xs).max(1, keepdims=True)
    want = np.clip(np.round(xs * 127 / absmax), -128, 127)
    assert np.abs(codes - want).max() <= 1 and (codes == want).mean() > 0.99
    assert np.allclose(f64(scale), absmax[:, 0] / 127, rtol=1e-6)
    assert (np.abs(codes).max(1) == 127).all()


def test_quantise_floors_an_all_zero_token():
    codes, scale = em.quantise(np.zeros((1, 8), np.uint32))
    assert not codes.any() and np.isclose(f64(scale)[0], 1e-5 / 127, rtol=1e-6)


@pytest.mark.parametrize("kind", ["silu", "relu2"])
def test_gated_activations_are_close_to_float64(kind):
    gate, up = (fm.to_bits(RNG.standard_normal(500) * 4, "float32") for _ in range(2))
    g, u = f64(gate), f64(up)
    want = (g / (1 + np.exp(-g)) if kind == "silu" else np.maximum(g, 0) ** 2) * u
    assert np.allclose(f64(em.gated(kind, gate, up)), want, rtol=3e-7, atol=1e-30)


def test_rope_rotates_pairs_like_float64():
    x0, x1 = (fm.to_bits(RNG.standard_normal((3, 8)), "float32") for _ in range(2))
    cos, sin = em.rope_tables([1, 100, 4000], 16)
    y0, y1 = em.rope(x0, x1, cos, sin)
    angle = np.array([1, 100, 4000])[:, None] * 10000.0 ** (-np.arange(0, 16, 2) / 16)
    want0 = f64(x0) * np.cos(angle) - f64(x1) * np.sin(angle)
    assert np.abs(f64(y0) - want0).max() < 1e-6
    assert np.allclose(f64(y1), f64(x0) * np.sin(angle) + f64(x1) * np.cos(angle), atol=1e-6)


def reference_attention(heads, kv_heads):
    """Causal softmax attention in float64, rounded to float32 (grouped queries)."""
    def attention(q, k, v):
        tokens = q.shape[0]
        q, k, v = (f64(a).reshape(tokens, h, -1) for a, h in ((q, heads), (k, kv_heads),
                                                                (v, kv_heads)))
        k, v = (np.repeat(a, heads // kv_heads, axis=1) for a in (k, v))
        scores = np.einsum("thd,shd->hts", q, k) / np.sqrt(q.shape[-1])
        scores += np.triu(np.full((tokens, tokens), -np.inf), 1)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        return fm.to_bits(np.einsum("hts,shd->thd", weights, v).reshape(tokens, -1),
                          "float32")
    return attention


def float64_layer(hidden, layer, positions):
    """The same layer with every element-wise step in float64 (quantisation included)."""
    def linear(x, names, gain):
        normed = x / np.sqrt((x ** 2).mean(1, keepdims=True) + layer.eps) \
            * f64(layer.gains[gain])
        scale = np.maximum(np.abs(normed).max(1, keepdims=True), 1e-5) / 127
        codes = np.clip(np.round(normed / scale), -128, 127)
        return [codes @ layer.weights[n].T * scale * f64(layer.weight_scales[n])
                for n in names]

    def rope(x, heads):
        x = x.reshape(len(x), heads, 2, -1)
        half = x.shape[-1]
        angle = np.asarray(positions)[:, None, None] * layer.theta ** (
            -np.arange(0, 2 * half, 2) / (2 * half))
        y0 = x[:, :, 0] * np.cos(angle) - x[:, :, 1] * np.sin(angle)
        y1 = x[:, :, 0] * np.sin(angle) + x[:, :, 1] * np.cos(angle)
        return np.stack([y0, y1], 2).reshape(len(x), -1)

    h = f64(hidden)
    q, k, v = linear(h, ("q", "k", "v"), "input")
    attention = reference_attention(layer.heads, layer.kv_heads)
    bits = [fm.to_bits(a, "float32") for a in (rope(q, layer.heads), rope(k, layer.kv_heads), v)]
    (o,) = linear(f64(attention(*bits)), ("o",), "attention_sub")
    h = h + o
    gate, up = linear(h, ("gate", "up"), "post_attention")
    (down,) = linear(np.maximum(gate, 0) ** 2 * up, ("down",), "ffn_sub")
    return h + down


def test_bitnet_layer_stays_near_a_float64_layer():
    """A small 2B4T-shaped layer (4 heads over 2 KV heads, squared ReLU) through the
    element-wise arithmetic stays within 0.1 % of the same layer in float64, relative to
    the layer's update of the hidden state (a code that rounds the other way at a tie is the
    largest difference)."""
    d, ffn, heads, kv = 64, 96, 4, 2
    shapes = {"q": (d, d), "k": (d // 2, d), "v": (d // 2, d), "o": (d, d),
              "gate": (ffn, d), "up": (ffn, d), "down": (d, ffn)}
    layer = em.BitNetLayer(
        weights={n: RNG.integers(-1, 2, s).astype(np.int8) for n, s in shapes.items()},
        weight_scales={n: fm.to_bits(np.float64(0.02), "float32") for n in shapes},
        gains={n: fm.to_bits(RNG.uniform(0.8, 1.2, size), "float32") for n, size in (
            ("input", d), ("attention_sub", d), ("post_attention", d), ("ffn_sub", ffn))},
        heads=heads, kv_heads=kv)
    hidden = fm.to_bits(RNG.standard_normal((5, d)), "float32")
    out = em.bitnet_layer(hidden, layer, positions=np.arange(5),
                          attention=reference_attention(heads, kv), lanes=7)
    assert out.shape == (5, d) and out.dtype == np.uint32
    want = float64_layer(hidden, layer, np.arange(5))
    update = np.abs(want - f64(hidden)).mean()
    assert update > 0.05
    assert np.abs(f64(out) - want).mean() < 1e-3 * update


@pytest.mark.parametrize("fmt", ["float32", "float16"])
def test_unit_in_amaranth_simulator(fmt):
    tokens, n = 2, 10
    acc = RNG.integers(-3000, 3000, (tokens, n))
    act, ws = fm.to_bits(RNG.uniform(1e-3, 1e-2, tokens), fmt), fm.to_bits(np.float64(0.5), fmt)
    res, gain = fm.to_bits(RNG.standard_normal((tokens, n)), fmt), \
        fm.to_bits(RNG.uniform(0.5, 2, n), fmt)
    eps = fm.to_bits(np.float64(1e-5), fmt)
    parameters = EltwiseParameters(fmt, max_length=16)
    unit = ElementwiseUnit(parameters)
    out, cycles = run_streams(unit, {
        "acc": [{"value": int(v) & 0xFFFFFFFF, "last": int(j == n - 1)}
                for row in acc for j, v in enumerate(row)],
        "act_scale": act.tolist(), "residual": res.reshape(-1).tolist(),
        "gain": np.tile(gain, tokens).tolist()},
        {"hidden": tokens * n, "codes": tokens * n, "scale": tokens},
        signals={"weight_scale": int(ws), "inv_length": int(fm.to_bits(np.float64(1 / n), fmt)),
                 "eps": int(eps)})
    lanes = parameters.stages["rmsnorm"].partial_sums
    hidden, codes, scale = em.residual_path(acc, act, ws, res, gain, eps=1e-5, lanes=lanes,
                                            fmt=fmt)
    assert [o.value for o in out["hidden"]] == hidden.reshape(-1).tolist()
    assert [o.value for o in out["codes"]] == codes.reshape(-1).tolist()
    assert out["scale"] == scale.tolist()
    assert cycles["codes"][-1] + 1 == parameters.cycles(tokens, n)
