"""The GEMV unit behind the controller: a two-token prefill of one projection, one
instruction a token, weights streamed from DDR through the buffer, activations and results
in DDR; exact under random stalls, the weight reads sharing the port safely, with loads
shorter than the weight buffer and with one load longer than it."""

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import ACCELERATOR, DATA_BITS, WORD, program
from ternforge.hdl.accelerator.gemv import GEMV_INSTRUCTION
from ternforge.sim.memory import write_image
from ternforge.sim.models.tlmm_stream import StreamGeometry, job_beats
from ternforge.sim.models.weight_plan import descriptor_table, pass_descriptors, weight_image

WORDS = 8192
PARAMETERS, ENGINE = ACCELERATOR.gemv, ACCELERATOR.engine
M, K, N = 2, 50, 100  # K off the chunk grid (12 codes), N off the row grid (8)
WEIGHTS, TABLE, ACTS, RESULTS = 0x10000, 0x1000, 0x2000, 0x3000


def gemv(token, table, count, beats, wait=False):
    fields = {"descriptors": TABLE, "descriptor_count": count, "weight_beats": beats,
              "row_blocks": -(-N // ENGINE.rows), "acts": ACTS + token * 0x100, "k": K,
              "results": RESULTS + token * 0x200, "n": N}
    return ("gemv", GEMV_INSTRUCTION, fields, wait)


def _job(tmp_path, load_beats):
    rng = np.random.default_rng(31)
    x = rng.integers(-128, 128, (M, K)).astype(np.int8)
    w = rng.integers(-1, 2, (N, K)).astype(np.int8)
    beats = job_beats(x[:1], w, StreamGeometry.of(ENGINE)).weights  # one token's pass
    weights = weight_image(beats, PARAMETERS.beat_bits)
    descriptors = pass_descriptors(len(beats), beat_bits=PARAMETERS.beat_bits,
                                   load_beats=load_beats,
                                   word_bytes=WORD)
    image = bytearray(WORDS * WORD)
    image[WEIGHTS:WEIGHTS + len(weights)] = weights
    table = descriptor_table(descriptors, base=WEIGHTS, word_bytes=WORD)
    image[TABLE:TABLE + len(table)] = table
    for token in range(M):
        image[ACTS + token * 0x100:ACTS + token * 0x100 + K] = x[token].tobytes()
    instructions = program(*(gemv(token, TABLE, len(descriptors), len(beats))
                             for token in range(M)))
    image[0:len(instructions)] = instructions
    write_image(tmp_path / "image.hex", bytes(image), data_bits=DATA_BITS)
    y = x.astype(np.int64) @ w.T.astype(np.int64)
    for token in range(M):
        row = y[token].astype("<i4").tobytes()
        out = row + bytes(-len(row) % WORD)  # the final word padded with zeros
        image[RESULTS + token * 0x200:RESULTS + token * 0x200 + len(out)] = out
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"program": 0, "length": M, "runs": 1, "expected": str(tmp_path / "expected.bin")}


@pytest.fixture(scope="module")
def build():
    return machine.build()


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_a_prefill_runs_one_gemv_a_token(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path, 32), stall=stall, seed=9)


@pytest.mark.verilator
def test_a_load_longer_than_the_buffer_streams_through_it(build, tmp_path):
    """The pass's 65 beats in one load, into a 64-beat buffer: bursts of a quarter of the
    buffer, each requested once there is room for it (a burst as long as the load never
    would be)."""
    assert 65 > PARAMETERS.buffer_depth
    machine.run(build, tmp_path, _job(tmp_path, 68), stall=0.3, seed=5)
