"""The controller runs a program of unit instructions from DDR, from one start: copies and a
dequantise operation of the vector unit, barriers between dependent steps, memory exact under
random stalls; the program run twice. Its counters give each unit's busy cycles."""

import json

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import WORD, program
from ternforge.hdl.accelerator.controller import Controller
from ternforge.hdl.accelerator.parameters import VECTOR_INSTRUCTION, VectorOp
from ternforge.hdl.accelerator.top import COPY_INSTRUCTION
from ternforge.sim.memory import write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.eltwise import dequantise

WORDS = 4096
TOKENS, N = 5, 38  # (N a whole number of the vector unit's beats; its last word padded)


def copy(source, destination, words, wait=False):
    return ("copy", COPY_INSTRUCTION, {"source": source, "destination": destination,
                                       "words": words}, wait)


def dequantise_op(acc, scale, out, weight_scale, wait=False):
    return ("vector", VECTOR_INSTRUCTION, {"op": VectorOp.DEQUANTISE, "tokens": TOKENS,
                                           "length": N, "a": acc, "b": scale, "y": out,
                                           "scalar": weight_scale}, wait)


def _job(tmp_path):
    rng = np.random.default_rng(3)
    image = bytearray(rng.integers(0, 256, WORDS * WORD, np.uint8).tobytes())
    acc = rng.integers(-(1 << 20), 1 << 20, (TOKENS, N)).astype("<i4")
    act_scale = fm.to_bits(rng.uniform(1e-3, 1e-1, TOKENS), "float32").astype("<u4")
    weight_scale = int(fm.to_bits(np.float64(0.37), "float32"))
    vector_words = -(-acc.nbytes // WORD)
    image[0x8000:0x8000 + acc.nbytes] = acc.tobytes()
    image[0x3000:0x3000 + act_scale.nbytes] = act_scale.tobytes()
    instructions = program(
        copy(0x8000, 0x1000, vector_words),  # stage the accumulators
        dequantise_op(0x1000, 0x3000, 0x5000, weight_scale, wait=True),  # needs the copy
        copy(0x5000, 0x7000, vector_words, wait=True),  # needs the results
        copy(0x9000, 0xB000, 100))
    image[0:len(instructions)] = instructions
    write_image(tmp_path / "image.hex", bytes(image), data_bits=8 * WORD)
    # the program's model, step by step
    image[0x1000:0x1000 + vector_words * WORD] = image[0x8000:0x8000 + vector_words * WORD]
    y = dequantise(acc, act_scale, weight_scale, "float32").astype("<u4").tobytes()
    out = y + bytes(vector_words * WORD - len(y))  # the final word padded with zeros
    image[0x5000:0x5000 + len(out)] = out
    image[0x7000:0x7000 + len(out)] = out
    image[0xB000:0xB000 + 100 * WORD] = image[0x9000:0x9000 + 100 * WORD]
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"program": 0, "length": 4, "runs": 2, "expected": str(tmp_path / "expected.bin")}


@pytest.fixture(scope="module")
def build():
    return machine.build()


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_a_program_runs_from_one_start(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path), stall=stall, seed=11)


@pytest.mark.verilator
def test_each_units_busy_cycles_are_counted(build, tmp_path):
    """The copy alone, the dequantise alone, then the whole program: a unit without
    instructions counts none; the controller's own cycles (fetch, dispatch, completion) are
    the same whichever unit runs; instructions with barriers between them do not overlap."""
    job = _job(tmp_path)
    instruction = 2 * WORD
    job = {"programs": [[0, 1], [instruction, 1], [0, job["length"]]],
           "result": str(tmp_path / "cycles.json")}
    machine.run(build, tmp_path, job, stall=0.0, seed=1)
    copy_alone, vector_alone, whole = json.loads((tmp_path / "cycles.json").read_text())
    assert copy_alone["units"]["copy"] > 0 and vector_alone["units"]["vector"] > 0
    for run, used in ((copy_alone, {"copy"}), (vector_alone, {"vector"}),
                      (whole, {"copy", "vector"})):
        assert [name for name, cycles in run["units"].items() if cycles] == \
            [name for name in run["units"] if name in used]
    assert copy_alone["cycles"] - copy_alone["units"]["copy"] == \
        vector_alone["cycles"] - vector_alone["units"]["vector"]
    assert whole["units"]["copy"] + whole["units"]["vector"] <= whole["cycles"]


def test_controller_parameters_are_checked():
    with pytest.raises(ValueError, match="^Units must be an integer from 1 to 16, not 0$"):
        Controller(0)
    with pytest.raises(ValueError, match="^Instruction words must be 1, 2 or 4, not 3$"):
        Controller(2, instruction_words=3)
    assert Controller(2, data_bits=128, instruction_words=2).payload_bits == 251
    with pytest.raises(ValueError, match=r"^Unit names must be 2 different names, not "
                                         r"\('a', 'a'\)$"):
        Controller(2, names=("a", "a"))
