"""The element-wise stages as jobs on arrays: what each stage (``op``) takes, how its arrays
become the beats of its streams and its output beats become arrays again, and what the golden
model says the outputs are. Shared by the cocotb driver (:mod:`~ternforge.sim.cocotb.eltwise`),
the testbench and ``ternforge run eltwise``.

Float arrays are bit patterns of the job's format; token vectors are ``(tokens, n)``.

======== =========================================== ====================================
op       inputs                                      outputs
======== =========================================== ====================================
dequant  acc (tokens, n) int32, act_scale (tokens,), y = (acc * act_scale) * weight_scale
         weight_scale ()
residual x, residual (tokens, n)                     y = x + residual
silu     gate, up (tokens, n)                        y = silu(gate) * up
relu2    gate, up (tokens, n)                        y = relu(gate)**2 * up
rope     x (tokens, d), cos, sin (tokens, d/2)       y: pairs (i, i + d/2) rotated
rmsnorm  x (tokens, n), gain (n,), eps ()            y = x * rsqrt(mean(x**2) + eps) * gain
quant    x (tokens, n)                               codes (tokens, n) int8, scale (tokens,)
unit     acc, act_scale, weight_scale, residual,     hidden, codes, scale
         gain, eps                                   (:class:`~ternforge.hdl.eltwise.unit
                                                     .ElementwiseUnit`)
======== =========================================== ====================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hdl.eltwise import parameters as ep
from ...hdl.eltwise.stages import Dequantise, GatedActivation, Residual, Rope
from ...hdl.eltwise.two_pass import Quantise, RmsNorm
from ...hdl.eltwise.unit import ElementwiseUnit
from ...hdl.fp.format import float_format
from ..models import eltwise as em
from ..models import fp as fm

__all__ = ["OPS", "INPUTS", "OUTPUTS", "EltwiseJob"]

INPUTS = {
    "dequant": ("acc", "act_scale", "weight_scale"),
    "residual": ("x", "residual"),
    "silu": ("gate", "up"),
    "relu2": ("gate", "up"),
    "rope": ("x", "cos", "sin"),
    "rmsnorm": ("x", "gain", "eps"),
    "quant": ("x",),
    "unit": ("acc", "act_scale", "weight_scale", "residual", "gain", "eps"),
}
OUTPUTS = {"quant": ("codes", "scale"), "unit": ("hidden", "codes", "scale")}
OPS = tuple(INPUTS)
#: the stream that carries each op's main input (whose first beat starts the cycle count)
_MAIN_INPUT = {"dequant": "acc", "silu": "gate", "relu2": "gate", "unit": "acc"}


def _element_words(values, width: int) -> list[int]:
    """Token vectors as ``value | last << width`` words (Python integers: a RoPE beat is
    wider than 64 bits), ``last`` on each row's end."""
    values = np.asarray(values, dtype=object) & ((1 << width) - 1)
    last = np.zeros(values.shape, dtype=object)
    last[:, -1] = 1 << width
    return (values | last).reshape(-1).tolist()


def _split(words, width: int, shape) -> tuple[np.ndarray, np.ndarray]:
    """``(values, lasts)`` of element words (object arrays of Python integers)."""
    words = np.asarray(words, dtype=object).reshape(shape)
    return words & ((1 << width) - 1), (words >> width) & 1


