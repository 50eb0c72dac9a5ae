"""The runtime: lays out DDR and writes the programs the accelerator's controller runs.

A program is a list of unit instructions (:mod:`ternforge.hdl.accelerator.controller`), each
``instruction_words`` bus words: the unit's index, a ``wait`` bit and the unit's payload
(:data:`~ternforge.hdl.accelerator.parameters.VECTOR_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.gemv.GEMV_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.rope.ROPE_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.attention.ATTENTION_INSTRUCTION`,
:data:`~ternforge.hdl.accelerator.top.COPY_INSTRUCTION`). :class:`LayerLayout` lays out one
decoder layer and writes its steps (a prefill, or one decode token) in the order of
:func:`ternforge.sim.models.eltwise.bitnet_layer`, so that the hardware computes the golden
model bit for bit; every instruction waits for the one before it (the units' overlap is a
later step).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..hdl.accelerator.attention import ATTENTION_INSTRUCTION
from ..hdl.accelerator.gemv import GEMV_INSTRUCTION
from ..hdl.accelerator.parameters import VECTOR_INSTRUCTION, VectorOp
from ..hdl.accelerator.rope import ROPE_INSTRUCTION
from ..hdl.accelerator.top import COPY_INSTRUCTION, UNIT_NAMES
from .models import fp as fm
from .models.bitnet import ModelWeights, layer_parameters
from .models.eltwise import BitNetLayer, rope_tables
from .models.tlmm_stream import StreamGeometry, job_beats
from .models.weight_plan import descriptor_table, pass_descriptors, weight_image

__all__ = ["UNITS", "LAYOUTS", "Image", "Program", "decode_instruction", "LayerLayout",
           "ModelLayout", "generation"]

#: the machine's units, by index
UNITS = {name: index for index, name in enumerate(UNIT_NAMES)}
#: each unit's instruction payload
LAYOUTS = {"copy": COPY_INSTRUCTION, "vector": VECTOR_INSTRUCTION, "gemv": GEMV_INSTRUCTION,
           "rope": ROPE_INSTRUCTION, "attention": ATTENTION_INSTRUCTION}


@dataclass
class Image:
    """A DDR image: regions allocated upwards from ``start``, each aligned to ``align`` and
    named (:attr:`regions`, the memory map). Addresses are ``base`` plus an offset into the
    image: the simulator's memory starts at 0, a board's buffer where the operating system
    put it. A ``dry`` image only allocates: what a layout would occupy, for a model too large
    to lay out in Python."""

    size: int
    start: int = 0x1000
    align: int = 64
    dry: bool = False
    base: int = 0
    top: int = field(init=False)
    regions: list = field(init=False, default_factory=list)
    _data: bytearray | None = field(init=False, default=None, repr=False)

    def __post_init__(self):
        if self.base % self.align:
            raise ValueError(f"Image base must be a multiple of {self.align}, not {self.base:#x}")
        self.top = self.start

    @property
    def data(self) -> bytearray:
        """The image's bytes, from offset 0 (address ``base``)."""
        if self.dry:
            raise ValueError("A dry image holds no data")
        if self._data is None:
            self._data = bytearray(self.size)
        return self._data

    def alloc(self, nbytes: int, name: str = "") -> int:
        """The address of ``nbytes`` more bytes, named ``name`` in :attr:`regions`."""
        offset = -(-self.top // self.align) * self.align
        if offset + nbytes > self.size:
            raise ValueError(f"Memory must hold {offset + nbytes:,} bytes, not {self.size:,}")
        self.top = offset + nbytes
        self.regions.append((name, self.base + offset, nbytes))
        return self.base + offset

    def put(self, array_or_bytes, address: int | None = None, name: str = "") -> int:
        """Write bytes (or an array's) at ``address``, or at a new region; return where."""
        raw = array_or_bytes if isinstance(array_or_bytes, (bytes, bytearray)) else \
            np.ascontiguousarray(array_or_bytes).tobytes()
        address = self.alloc(len(raw), name) if address is None else address
        if not self.dry:
            self.data[address - self.base:address - self.base + len(raw)] = raw
        return address

    def get(self, address: int, nbytes: int) -> bytes:
        return bytes(self.data[address - self.base:address - self.base + nbytes])


@dataclass
class Program:
    """Instructions of ``words`` bus words of ``word_bytes``."""

    words: int = 2
    word_bytes: int = 16
    instructions: list = field(default_factory=list)

    def add(self, unit: str, layout, fields: dict, *, wait: bool = True) -> None:
        """Append an instruction for ``unit``: ``fields`` packed by ``layout`` (a
        ``StructLayout`` of unsigned fields; a field not given is 0)."""
        value = 0
        for name, offset, width in _fields(layout):
            v = int(fields.get(name, 0))
            if not 0 <= v < 1 << width:
                raise ValueError(f"Field {name} of a {unit} instruction must fit {width} "
                                 f"bits, not {v!r}")
            value |= v << offset
        word = UNITS[unit] | int(wait) << 4 | value << 5
        self.instructions.append(word.to_bytes(self.words * self.word_bytes, "little"))

    def bytes(self) -> bytes:
        return b"".join(self.instructions)

    def __len__(self):
        return len(self.instructions)


def decode_instruction(raw: bytes) -> tuple[str, bool, dict]:
    """``(unit, wait, fields)`` of an instruction as :meth:`Program.add` packed it."""
    value = int.from_bytes(raw, "little")
    unit = UNIT_NAMES[value & 0xF]
    payload = value >> 5
    return unit, bool(value >> 4 & 1), {name: payload >> offset & ((1 << width) - 1)
                                         for name, offset, width in _fields(LAYOUTS[unit])}


def waiting_instructions(program: bytes, *, word_bytes: int) -> list[tuple[str, dict]]:
    """``(unit, fields)`` of each instruction of ``program`` (as :meth:`Program.add` packs
    them, on a bus of ``word_bytes``); refuses (``ValueError``) one that does not wait for
    the one before, which the controller's cycle model does not follow."""
    step = 2 * word_bytes
    instructions = []
    for start in range(0, len(program), step):
        unit, wait, fields = decode_instruction(program[start:start + step])
        if not wait and start:
            raise ValueError(f"Instructions of a predicted program must wait for the one "
                             f"before, not instruction {start // step} ({unit})")
        instructions.append((unit, fields))
    return instructions


def predicted_cycles(parameters, program: bytes, *, address: int, memory) -> int:
    """The cycles the accelerator's cycle model gives ``program`` (instructions as
    :meth:`Program.add` packs them, each waiting for the one before) at byte ``address``:
    each instruction's by its unit's model
    (:meth:`~ternforge.hdl.accelerator.parameters.AcceleratorParameters.instruction_cycles`),
    and the controller's own (:func:`~ternforge.hdl.accelerator.controller.program_cycles`),
    on a deterministic DDR of ``memory``'s timing (a
    :class:`~ternforge.hdl.common.timing.MemoryTiming`; each port's, if several)."""
    from ..hdl.accelerator.controller import program_cycles

    word, memory = parameters.data_bits // 8, parameters.bus_timing(memory)
    cycles = [parameters.instruction_cycles(unit, fields, memory=memory)
              for unit, fields in waiting_instructions(program, word_bytes=word)]
    return program_cycles(cycles, memory=memory, address=address, word_bytes=word)


@functools.cache
def _fields(layout) -> tuple:
    """``(name, offset, width)`` of each field of an instruction's ``StructLayout``."""
    return tuple((name, f.offset, f.width) for name, f in layout)


def _bits(value) -> int:
    return int(fm.to_bits(np.float64(value), "float32"))


class LayerLayout:
    """One decoder layer in DDR: its weights and descriptor tables, gains, RoPE tables, KV
    cache and scratch, laid out once in ``image``; :meth:`step` writes a step's program.

    Parameters
    ----------
    image : Image
    layer : BitNetLayer
        The layer's parameters (those the golden model takes).
    gemv : GemvParameters
        The GEMV unit's (its engine and weight buffer).
    attention : AttentionUnitParameters
        The attention unit's (its ``max_keys`` is the context).
    ffn : int
        The FFN size.
    max_tokens : int
        The longest prompt (the scratch's rows).
    word_bytes : int
        Bytes of a bus word.
    name : str
        The prefix of its regions' names (its weights, descriptor tables, gains, KV cache).
    share : LayerLayout or None
        A layer whose RoPE tables and scratch this one uses (layers run one after another);
        None: its own.
    """

    def __init__(self, image: Image, layer: BitNetLayer, *, gemv, attention, ffn: int,
                 max_tokens: int, word_bytes: int, name: str = "layer",
                 share: "LayerLayout | None" = None):
        self.layer, self.attention, self.ffn = layer, attention, ffn
        self.engine = engine = gemv.engine
        self.d = d = layer.weights["q"].shape[1]
        self.head_dim = d // layer.heads
        self.word = word_bytes
        geometry = StreamGeometry.of(engine)
        self.weights = {}
        for projection, w in layer.weights.items():
            count = gemv.weight_beats(*w.shape)
            base = image.alloc(-(-count * engine.weight_beat_bits // 8),
                               f"{name}.weights.{projection}")
            if not image.dry:
                beats = job_beats(np.zeros((1, w.shape[1]), np.int8), w, geometry).weights
                assert len(beats) == count, (len(beats), count)
                image.put(weight_image(beats, engine.weight_beat_bits), base)
            descriptors = pass_descriptors(
                count, beat_bits=engine.weight_beat_bits,
                load_beats=gemv.load_beats(count), word_bytes=word_bytes)
            table = image.put(descriptor_table(descriptors, base=base, word_bytes=word_bytes),
                              name=f"{name}.descriptors.{projection}")
            self.weights[projection] = (table, len(descriptors), count)
        self.gains = {gain: image.put(np.asarray(g).astype("<u4"), name=f"{name}.gains.{gain}")
                      for gain, g in layer.gains.items()}
        keys = attention.engine.max_keys
        self.cache = image.alloc(layer.kv_heads * keys * attention.row_bytes, f"{name}.kv_cache")
        if share is not None:  # the RoPE tables and the scratch of another layer
            self.cos, self.sin = share.cos, share.sin
            self.scratch, self.codes, self.scales = share.scratch, share.codes, share.scales
            return
        cos, sin = rope_tables(np.arange(keys), self.head_dim, layer.theta)
        self.cos = image.put(cos.astype("<u4"), name="rope.cos")
        self.sin = image.put(sin.astype("<u4"), name="rope.sin")
        widest = max(d, ffn)
        self.scratch = {part: image.alloc(4 * max_tokens * widest, f"scratch.{part}")
                        for part in ("normed", "acc", "q", "k", "v", "o", "attended", "gate",
                                     "up", "gated", "down", "out")}
        self.codes = image.alloc(max_tokens * widest, "scratch.codes")
        self.scales = image.alloc(4 * max_tokens, "scratch.scales")

    def step(self, program: Program, hidden: int, *, tokens: int, position: int) -> int:
        """Append to ``program`` the layer over ``tokens`` tokens from ``position`` (a prompt
        from 0, or one decode token) on the ``(tokens, d)`` float32 input at ``hidden``;
        return the address of the output."""
        if position and tokens != 1:
            raise ValueError(f"Decode steps must be one token, not {tokens!r}")
        layer, d, s = self.layer, self.d, self.scratch
        codes, scales = self._norm_quantise(program, hidden, "input", d, tokens)
        q, k, v = (self._linear(program, name, codes, scales, d, tokens, s[name])
                   for name in ("q", "k", "v"))
        for x, count in ((q, layer.heads), (k, layer.kv_heads)):
            program.add("rope", ROPE_INSTRUCTION, {
                "tokens": tokens, "heads": count, "half": self.head_dim // 2, "x": x,
                "stride": 4 * count * self.head_dim, "cos": self.cos + 2 * self.head_dim * position,
                "sin": self.sin + 2 * self.head_dim * position, "y": x})
        if position == 0:
            self._prefill_attention(program, tokens, q, k, v, s["o"])
        else:
            self._decode_attention(program, position, q, k, v, s["o"])
        codes, scales = self._norm_quantise(program, s["o"], "attention_sub", d, tokens)
        o = self._linear(program, "o", codes, scales, d, tokens, s["attended"])
        self._vector(program, VectorOp.RESIDUAL, tokens, d, a=hidden, b=o, y=s["attended"])
        codes, scales = self._norm_quantise(program, s["attended"], "post_attention", d,
                                            tokens)
        gate = self._linear(program, "gate", codes, scales, d, tokens, s["gate"])
        up = self._linear(program, "up", codes, scales, d, tokens, s["up"])
        self._vector(program, VectorOp.GATED, tokens, self.ffn, a=gate, b=up, y=s["gated"])
        codes, scales = self._norm_quantise(program, s["gated"], "ffn_sub", self.ffn, tokens)
        down = self._linear(program, "down", codes, scales, self.ffn, tokens, s["down"])
        self._vector(program, VectorOp.RESIDUAL, tokens, d, a=s["attended"], b=down,
                     y=s["out"])
        return s["out"]

    @staticmethod
    def _vector(program, op, tokens, length, a=0, b=0, y=0, z=0, scalar=0, inv_length=0):
        program.add("vector", VECTOR_INSTRUCTION, {
            "op": op, "tokens": tokens, "length": length, "a": a, "b": b, "y": y, "z": z,
            "scalar": scalar, "inv_length": inv_length})

    def _norm_quantise(self, program, x, gain, n, tokens):
        """RMSNorm and int8 quantisation of ``(tokens, n)`` at ``x``: codes and scales."""
        normed = self.scratch["normed"]
        self._vector(program, VectorOp.RMSNORM, tokens, n, a=x, b=self.gains[gain], y=normed,
                     scalar=_bits(self.layer.eps), inv_length=_bits(1 / n))
        self._vector(program, VectorOp.QUANTISE, tokens, n, a=normed, y=self.codes,
                     z=self.scales)
        return self.codes, self.scales

    def _linear(self, program, name, codes, scales, k, tokens, out):
        """The projection ``name`` of every token's codes, dequantised into ``out``."""
        table, count, beats = self.weights[name]
        n, acc = len(self.layer.weights[name]), self.scratch["acc"]
        for t in range(tokens):
            program.add("gemv", GEMV_INSTRUCTION, {
                "descriptors": table, "descriptor_count": count, "weight_beats": beats,
                "row_blocks": -(-n // self.engine.rows), "acts": codes + t * k, "k": k,
                "results": acc + 4 * t * n, "n": n})
        self._vector(program, VectorOp.DEQUANTISE, tokens, n, a=acc, b=scales, y=out,
                     scalar=int(self.layer.weight_scales[name]))
        return out

    def _prefill_attention(self, program, tokens, q, k, v, o):
        """The prompt's keys and values copied into the cache, then causal attention, a
        query tile of a head an instruction."""
        layer, unit, hd, d = self.layer, self.attention, self.head_dim, self.d
        kv = layer.kv_heads * hd
        for t in range(tokens):
            for g in range(layer.kv_heads):
                row = self.cache + unit.region(g) + t * unit.row_bytes
                source = 4 * (t * kv + g * hd)
                for part, at in ((k, row), (v, row + 4 * hd)):
                    program.add("copy", COPY_INSTRUCTION, {
                        "source": part + source, "destination": at,
                        "words": 4 * hd // self.word})
        group, tile = layer.heads // layer.kv_heads, unit.engine.rows
        for head in range(layer.heads):
            for start in range(0, tokens, tile):
                rows = min(tile, tokens - start)
                at = 4 * (start * d + head * hd)
                program.add("attention", ATTENTION_INSTRUCTION, {
                    "rows": rows, "keys": start + rows, "position": start, "row_step": 1,
                    "append": 0, "base": self.cache + unit.region(head // group),
                    "q": q + at, "q_stride": 4 * d, "k": 0, "v": 0, "out": o + at,
                    "out_stride": 4 * d})

    def _decode_attention(self, program, position, q, k, v, o):
        """A KV head's query heads against its cache, appending the token's key and value,
        an instruction a KV head."""
        layer, unit, hd = self.layer, self.attention, self.head_dim
        group = layer.heads // layer.kv_heads
        for g in range(layer.kv_heads):
            heads = 4 * g * group * hd
            program.add("attention", ATTENTION_INSTRUCTION, {
                "rows": group, "keys": position + 1, "position": position, "row_step": 0,
                "append": 1, "base": self.cache + unit.region(g), "q": q + heads,
                "q_stride": 4 * hd, "k": k + 4 * g * hd, "v": v + 4 * g * hd,
                "out": o + heads, "out_stride": 4 * hd})


class ModelLayout:
    """A whole model in DDR: every layer's :class:`LayerLayout`, the final norm's gain, the
    input rows (the host writes the tokens' embeddings there) and the final hidden states
    (the host reads them for its LM head).

    Parameters
    ----------
    image : Image
    weights : ModelWeights
    gemv, attention, max_tokens, word_bytes :
        As :class:`LayerLayout`'s (the attention unit's ``max_keys`` is the context).
    """

    def __init__(self, image: Image, weights: ModelWeights, *, gemv, attention,
                 max_tokens: int, word_bytes: int):
        c = weights.config
        self.config, self.weights, self.word = c, weights, word_bytes
        self.layers = []
        for i, layer in enumerate(layer_parameters(weights)):
            self.layers.append(LayerLayout(
                image, layer, gemv=gemv, attention=attention, ffn=c.ffn,
                max_tokens=max_tokens, word_bytes=word_bytes, name=f"layer{i}",
                share=self.layers[0] if self.layers else None))
        self.norm = image.put(fm.to_bits(np.asarray(weights.norm, np.float64),
                                         "float32").astype("<u4"), name="norm")
        self.input = image.alloc(4 * max_tokens * c.hidden, "input")
        self.final = image.alloc(4 * max_tokens * c.hidden, "final")

    def step(self, program: Program, *, tokens: int, position: int) -> int:
        """Append the forward pass of ``tokens`` tokens from ``position`` (their embeddings
        at :attr:`input`) to ``program``; return :attr:`final`, where their final hidden
        states (after the final norm) will be."""
        x = self.input
        for layer in self.layers:
            x = layer.step(program, x, tokens=tokens, position=position)
        n = self.config.hidden
        LayerLayout._vector(program, VectorOp.RMSNORM, tokens, n, a=x, b=self.norm,
                            y=self.final, scalar=_bits(self.config.norm_eps),
                            inv_length=_bits(1 / n))
        return self.final

    def program(self, *, tokens: int, position: int) -> Program:
        """The program of :meth:`step` alone."""
        program = Program(words=2, word_bytes=self.word)
        self.step(program, tokens=tokens, position=position)
        return program


def generation(weights: ModelWeights, *, prompt_tokens: int, new_tokens: int, gemv,
               attention, data_bits: int, memory_bytes: int,
               base: int = 0) -> tuple[Image, dict]:
    """The DDR image and the job (for :func:`ternforge.sim.host.generate`) of a prefill of
    ``prompt_tokens`` tokens and the decode steps of ``new_tokens`` greedy tokens: the
    model's layout, the prefill's program and one program a decode position, for a buffer
    of ``memory_bytes`` at address ``base``."""
    context = prompt_tokens + new_tokens
    if not 1 <= prompt_tokens or context > attention.engine.max_keys:
        raise ValueError(f"Prompt and new tokens must fit the context of "
                         f"{attention.engine.max_keys} tokens, not {prompt_tokens} + "
                         f"{new_tokens}")
    image, word = Image(memory_bytes, base=base), data_bits // 8
    layout = ModelLayout(image, weights, gemv=gemv, attention=attention,
                         max_tokens=prompt_tokens, word_bytes=word)

    def program(tokens, position):
        instructions = layout.program(tokens=tokens, position=position)
        return [image.put(instructions.bytes()), len(instructions)]

    job = {"model": weights.config.to_dict(), "input": layout.input, "final": layout.final,
           "data_bits": data_bits, "new_tokens": new_tokens,
           "prefill": program(prompt_tokens, 0),
           "decode": [program(1, prompt_tokens + step) for step in range(new_tokens - 1)]}
    return image, job


def memory_map(config, *, gemv, attention, data_bits: int, prompt_tokens: int,
               memory_bytes: int) -> dict:
    """The DDR image of ``config`` (a :class:`~ternforge.hdl.accelerator.model.ModelConfig`)
    as :func:`generation` lays it out, from the model's shapes alone: every region (name,
    address, bytes), the bytes of each kind of region, and the programs of a prefill of
    ``prompt_tokens`` tokens and of one decode step. Raises ``ValueError`` if it does not
    fit ``memory_bytes``."""
    from .models.bitnet import shaped_weights

    word = data_bits // 8
    image = Image(memory_bytes, dry=True)
    layout = ModelLayout(image, shaped_weights(config), gemv=gemv, attention=attention,
                         max_tokens=prompt_tokens, word_bytes=word)
    programs = {}
    for phase, tokens, position in (("prefill", prompt_tokens, 0),
                                    ("decode", 1, prompt_tokens)):
        program = layout.program(tokens=tokens, position=position)
        nbytes = len(program) * program.words * program.word_bytes
        image.alloc(nbytes, f"program.{phase}")
        programs[phase] = {"instructions": len(program), "bytes": nbytes}
    kinds = {}
    for name, _, nbytes in image.regions:
        kind = name.split(".")[1] if name.startswith("layer") else name.split(".")[0]
        kinds[kind] = kinds.get(kind, 0) + nbytes
    return {"start": image.start, "end": image.top, "bytes": image.top - image.start,
            "prompt_tokens": prompt_tokens, "context": attention.engine.max_keys,
            "kinds": kinds, "programs": programs,
            "regions": [{"name": name, "address": address, "bytes": nbytes}
                        for name, address, nbytes in image.regions]}
