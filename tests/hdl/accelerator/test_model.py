"""The shipped tiny model on the accelerator in Verilator: a prefill of a 9-token prompt and
greedy decode to 16 tokens, the host doing the embedding and the LM head; the tokens and every
final hidden state identical to the golden model's, and without stalls the prefill's and each
decode step's cycles those the accelerator's cycle model predicts. On one DDR port, and on a
bus striped over two DDR ports of half its width (each port with its own random stalls)."""

import pytest

from ternforge.tb.controller_tb import ACCELERATOR, MEMORY_BYTES, STRIPED, build
from ternforge.hdl.accelerator.model import preset
from ternforge.sim import machine
from ternforge.sim.checkpoint import load_checkpoint, shipped_weights
from ternforge.sim.cocotb.check import check_generation
from ternforge.sim.models.bitnet import Golden, greedy

MEMORY = MEMORY_BYTES
CONFIG = preset("tiny")
PROMPT, NEW = list(b"ROMEO:\nI "), 16


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", [ACCELERATOR, STRIPED], ids=["one-port", "two-ports"])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_tiny_generates_the_golden_models_text(tmp_path, parameters, stall):
    path = shipped_weights("tiny")
    weights = load_checkpoint(path, CONFIG)
    built = build(parameters)  # the machine tests' build, or the striped one
    result = machine.generate(built, parameters, weights, path, PROMPT, NEW, work=tmp_path,
                              memory_bytes=MEMORY, stall=stall)
    cols = parameters.attention.engine.cols
    golden = Golden(weights, cols=cols, vector_lanes=parameters.vector.lanes)
    tokens, states = greedy(golden, PROMPT, NEW)
    assert len(result["decode_cycles"]) == NEW - 1 and result["prefill_cycles"] > 0
    check_generation(result, tokens, states, stalled=bool(stall))  # (ternforge test's checker)
    # every unit works in a prefill, all but the copy in a decode step; one at a time
    steps = [(result["prefill_cycles"], result["prefill_unit_cycles"])] + list(zip(
        result["decode_cycles"], result["decode_unit_cycles"]))
    for index, (cycles, units) in enumerate(steps):
        assert sum(units.values()) < cycles
        assert [name for name, busy in units.items() if busy] == \
            ["copy", "vector", "gemv", "rope", "attention"][index > 0:]
