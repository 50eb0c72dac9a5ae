"""The shipped tiny model on the accelerator in Verilator: a prefill of a 9-token prompt and
greedy decode to 16 tokens, the host doing the embedding and the LM head; the tokens and every
final hidden state identical to the golden model's."""

import numpy as np
import pytest

from ternforge.hdl.accelerator.model import preset
from ternforge.hdl.accelerator.parameters import AcceleratorParameters
from ternforge.sim import machine
from ternforge.sim.checkpoint import load_checkpoint, shipped_weights
from ternforge.sim.models.bitnet import Golden, greedy

MEMORY = 1 << 21
CONFIG = preset("tiny")
PARAMETERS = AcceleratorParameters.for_simulation(CONFIG, context=32)
ATTENTION = PARAMETERS.attention
PROMPT, NEW = list(b"ROMEO:\nI "), 16


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.0])
def test_tiny_generates_the_golden_models_text(tmp_path, stall):
    path = shipped_weights("tiny")
    weights = load_checkpoint(path, CONFIG)
    built = machine.build(PARAMETERS, memory_bytes=MEMORY)
    result = machine.generate(built, PARAMETERS, weights, path, PROMPT, NEW, work=tmp_path,
                              memory_bytes=MEMORY, stall=stall)
    tokens, states = greedy(Golden(weights, cols=ATTENTION.engine.cols), PROMPT, NEW)
    assert result["tokens"] == tokens
    assert [bytes.fromhex(h) for h in result["hidden"]] == \
        [np.asarray(s, "<u4").tobytes() for s in states]
    assert len(result["decode_cycles"]) == NEW - 1 and result["prefill_cycles"] > 0
