"""One BitNet decoder layer on the machine: the runtime's programs (norms, quantisation, the
seven projections token by token, RoPE, the prompt's keys and values into the cache, causal
attention, sub-norms, the gated FFN, residuals) over five units behind the controller give
the golden layer model's output bit for bit, for a prefill of three tokens and then a decode
step that appends its key and value to the cache, with and without random stalls."""

import numpy as np
import pytest

import tb.controller_tb as machine
from tb.controller_tb import DATA_BITS
from ternforge.hdl.accelerator.model import ModelConfig
from ternforge.hdl.accelerator.parameters import AcceleratorParameters
from ternforge.hdl.accelerator.top import accelerator
from ternforge.hdl.eltwise.parameters import RmsNormParameters
from ternforge.sim.memory import WithMemory, write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.attention import multi_head
from ternforge.sim.models.eltwise import BitNetLayer, bitnet_layer
from ternforge.sim.runtime import UNITS, Image, LayerLayout, Program

WORDS, WORD = 1 << 14, DATA_BITS // 8
D, HEADS, KV_HEADS, FFN, TOKENS = 64, 2, 1, 128, 3
HEAD_DIM = D // HEADS
#: a one-layer model of these sizes, and the simulation accelerator for it
MODEL = ModelConfig("layer", hidden=D, layers=1, heads=HEADS, kv_heads=KV_HEADS,
                    head_dim=HEAD_DIM, ffn=FFN, vocab=16, max_context=64)
PARAMETERS = AcceleratorParameters.for_simulation(MODEL, context=64)
ENGINE, ATTENTION = PARAMETERS.engine, PARAMETERS.attention


def _layer(rng):
    bits = lambda x: fm.to_bits(np.asarray(x, np.float64), "float32")  # noqa: E731
    kv = KV_HEADS * HEAD_DIM
    shapes = {"q": (D, D), "k": (kv, D), "v": (kv, D), "o": (D, D), "gate": (FFN, D),
              "up": (FFN, D), "down": (D, FFN)}
    return BitNetLayer(
        weights={n: rng.integers(-1, 2, s).astype(np.int8) for n, s in shapes.items()},
        weight_scales={n: bits(rng.uniform(0.02, 0.1)) for n in shapes},
        gains={n: bits(1 + 0.1 * rng.standard_normal(FFN if n == "ffn_sub" else D))
               for n in ("input", "attention_sub", "post_attention", "ffn_sub")},
        heads=HEADS, kv_heads=KV_HEADS, activation="relu2", eps=1e-5, theta=500000.0)


def _job(tmp_path):
    rng = np.random.default_rng(61)
    layer = _layer(rng)
    prompt = fm.to_bits(rng.standard_normal((TOKENS, D)), "float32")
    token = fm.to_bits(rng.standard_normal((1, D)), "float32")  # the next token's input
    image = Image(WORDS * WORD, start=0x4000)
    layout = LayerLayout(image, layer, engine=ENGINE, attention=ATTENTION, ffn=FFN,
                         max_tokens=TOKENS, word_bytes=WORD)
    prefill, decode = Program(words=2, word_bytes=WORD), Program(words=2, word_bytes=WORD)
    x, x_next = image.put(prompt.astype("<u4")), image.put(token.astype("<u4"))
    out = layout.step(prefill, x, tokens=TOKENS, position=0)
    layout.step(decode, x_next, tokens=1, position=TOKENS)
    image.put(prefill.bytes(), 0)
    image.put(decode.bytes(), 0x2000)
    assert len(prefill.bytes()) <= 0x2000 and len(decode.bytes()) <= 0x2000
    write_image(tmp_path / "image.hex", bytes(image.data), data_bits=DATA_BITS)

    cache = {}
    def attention(q, k, v):  # the golden model's, keeping the cache as the hardware does
        tokens = q.shape[0]
        heads = lambda a, n: a.reshape(tokens, n, HEAD_DIM).transpose(1, 0, 2)  # noqa: E731
        k, v = heads(k, KV_HEADS), heads(v, KV_HEADS)
        phase = "decode" if cache else "prefill"
        if cache:
            k, v = np.concatenate([cache["k"], k], 1), np.concatenate([cache["v"], v], 1)
        cache.update(k=k, v=v)
        o = multi_head(heads(q, HEADS), cache["k"], cache["v"], phase=phase, rows=4,
                       cols=ATTENTION.engine.cols)
        return o.transpose(1, 0, 2).reshape(tokens, D)

    lanes = RmsNormParameters(format="float32").lanes
    expected = bitnet_layer(prompt, layer, positions=np.arange(TOKENS), attention=attention,
                            lanes=lanes)
    expected_next = bitnet_layer(token, layer, positions=[TOKENS], attention=attention,
                                 lanes=lanes)
    # (the decode step's output overwrites the prefill's: the check reads it after both)
    return {"programs": [[0, len(prefill)], [0x2000, len(decode)]], "check": [
        [out, expected_next.astype("<u4").tobytes().hex()],
        [out + 4 * D, expected[1:].astype("<u4").tobytes().hex()]]}


@pytest.fixture(scope="module")
def build():
    assert list(UNITS) == ["copy", "vector", "gemv", "rope", "attention"]
    return machine.build(WithMemory(accelerator(PARAMETERS), data_bits=DATA_BITS,
                                    words=WORDS))


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_a_decoder_layer_is_the_golden_models(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path), stall=stall, seed=19)
