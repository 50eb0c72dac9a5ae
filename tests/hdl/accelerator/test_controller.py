"""The controller runs a program of unit instructions from DDR, from one start: copies and a
dequantise operation, barriers between dependent steps, memory exact under random stalls."""

import numpy as np
import pytest

import tb.controller_tb as machine
from tb.controller_tb import design
from ternforge.hdl.accelerator.controller import Controller
from ternforge.sim.memory import write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.eltwise import dequantise

WORDS, WORD = 4096, 16  # 128-bit words
TOKENS, N = 5, 37


def instruction(unit, wait, *fields):
    """An instruction of two words: unit, wait, then the payload's fields (bits, value)."""
    value, shift = unit | wait << 4, 5
    for bits, field in fields:
        value |= field << shift
        shift += bits
    return value.to_bytes(2 * WORD, "little")


def copy(source, destination, words, wait=False):
    return instruction(0, wait, (32, source), (32, destination), (32, words))


def dequantise_op(acc, scale, out, weight_scale, wait=False):
    return instruction(1, wait, (32, acc), (32, scale), (32, out), (16, TOKENS), (16, N),
                       (32, weight_scale))


def _job(tmp_path):
    rng = np.random.default_rng(3)
    image = bytearray(rng.integers(0, 256, WORDS * WORD, np.uint8).tobytes())
    acc = rng.integers(-(1 << 20), 1 << 20, (TOKENS, N)).astype("<i4")
    act_scale = fm.to_bits(rng.uniform(1e-3, 1e-1, TOKENS), "float32").astype("<u4")
    weight_scale = int(fm.to_bits(np.float64(0.37), "float32"))
    vector_words = -(-acc.nbytes // WORD)
    image[0x8000:0x8000 + acc.nbytes] = acc.tobytes()
    image[0x3000:0x3000 + act_scale.nbytes] = act_scale.tobytes()
    program = b"".join([
        copy(0x8000, 0x1000, vector_words),  # stage the accumulators
        dequantise_op(0x1000, 0x3000, 0x5000, weight_scale, wait=True),  # needs the copy
        copy(0x5000, 0x7000, vector_words, wait=True),  # needs the results
        copy(0x9000, 0xB000, 100),
    ])
    image[0:len(program)] = program
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
    return machine.build(design(WORDS))


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_a_program_runs_from_one_start(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path), stall=stall, seed=11)


def test_controller_parameters_are_checked():
    with pytest.raises(ValueError, match="^Units must be an integer from 1 to 16, not 0$"):
        Controller(0)
    with pytest.raises(ValueError, match="^Instruction words must be 1, 2 or 4, not 3$"):
        Controller(2, instruction_words=3)
    assert Controller(2, data_bits=128, instruction_words=2).payload_bits == 251
