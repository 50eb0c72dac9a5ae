# amaranth: UnusedElaboratable=no
"""The attention sequencer in the Amaranth simulator: its commands are the loop order's."""

import numpy as np
import pytest

from stream_sim import run_streams
from ternforge.hdl.attention.parameters import AttentionParameters, AttentionUnitParameters
from ternforge.hdl.attention.sequencer import AttentionSequencer
from ternforge.sim.jobs.attention import AttentionJob

UNIT = AttentionUnitParameters(engine=AttentionParameters(head_dim=8, rows=4, cols=4,
                                                          max_keys=64), data_bits=512)
JOB = AttentionJob(UNIT)


@pytest.mark.parametrize("phase, heads, kv_heads, tokens", [
    ("prefill", 4, 2, 13), ("prefill", 1, 1, 1), ("prefill", 3, 3, 8), ("decode", 8, 2, 37),
    ("decode", 4, 4, 1)])
def test_sequencer_emits_the_loop_order(phase, heads, kv_heads, tokens):
    decode = phase == "decode"
    q = np.zeros((heads, 1 if decode else tokens, 8), np.uint32)
    k = np.zeros((kv_heads, tokens, 8), np.uint32)
    expected = JOB.commands(q, k, k, phase)[0]
    sequencer = AttentionSequencer(UNIT)
    start = JOB.start(q, k, phase)
    out, _ = run_streams(sequencer, {"start": [start, start]},
                         {"commands": 2 * len(expected)}, stall=0.3)
    names = ("rows", "keys", "position", "row_step", "base", "append")
    got = [{name: int(getattr(c, name)) for name in names} for c in out["commands"]]
    assert got == expected + expected  # and again for a second start


def test_sequencer_drives_the_unit():
    """Its command stream connects to the unit's as it is (one layout for both)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    from ternforge.hdl.attention.unit import CachedAttention
    m = Module()
    m.submodules.sequencer = sequencer = AttentionSequencer(UNIT)
    m.submodules.unit = unit = CachedAttention(UNIT)
    wiring.connect(m, sequencer.commands, unit.command)


def test_components_take_their_parameter_object():
    with pytest.raises(TypeError, match=r"^Parameters must be AttentionUnitParameters, "
                                        r"not 8$"):
        AttentionSequencer(8)
