"""Golden model of the element-wise unit's stages and of a BitNet layer's element-wise path.

This is the specification the hardware (:mod:`ternforge.hdl.eltwise.unit`) meets bit for bit: every
value is a bit pattern of one floating-point format ``fmt`` (float32 by default), every step
one rounded operation of :mod:`~ternforge.sim.models.fp` (``add``, ``mul``, ``fma``, the
conversions) or :mod:`~ternforge.sim.models.fp_functions` (``rsqrt``, ``reciprocal``,
``silu``), in the order given here. Vectors are ``(tokens, length)``; per-token scalars
``(tokens,)``.

Stages
------
dequant
    ``y = (float(acc) * act_scale) * weight_scale``: the int32 accumulators of a ternary matmul
    rounded to ``fmt``, times the token's activation scale, times the layer's weight scale.
residual
    ``y = x + r``.
rmsnorm
    Pass 1: ``lanes`` partial sums of squares, ``p[i % lanes] = fma(x_i, x_i, p[i % lanes])``
    from ``+0`` (``lanes`` is the fused multiply-add's latency, so one element enters per
    cycle); ``total = (((p_0 + p_1) + p_2) + ...)``; ``r = rsqrt(fma(total, 1/n, eps))``.
    Pass 2: ``y_i = (x_i * r) * gain_i``.
quant
    Pass 1: ``m = max(max_i |x_i|, 1e-5)`` (a comparison of magnitudes: exact; a NaN wins);
    ``scale = m * (1/127)``; ``s = reciprocal(scale)``. Pass 2: ``q_i = rint(x_i * s)``
    saturated to int8 (NaN to 0). Outputs ``q`` and ``scale``, the factor that dequantises.
silu, relu2 (gated)
    ``y = silu(gate) * up``; ``y = (relu(gate) * relu(gate)) * up`` with ``relu(g) = +0`` when
    ``g``'s sign bit is set, else ``g``.
rope
    Rotary embedding of pairs ``(x0, x1)`` by ``(cos, sin)``:
    ``y0 = fma(x0, cos, -(x1 * sin))``, ``y1 = fma(x0, sin, x1 * cos)``.

Constants (``1/n``, ``1/127``, ``1e-5``, ``eps``) are rounded to ``fmt`` once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hdl.fp.format import float_format
from ...hdl.eltwise.parameters import QUANT_FLOOR
from . import fp as fm

__all__ = ["dequantise", "residual", "rmsnorm", "quantise", "gated", "rope", "rope_tables",
           "rotate_heads", "relu", "BitNetLayer", "bitnet_layer"]

def _const(value, fmt):
    return fm.to_bits(np.float64(value), fmt)


def _function(name, bits, fmt):
    from .fp_functions import evaluate
    return evaluate(name, np.asarray(bits), fmt)


def dequantise(acc, act_scale, weight_scale, fmt="float32") -> np.ndarray:
    """``(float(acc) * act_scale[:, None]) * weight_scale``."""
    x = fm.from_int(acc, fmt)
    scaled = fm.multiply(x, np.asarray(act_scale)[:, None], fmt)
    return fm.multiply(scaled, np.asarray(weight_scale), fmt)


def residual(x, r, fmt="float32") -> np.ndarray:
    return fm.add(x, r, fmt)


def sum_of_squares(x, lanes: int, fmt="float32") -> np.ndarray:
    """Per token: ``lanes`` interleaved partial sums of ``fma(x, x, p)``, then added in order."""
    x = np.asarray(x)
    tokens, length = x.shape
    partial = np.zeros((tokens, lanes), dtype=x.dtype)
    for start in range(0, length, lanes):
        chunk = x[:, start:start + lanes]
        width = chunk.shape[1]
        partial[:, :width] = fm.fma(chunk, chunk, partial[:, :width], fmt)
    total = partial[:, 0]
    for lane in range(1, lanes):
        total = fm.add(total, partial[:, lane], fmt)
    return total


def rmsnorm(x, gain, *, eps=1e-6, lanes: int, fmt="float32") -> np.ndarray:
    """``x / sqrt(mean(x**2) + eps) * gain``, computed as the module documentation says."""
    x = np.asarray(x)
    total = sum_of_squares(x, lanes, fmt)
    mean = fm.fma(total, _const(1 / x.shape[1], fmt), _const(eps, fmt), fmt)
    r = _function("rsqrt", mean, fmt)
    return fm.multiply(fm.multiply(x, r[:, None], fmt), np.asarray(gain)[None, :], fmt)


def absmax(x, fmt="float32") -> np.ndarray:
    """Per token, the largest magnitude's bit pattern (by integer comparison: a NaN wins)."""
    magnitude = np.asarray(x).astype(np.uint64) & np.uint64(float_format(fmt).sign_bit - 1)
    return magnitude.max(axis=1).astype(np.asarray(x).dtype)


def quantise(x, fmt="float32") -> tuple[np.ndarray, np.ndarray]:
    """``(q, scale)``: int8 codes ``rint(x / scale)`` and the per-token ``scale = absmax /
    127`` (as the module documentation computes them)."""
    x = np.asarray(x)
    m = np.maximum(absmax(x, fmt), _const(QUANT_FLOOR, fmt))
    scale = fm.multiply(m, _const(1 / 127, fmt), fmt)
    s = _function("reciprocal", scale, fmt)
    q = fm.to_int(fm.multiply(x, s[:, None], fmt), fmt, 8).astype(np.int8)
    return q, scale


def relu(x, fmt="float32") -> np.ndarray:
    x = np.asarray(x)
    return np.where(x & float_format(fmt).sign_bit, 0, x).astype(x.dtype)


