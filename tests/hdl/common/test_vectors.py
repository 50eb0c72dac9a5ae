"""A unit as an operation from DDR to DDR: vector readers, the dequantise stage and a vector
writer sharing one AXI4 port, bit-exact to the golden model under random stalls."""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog as verilog_backend

from ternforge.tb.vector_tb import DATA_BITS, TOPLEVEL, design
from ternforge.sim import verilator
from ternforge.sim.memory import MEMORY_VERILOG, plusargs, write_image
from ternforge.sim.models import fp as fm
from ternforge.sim.models.eltwise import dequantise

WORDS = 4096
TOKENS, N = 5, 37  # 185 elements: the last word of each region is partly padding
ADDRESSES = (0x1000, 0x3000, 0x5000)  # acc, act_scale, out


@pytest.fixture(scope="module")
def build():
    text = verilog_backend.convert(design(WORDS), name=TOPLEVEL)
    return verilator.build(text + MEMORY_VERILOG, toplevel=TOPLEVEL)


def _job(tmp_path):
    rng = np.random.default_rng(12)
    acc = rng.integers(-(1 << 20), 1 << 20, (TOKENS, N)).astype(np.int32)
    act_scale = fm.to_bits(rng.uniform(1e-3, 1e-1, TOKENS), "float32")
    weight_scale = fm.to_bits(np.float64(0.7), "float32")
    image = bytearray(WORDS * DATA_BITS // 8)
    image[ADDRESSES[0]:ADDRESSES[0] + acc.nbytes] = acc.tobytes()
    image[ADDRESSES[1]:ADDRESSES[1] + 4 * TOKENS] = act_scale.astype("<u4").tobytes()
    write_image(tmp_path / "image.hex", bytes(image), data_bits=DATA_BITS)
    y = dequantise(acc, act_scale, weight_scale, "float32").astype("<u4")
    image[ADDRESSES[2]:ADDRESSES[2] + y.nbytes] = y.tobytes()
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"tokens": TOKENS, "n": N, "addresses": ADDRESSES,
            "weight_scale": int(weight_scale), "expected": str(tmp_path / "expected.bin")}


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_dequantise_from_ddr_to_ddr(build, tmp_path, stall):
    job = _job(tmp_path)
    verilator.run(build, toplevel=TOPLEVEL, test_module="ternforge.tb.vector_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=Path("image.hex"), stall=stall, latency=6,
                                    seed=7))
