"""One BitNet decoder layer on the accelerator: the runtime's programs (norms, quantisation,
the seven projections token by token, RoPE, the prompt's keys and values into the cache,
causal attention, sub-norms, the gated FFN, residuals) over five units behind the controller
give the golden layer model's output bit for bit, for a prefill and then a decode step that
appends its key and value to the cache: a small layer on the machine tests' accelerator with
and without random stalls, and a layer of BitNet b1.58 0.7B's shape (hidden 1536, 16 heads,
FFN 4096, SiLU) on the simulation accelerator of that model. Without stalls, each program takes
the cycles the accelerator's cycle model predicts."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import ACCELERATOR, DATA_BITS, WORD
from ternforge.hdl.accelerator.model import preset
from ternforge.hdl.accelerator.parameters import AcceleratorParameters, VectorOp
from ternforge.sim import machine as simulated
from ternforge.sim.memory import write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.attention import multi_head
from ternforge.sim.models.eltwise import BitNetLayer, bitnet_layer
from ternforge.sim.runtime import UNITS, Image, LayerLayout, Program, predicted_cycles


@dataclass(frozen=True)
class Shape:
    """A layer's shape, the accelerator it runs on and the memory it needs."""

    d: int
    heads: int
    kv_heads: int
    ffn: int
    activation: str
    tokens: int  # of the prefill
    parameters: AcceleratorParameters
    memory_bytes: int

    @property
    def head_dim(self):
        return self.d // self.heads


#: a layer smaller than the tiny model's, of its head dimension, on the machine tests' build
#: (every projection at least the 96 rows the GEMV unit's cycle model follows; the tiny
#: model's test has grouped queries)
SMALL = Shape(d=2 * ACCELERATOR.attention.engine.head_dim, heads=2, kv_heads=2, ffn=256,
              activation="relu2", tokens=3, parameters=ACCELERATOR, memory_bytes=1 << 18)
#: a layer of BitNet b1.58 0.7B (1bitLLM/bitnet_b1_58-large), a short context
LARGE = Shape(d=1536, heads=16, kv_heads=16, ffn=4096, activation="silu", tokens=2,
              parameters=AcceleratorParameters.for_simulation(preset("bitnet-0.7b"),
                                                              context=16),
              memory_bytes=1 << 23)


def _layer(rng, shape):
    bits = lambda x: fm.to_bits(np.asarray(x, np.float64), "float32")  # noqa: E731
    d, ffn, kv = shape.d, shape.ffn, shape.kv_heads * shape.head_dim
    shapes = {"q": (d, d), "k": (kv, d), "v": (kv, d), "o": (d, d), "gate": (ffn, d),
              "up": (ffn, d), "down": (d, ffn)}
    return BitNetLayer(
        weights={n: rng.integers(-1, 2, s).astype(np.int8) for n, s in shapes.items()},
        weight_scales={n: bits(rng.uniform(0.02, 0.1)) for n in shapes},
        gains={n: bits(1 + 0.1 * rng.standard_normal(ffn if n == "ffn_sub" else d))
               for n in ("input", "attention_sub", "post_attention", "ffn_sub")},
        heads=shape.heads, kv_heads=shape.kv_heads, activation=shape.activation, eps=1e-5,
        theta=500000.0)


def _job(tmp_path, shape):
    rng = np.random.default_rng(61)
    layer = _layer(rng, shape)
    d, tokens, hd = shape.d, shape.tokens, shape.head_dim
    unit = shape.parameters.attention
    prompt = fm.to_bits(rng.standard_normal((tokens, d)), "float32")
    token = fm.to_bits(rng.standard_normal((1, d)), "float32")  # the next token's input
    image = Image(shape.memory_bytes, start=0x4000)
    layout = LayerLayout(image, layer, gemv=shape.parameters.gemv, attention=unit, ffn=shape.ffn,
                         max_tokens=tokens, word_bytes=WORD)
    prefill, decode = Program(words=2, word_bytes=WORD), Program(words=2, word_bytes=WORD)
    x, x_next = image.put(prompt.astype("<u4")), image.put(token.astype("<u4"))
    out = layout.step(prefill, x, tokens=tokens, position=0)
    layout.step(decode, x_next, tokens=1, position=tokens)
    image.put(prefill.bytes(), 0)
    image.put(decode.bytes(), 0x2000)
    assert len(prefill.bytes()) <= 0x2000 and len(decode.bytes()) <= 0x2000
    write_image(tmp_path / "image.hex", bytes(image.data[:image.top]), data_bits=DATA_BITS)

    cache = {}
    def attention(q, k, v):  # the golden model's, keeping the cache as the hardware does
        count = q.shape[0]
        heads = lambda a, n: a.reshape(count, n, hd).transpose(1, 0, 2)  # noqa: E731
        k, v = heads(k, shape.kv_heads), heads(v, shape.kv_heads)
        phase = "decode" if cache else "prefill"
        if cache:
            k, v = np.concatenate([cache["k"], k], 1), np.concatenate([cache["v"], v], 1)
        cache.update(k=k, v=v)
        o = multi_head(heads(q, shape.heads), cache["k"], cache["v"], phase=phase,
                       rows=unit.engine.rows, cols=unit.engine.cols)
        return o.transpose(1, 0, 2).reshape(count, d)

    lanes = shape.parameters.vector.stages[VectorOp.RMSNORM].partial_sums
    expected = bitnet_layer(prompt, layer, positions=np.arange(tokens), attention=attention,
                            lanes=lanes)
    expected_next = bitnet_layer(token, layer, positions=[tokens], attention=attention,
                                 lanes=lanes)
    # (the decode step's output overwrites the prefill's: the check reads it after both)
    job = {"programs": [[0, len(prefill)], [0x2000, len(decode)]], "timeout_ms": 200,
           "check": [[out, expected_next.astype("<u4").tobytes().hex()],
                     [out + 4 * d, expected[1:].astype("<u4").tobytes().hex()]],
           "result": str(tmp_path / "cycles.json")}
    predicted = [predicted_cycles(shape.parameters, program.bytes(), address=address,
                                  memory=machine.TIMING)
                 for program, address in ((prefill, 0), (decode, 0x2000))]
    return job, predicted


def _run(built, tmp_path, shape, stall):
    """Run the layer's prefill and decode step; their cycles against the prediction."""
    job, predicted = _job(tmp_path, shape)
    machine.run(built, tmp_path, job, stall=stall, seed=19)
    cycles = [run["cycles"] for run in json.loads((tmp_path / "cycles.json").read_text())]
    if stall:
        assert all(got > model for got, model in zip(cycles, predicted))
    else:
        assert cycles == predicted


@pytest.fixture(scope="module")
def build():
    assert list(UNITS) == ["copy", "vector", "gemv", "rope", "attention"]
    return machine.build()


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_a_decoder_layer_is_the_golden_models(build, tmp_path, stall):
    _run(build, tmp_path, SMALL, stall)


@pytest.mark.verilator
def test_a_layer_of_the_07b_model_is_the_golden_models(tmp_path):
    built = simulated.build(LARGE.parameters, memory_bytes=LARGE.memory_bytes)
    _run(built, tmp_path, LARGE, 0.0)