def gated(kind: str, gate, up, fmt="float32") -> np.ndarray:
    """The gated FFN activation: ``silu(gate) * up`` or ``relu(gate)**2 * up``."""
    if kind == "silu":
        return fm.multiply(_function("silu", gate, fmt), up, fmt)
    if kind == "relu2":
        r = relu(gate, fmt)
        return fm.multiply(fm.multiply(r, r, fmt), up, fmt)
    raise ValueError(f"Activation must be silu or relu2, not {kind!r}")


def rope(x0, x1, cos, sin, fmt="float32") -> tuple[np.ndarray, np.ndarray]:
    """Rotate the pairs ``(x0, x1)`` by the angles whose cosines and sines are given."""
    sign = np.asarray(x0).dtype.type(float_format(fmt).sign_bit)
    y0 = fm.fma(x0, cos, fm.multiply(x1, sin, fmt) ^ sign, fmt)
    y1 = fm.fma(x0, sin, fm.multiply(x1, cos, fmt), fmt)
    return y0, y1


def rope_tables(positions, head_dim: int, theta: float = 10000.0, fmt="float32"):
    """``(cos, sin)`` of shape ``(len(positions), head_dim // 2)``, rounded to ``fmt`` from
    float64: the angle of pair ``i`` at position ``t`` is ``t * theta**(-2i / head_dim)``."""
    inverse = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * inverse[None, :]
    return fm.to_bits(np.cos(angles), fmt), fm.to_bits(np.sin(angles), fmt)


def rotate_heads(x, cos, sin, heads, fmt):
    """RoPE on ``(tokens, heads * head_dim)`` in the rotate-half pairing (``i``, ``i + d/2``)
    of LLaMA and BitNet."""
    tokens = x.shape[0]
    x = x.reshape(tokens, heads, 2, -1)
    y0, y1 = rope(x[:, :, 0], x[:, :, 1], cos[:, None, :], sin[:, None, :], fmt)
    return np.stack([y0, y1], 2).reshape(tokens, -1)


@dataclass
class BitNetLayer:
    """The parameters of one BitNet b1.58 decoder layer.

    Members
    -------
    weights : dict
        Ternary matrices ``(out, in)`` (int8 in {-1, 0, 1}) named ``q``, ``k``, ``v``, ``o``,
        ``gate``, ``up``, ``down``.
    weight_scales : dict
        Each matrix's dequantisation factor (mean |W| of the full-precision weights), a bit
        pattern.
    gains : dict
        RMSNorm gains (bit patterns): ``input``, ``attention_sub``, ``post_attention``,
        ``ffn_sub``.
    heads, kv_heads : int
    activation : str
        ``"silu"`` or ``"relu2"``.
    eps : float
    """

    weights: dict
    weight_scales: dict
    gains: dict
    heads: int
    kv_heads: int
    activation: str = "relu2"
    eps: float = 1e-5
    theta: float = 500000.0


def _linears(x_bits, names, layer, gain, lanes, fmt):
    """RMSNorm and absmax int8 quantisation once, then for each of ``names`` the exact
    ternary matmul and its dequantisation."""
    normed = rmsnorm(x_bits, layer.gains[gain], eps=layer.eps, lanes=lanes, fmt=fmt)
    q, scale = quantise(normed, fmt)
    return [dequantise(q.astype(np.int64) @ layer.weights[n].astype(np.int64).T, scale,
                       layer.weight_scales[n], fmt) for n in names]


def bitnet_layer(hidden, layer: BitNetLayer, *, positions, attention, lanes: int,
                 fmt="float32") -> np.ndarray:
    """One decoder layer of BitNet b1.58 (2B4T's structure, sub-norms included) on
    ``hidden`` ``(tokens, d)`` bit patterns, everything but attention in the element-wise
    unit's arithmetic; ``attention(q, k, v)`` (bit patterns ``(tokens, heads * head_dim)``
    and ``(tokens, kv_heads * head_dim)``) returns ``(tokens, heads * head_dim)`` bit
    patterns. ``lanes`` is the RMSNorm's partial-sum count (its fma latency)."""
    q, k, v = _linears(hidden, ("q", "k", "v"), layer, "input", lanes, fmt)
    head_dim = q.shape[1] // layer.heads
    cos, sin = rope_tables(positions, head_dim, layer.theta, fmt)
    q = rotate_heads(q, cos, sin, layer.heads, fmt)
    k = rotate_heads(k, cos, sin, layer.kv_heads, fmt)
    (o,) = _linears(attention(q, k, v), ("o",), layer, "attention_sub", lanes, fmt)
    hidden = residual(hidden, o, fmt)
    gate, up = _linears(hidden, ("gate", "up"), layer, "post_attention", lanes, fmt)
    (down,) = _linears(gated(layer.activation, gate, up, fmt), ("down",), layer, "ffn_sub",
                       lanes, fmt)
    return residual(hidden, down, fmt)


def residual_path(acc, act_scale, weight_scale, residual_in, gain, *, eps, lanes: int,
                  fmt="float32"):
    """The element-wise unit's path after an output projection: ``(hidden, q, scale)`` with
    ``hidden = dequantise(acc) + residual_in`` and ``q, scale = quantise(rmsnorm(hidden))``."""
    hidden = residual(dequantise(acc, act_scale, weight_scale, fmt), residual_in, fmt)
    q, scale = quantise(rmsnorm(hidden, gain, eps=eps, lanes=lanes, fmt=fmt), fmt)
    return hidden, q, scale
