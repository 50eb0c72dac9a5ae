"""The RoPE unit behind the controller: a projection's heads rotated in place for three
tokens at positions 4 .. 6 of the host's table, bit-exact to the golden model, under random
stalls."""

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import DATA_BITS, WORD, program
from ternforge.hdl.accelerator.rope import ROPE_INSTRUCTION
from ternforge.sim.memory import write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.eltwise import rope_tables, rotate_heads

WORDS = 8192
T, H, D, FIRST = 3, 2, 16, 4
X, COS, SIN = 0x1000, 0x2000, 0x3000


def _job(tmp_path):
    rng = np.random.default_rng(51)
    x = fm.to_bits(rng.standard_normal((T, H * D)), "float32")
    cos, sin = rope_tables(np.arange(16), D, 500000.0)
    image = bytearray(WORDS * WORD)

    def put(address, array):
        raw = np.ascontiguousarray(array).astype("<u4").tobytes()
        image[address:address + len(raw)] = raw

    put(X, x)
    put(COS, cos)
    put(SIN, sin)
    half = D // 2
    fields = {"tokens": T, "heads": H, "half": half, "x": X, "stride": H * D * 4,
              "cos": COS + FIRST * half * 4, "sin": SIN + FIRST * half * 4, "y": X}
    instructions = program(("rope", ROPE_INSTRUCTION, fields))
    image[0:len(instructions)] = instructions
    write_image(tmp_path / "image.hex", bytes(image), data_bits=DATA_BITS)
    positions = FIRST + np.arange(T)
    put(X, rotate_heads(x, cos[positions], sin[positions], H, "float32"))  # in place
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"program": 0, "length": 1, "runs": 1, "expected": str(tmp_path / "expected.bin")}


@pytest.fixture(scope="module")
def build():
    return machine.build()


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_heads_are_rotated_in_place(build, tmp_path, stall):
    machine.run(build, tmp_path, _job(tmp_path), stall=stall, seed=17)
