"""The attention unit behind the controller: a causal prefill of five tokens over two query
heads sharing a KV head (a program of one instruction a query tile), then a decode step that
appends its key and value; outputs and the cache exact to the golden model under random
stalls."""

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import ACCELERATOR, DATA_BITS, WORD, program
from ternforge.hdl.accelerator.attention import ATTENTION_INSTRUCTION
from ternforge.sim.memory import write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.attention import multi_head

WORDS = 8192
UNIT = ACCELERATOR.attention  # tiles of 4 x 4, two lanes
H, HKV, D, T = 2, 1, UNIT.engine.head_dim, 5
CACHE, Q, OUT, Q2, K2, V2, OUT2 = 0x8000, 0x1000, 0x2000, 0x3000, 0x3400, 0x3800, 0x4000
TOKEN_BYTES, HEAD_BYTES = H * D * 4, D * 4


def instruction(**fields):
    return ("attention", ATTENTION_INSTRUCTION, fields)  # no wait


def _job(tmp_path):
    rng = np.random.default_rng(41)
    bits = lambda shape: fm.to_bits(rng.standard_normal(shape), "float32")  # noqa: E731
    q, k, v = bits((H, T, D)), bits((HKV, T + 1, D)), bits((HKV, T + 1, D))
    q_new = bits((H, 1, D))
    image = bytearray(WORDS * WORD)

    def put(address, array):
        raw = np.ascontiguousarray(array).astype("<u4").tobytes()
        image[address:address + len(raw)] = raw

    for t in range(T):  # the prompt's keys and values already in the cache (rows 0 .. T-1)
        put(CACHE + t * UNIT.row_bytes, np.concatenate([k[0, t], v[0, t]]))
    put(Q, q.transpose(1, 0, 2))  # token-major: a token's heads side by side
    put(Q2, q_new[:, 0])
    put(K2, k[0, T])
    put(V2, v[0, T])
    instructions = []
    for head in range(H):
        for start in range(0, T, 4):
            rows = min(4, T - start)
            instructions.append(instruction(
                rows=rows, keys=start + rows, position=start, row_step=1, append=0,
                base=CACHE, q=Q + start * TOKEN_BYTES + head * HEAD_BYTES,
                q_stride=TOKEN_BYTES, out=OUT + start * TOKEN_BYTES + head * HEAD_BYTES,
                out_stride=TOKEN_BYTES))
    instructions.append(instruction(rows=H, keys=T + 1, position=T, row_step=0, append=1,
                               base=CACHE, q=Q2, q_stride=HEAD_BYTES, k=K2, v=V2, out=OUT2,
                               out_stride=HEAD_BYTES))
    words = program(*instructions)
    image[0:len(words)] = words
    write_image(tmp_path / "image.hex", bytes(image), data_bits=DATA_BITS)
    engine = UNIT.engine
    prefill = multi_head(q, k[:, :T], v[:, :T], phase="prefill", rows=engine.rows,
                         cols=engine.cols)
    decode = multi_head(q_new, k, v, phase="decode", rows=engine.rows, cols=engine.cols)
    put(OUT, prefill.transpose(1, 0, 2))
    put(OUT2, decode[:, 0])
    put(CACHE + T * UNIT.row_bytes, np.concatenate([k[0, T], v[0, T]]))  # appended
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"program": 0, "length": len(instructions), "runs": 1,
            "expected": str(tmp_path / "expected.bin")}


@pytest.fixture(scope="module")
def build():
    return machine.build()


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_prefill_and_a_decode_step_from_a_program(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path), stall=stall, seed=13)
