"""The runtime: lays out DDR and writes the programs the accelerator's controller runs.

A program is a list of unit instructions (:mod:`ternforge.hdl.accelerator.controller`), each
``instruction_words`` bus words: the unit's index, a ``wait`` bit and the unit's payload
(:data:`~ternforge.hdl.accelerator.parameters.VECTOR_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.gemv.GEMV_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.rope.ROPE_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.attention.ATTENTION_INSTRUCTION`, or a copy's
``{source, destination, words}``). :func:`layer_program` writes one decoder layer's prefill
in the order of :func:`ternforge.sim.models.eltwise.bitnet_layer`, so that the hardware
computes the golden model bit for bit; every instruction waits for the one before it (the
units' overlap is a later step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..hdl.accelerator.attention import ATTENTION_INSTRUCTION
from ..hdl.accelerator.gemv import GEMV_INSTRUCTION
from ..hdl.accelerator.parameters import VECTOR_INSTRUCTION, VectorOp
from ..hdl.accelerator.rope import ROPE_INSTRUCTION
from .models import fp as fm
from .models.eltwise import BitNetLayer, rope_tables
from .models.tlmm_stream import StreamGeometry, job_beats
from .models.weight_plan import descriptor_table, pass_descriptors, weight_image

__all__ = ["UNITS", "Image", "Program", "layer_program"]

#: the machine's units, by index
UNITS = {"copy": 0, "vector": 1, "gemv": 2, "rope": 3, "attention": 4}
_COPY = {"source": 32, "destination": 32, "words": 32}


@dataclass
class Image:
    """A DDR image: regions allocated upwards from ``start``, each aligned to ``align``."""

    size: int
    start: int = 0x1000
    align: int = 64
    data: bytearray = field(init=False)
    top: int = field(init=False)

    def __post_init__(self):
        self.data = bytearray(self.size)
        self.top = self.start

    def alloc(self, nbytes: int) -> int:
        address = -(-self.top // self.align) * self.align
        if address + nbytes > self.size:
            raise ValueError(f"Memory must hold {address + nbytes:,} bytes, not {self.size:,}")
        self.top = address + nbytes
        return address

    def put(self, array_or_bytes, address: int | None = None) -> int:
        raw = array_or_bytes if isinstance(array_or_bytes, (bytes, bytearray)) else \
            np.ascontiguousarray(array_or_bytes).tobytes()
        address = self.alloc(len(raw)) if address is None else address
        self.data[address:address + len(raw)] = raw
        return address

    def get(self, address: int, nbytes: int) -> bytes:
        return bytes(self.data[address:address + nbytes])


@dataclass
class Program:
    """Instructions of ``words`` bus words of ``word_bytes``."""

    words: int = 2
    word_bytes: int = 16
    instructions: list = field(default_factory=list)

    def add(self, unit: str, layout, fields: dict, *, wait: bool = True) -> None:
        if isinstance(layout, dict):
            value, shift = 0, 0
            for name, bits in layout.items():
                value |= int(fields[name]) << shift
                shift += bits
        else:
            value = layout.const({name: int(v) for name, v in fields.items()}).as_value().value
        word = UNITS[unit] | int(wait) << 4 | value << 5
        self.instructions.append(word.to_bytes(self.words * self.word_bytes, "little"))

    def bytes(self) -> bytes:
        return b"".join(self.instructions)

    def __len__(self):
        return len(self.instructions)


def _bits(value) -> int:
    return int(fm.to_bits(np.float64(value), "float32"))


def layer_program(image: Image, program: Program, layer: BitNetLayer, hidden: int, *,
                  tokens: int, engine, attention, ffn: int) -> int:
    """Lay out one decoder layer (its weights, tables, scratch) in ``image`` and append its
    prefill of ``tokens`` tokens (positions ``0 ..``) to ``program``; ``hidden`` is the
    address of the ``(tokens, d)`` float32 input. Returns the address of the output.

    ``engine`` is the GEMV unit's :class:`~ternforge.hdl.matmul.parameters.TlmmParameters`,
    ``attention`` the attention unit's
    :class:`~ternforge.hdl.attention.parameters.AttentionUnitParameters`.
    """
    heads, kv_heads = layer.heads, layer.kv_heads
    d = layer.weights["q"].shape[1]
    head_dim = d // heads
    kv = kv_heads * head_dim
    f32 = lambda n: image.alloc(4 * n)  # noqa: E731
    geometry = StreamGeometry.of(engine)
    word = program.word_bytes

    def vector(op, tokens_, length, a=0, b=0, y=0, z=0, scalar=0, inv_length=0):
        program.add("vector", VECTOR_INSTRUCTION, {
            "op": op, "tokens": tokens_, "length": length, "a": a, "b": b, "y": y, "z": z,
            "scalar": scalar, "inv_length": inv_length})

    def norm_quantise(x, gain, n):
        """RMSNorm and int8 quantisation of ``(tokens, n)`` at ``x``: codes and scales."""
        normed, codes, scales = f32(tokens * n), image.alloc(tokens * n), f32(tokens)
        vector(VectorOp.RMSNORM, tokens, n, a=x, b=gain, y=normed,
               scalar=_bits(layer.eps), inv_length=_bits(1 / n))
        vector(VectorOp.QUANTISE, tokens, n, a=normed, y=codes, z=scales)
        return codes, scales

    def linear(name, codes, scales, k):
        """The projection ``name`` of every token's codes, dequantised: float32 out."""
        w = layer.weights[name]
        n = len(w)
        beats = job_beats(np.zeros((1, k), np.int8), w, geometry).weights
        weights = image.put(weight_image(beats, engine.weight_beat_bits))
        descriptors = pass_descriptors(len(beats), beat_bits=engine.weight_beat_bits,
                                       load_beats=_load_beats(engine, word), word_bytes=word)
        table = image.put(descriptor_table(descriptors, base=weights, word_bytes=word))
        acc, out = f32(tokens * n), f32(tokens * n)
        for t in range(tokens):
            program.add("gemv", GEMV_INSTRUCTION, {
                "descriptors": table, "descriptor_count": len(descriptors),
                "weight_beats": len(beats), "row_blocks": -(-n // engine.rows),
                "acts": codes + t * k, "k": k, "results": acc + 4 * t * n, "n": n})
        vector(VectorOp.DEQUANTISE, tokens, n, a=acc, b=scales, y=out,
               scalar=int(layer.weight_scales[name]))
        return out

    gains = {name: image.put(np.asarray(g).astype("<u4")) for name, g in layer.gains.items()}
    # attention: norm, q k v, RoPE, the prompt's keys and values into the cache, attention
    codes, scales = norm_quantise(hidden, gains["input"], d)
    q, k, v = (linear(name, codes, scales, d) for name in ("q", "k", "v"))
    cos, sin = rope_tables(np.arange(tokens), head_dim, layer.theta)
    cos, sin = image.put(cos.astype("<u4")), image.put(sin.astype("<u4"))
    for x, count in ((q, heads), (k, kv_heads)):
        program.add("rope", ROPE_INSTRUCTION, {
            "tokens": tokens, "heads": count, "half": head_dim // 2, "x": x,
            "stride": 4 * count * head_dim, "cos": cos, "sin": sin, "y": x})
    cache = image.alloc(kv_heads * attention.engine.max_keys * attention.row_bytes)
    row_words = 4 * head_dim // word
    for t in range(tokens):
        for g in range(kv_heads):
            row = cache + attention.region(g) + t * attention.row_bytes
            source = 4 * (t * kv + g * head_dim)
            program.add("copy", _COPY, {"source": k + source, "destination": row,
                                        "words": row_words})
            program.add("copy", _COPY, {"source": v + source, "destination": row + 4 * head_dim,
                                        "words": row_words})
    o = f32(tokens * d)
    group, tile = heads // kv_heads, attention.engine.rows
    for head in range(heads):
        for start in range(0, tokens, tile):
            rows = min(tile, tokens - start)
            at = 4 * (start * d + head * head_dim)
            program.add("attention", ATTENTION_INSTRUCTION, {
                "rows": rows, "keys": start + rows, "position": start, "row_step": 1,
                "append": 0, "base": cache + attention.region(head // group), "q": q + at,
                "q_stride": 4 * d, "k": 0, "v": 0, "out": o + at, "out_stride": 4 * d})
    codes, scales = norm_quantise(o, gains["attention_sub"], d)
    attended = f32(tokens * d)
    vector(VectorOp.RESIDUAL, tokens, d, a=hidden,
           b=linear("o", codes, scales, d), y=attended)
    # the FFN: norm, gate and up, the gated activation, its norm, down, the residual
    codes, scales = norm_quantise(attended, gains["post_attention"], d)
    gate, up = linear("gate", codes, scales, d), linear("up", codes, scales, d)
    gated = f32(tokens * ffn)
    vector(VectorOp.GATED, tokens, ffn, a=gate, b=up, y=gated)
    codes, scales = norm_quantise(gated, gains["ffn_sub"], ffn)
    out = f32(tokens * d)
    vector(VectorOp.RESIDUAL, tokens, d, a=attended, b=linear("down", codes, scales, ffn),
           y=out)
    return out


def _load_beats(engine, word_bytes) -> int:
    """Loads of eight times the fewest beats that fill whole words (pass_descriptors's
    rule)."""
    step = 8 * word_bytes // math.gcd(8 * word_bytes, engine.weight_beat_bits)
    return step * 8