@dataclass(frozen=True)
class EltwiseJob:
    """One stage (``op``) in one format; ``max_length`` sizes two-pass buffers.

    Members
    -------
    op : str
    format : str
    max_length : int
    parameters : StageParameters or EltwiseParameters
        The stage's (or the unit's) parameters: operators, latency, cycle model, buffers.
    """

    op: str
    format: str = "float32"
    max_length: int = 64

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"Operation must be one of {', '.join(OPS)}, not {self.op!r}")
        self.parameters  # validates every parameter

    @property
    def module_name(self) -> str:
        return f"eltwise_{self.op}_{self.format}_{self.max_length}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return OUTPUTS.get(self.op, ("y",))

    @property
    def parameters(self):
        fmt, op, length = self.format, self.op, self.max_length
        if op in ("silu", "relu2"):
            return ep.GatedActivationParameters(fmt, kind=op)
        if op in ("rmsnorm", "quant", "unit"):
            kind = {"rmsnorm": ep.RmsNormParameters, "quant": ep.QuantiseParameters,
                    "unit": ep.EltwiseParameters}[op]
            return kind(fmt, max_length=length)
        return {"dequant": ep.DequantiseParameters, "residual": ep.ResidualParameters,
                "rope": ep.RopeParameters}[op](fmt)

    def component(self):
        """A new component of :attr:`parameters`."""
        return {"dequant": Dequantise, "residual": Residual, "silu": GatedActivation,
                "relu2": GatedActivation, "rope": Rope, "rmsnorm": RmsNorm,
                "quant": Quantise, "unit": ElementwiseUnit}[self.op](self.parameters)

    def shape(self, arrays: dict) -> tuple[int, int]:
        """``(tokens, beats per token)`` of a job."""
        first = arrays["acc" if "acc" in arrays else INPUTS[self.op][0]]
        tokens, n = first.shape
        return tokens, n // 2 if self.op == "rope" else n

    def streams(self, arrays: dict) -> tuple[dict, dict, dict]:
        """``(inputs, signals, outputs)``: words per input stream, values of configuration
        signals, and beats expected per output stream."""
        fmt = float_format(self.format)
        w, a = fmt.width, arrays
        tokens, beats = self.shape(arrays)
        inputs, signals = {}, {}
        if "acc" in a:
            inputs["acc"] = _element_words(a["acc"], 32)
            inputs["act_scale"] = np.asarray(a["act_scale"]).tolist()
            signals["weight_scale"] = int(a["weight_scale"])
        for name in ("x", "gate"):
            if name in a and self.op != "rope":
                inputs["input" if name == "x" else "gate"] = _element_words(a[name], w)
        for name in ("residual", "up"):
            if name in a:
                inputs[name] = np.asarray(a[name]).reshape(-1).tolist()
        if "gain" in a:
            n = a["gain"].shape[0]
            inputs["gain"] = np.tile(a["gain"], tokens).tolist()
            signals["inv_length"] = int(fm.to_bits(np.float64(1 / n), fmt))
            signals["eps"] = int(a["eps"])
        if self.op == "rope":
            half = a["x"].shape[1] // 2
            fields = [a["x"][:, :half], a["x"][:, half:], a["cos"], a["sin"]]
            words = sum(np.asarray(f, dtype=object) << (i * w) for i, f in enumerate(fields))
            inputs["input"] = _element_words(words, 4 * w)
        counts = {"y": tokens * beats, "hidden": tokens * beats, "codes": tokens * beats,
                  "scale": tokens}
        ports = {"y": "output", "hidden": "hidden", "codes": "codes", "scale": "scale"}
        return inputs, signals, {ports[o]: counts[o] for o in self.outputs}

    def main_ports(self) -> tuple[str, str]:
        """The input stream whose first beat starts, and the output stream whose last beat
        ends, the cycle count."""
        return (_MAIN_INPUT.get(self.op, "input"),
                "codes" if self.op in ("quant", "unit") else "output")

    @property
    def lanes(self) -> int:
        """The RMSNorm's partial sums of squares (its fused multiply-add's latency)."""
        return ep.RmsNormParameters(self.format).partial_sums

    def arrays(self, words: dict, shape: tuple[int, int]) -> dict:
        """Output arrays (and ``lasts``, the ``last`` flags by output) from output words."""
        fmt = float_format(self.format)
        w = fmt.width
        tokens, beats = shape
        out, lasts = {}, {}
        for name in self.outputs:
            port = "output" if name == "y" else name
            if name == "scale":
                out[name] = np.asarray(words[port], dtype=np.uint64).astype(fm.bits_dtype(fmt))
                continue
            if name == "y" and self.op == "rope":
                values, lasts[name] = _split(words[port], 2 * w, (tokens, beats))
                out[name] = np.concatenate([values & ((1 << w) - 1), values >> w], 1)
            else:
                width = 8 if name == "codes" else w
                values, lasts[name] = _split(words[port], width, (tokens, beats))
                out[name] = values
            out[name] = out[name].astype(np.int64).astype(np.int8) if name == "codes" else \
                out[name].astype(fm.bits_dtype(fmt))
        return {**out, "lasts": {k: v.astype(np.uint8) for k, v in lasts.items()}}

    def golden(self, arrays: dict) -> dict:
        """The golden model's outputs."""
        a, fmt, op, lanes = arrays, self.format, self.op, self.lanes
        if op == "dequant":
            return {"y": em.dequantise(a["acc"], a["act_scale"], a["weight_scale"], fmt)}
        if op == "residual":
            return {"y": em.residual(a["x"], a["residual"], fmt)}
        if op in ("silu", "relu2"):
            return {"y": em.gated(op, a["gate"], a["up"], fmt)}
        if op == "rope":
            half = a["x"].shape[1] // 2
            y0, y1 = em.rope(a["x"][:, :half], a["x"][:, half:], a["cos"], a["sin"], fmt)
            return {"y": np.concatenate([y0, y1], 1)}
        eps = fm.from_bits(a.get("eps", 0), fmt).astype(np.float64)
        if op == "rmsnorm":
            return {"y": em.rmsnorm(a["x"], a["gain"], eps=float(eps), lanes=lanes, fmt=fmt)}
        if op == "quant":
            codes, scale = em.quantise(a["x"], fmt)
            return {"codes": codes, "scale": scale}
        hidden, codes, scale = em.residual_path(a["acc"], a["act_scale"], a["weight_scale"],
                                                a["residual"], a["gain"], eps=float(eps),
                                                lanes=lanes, fmt=fmt)
        return {"hidden": hidden, "codes": codes, "scale": scale}
