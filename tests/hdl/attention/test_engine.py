# amaranth: UnusedElaboratable=no
"""The attention engine alone in the Amaranth simulator: its outputs are the golden model's
bit for bit and, without stalls, its cycles the cycle model's, at small shapes that take each
path of the score phase (a round of the accumulators that waits a cycle, results forwarded
from the fmas, results read back), of the maximum's tree, and of the accumulation (with
and without its wait after each key)."""

import numpy as np
import pytest

from stream_sim import run_streams
from ternforge.hdl.attention.engine import AttentionEngine
from ternforge.hdl.attention.parameters import AttentionParameters
from ternforge.sim.models import attention as am
from ternforge.sim.models import fp as fm

# (head_dim, rows, cols, lanes), the job's rows, keys and its rows' positions, and what the
# score phase does: its accumulators taken in turn (score_slots) against the fma's latency L
SHAPES = [
    # a tile of 7 columns, one row: 7 = L accumulators, each round waits a cycle
    ((8, 1, 7, 1), dict(rows=1, keys=11, position=10, row_step=0), "bubble"),
    # one column group, 7 score rows for 3 causal rows: 7 accumulators
    ((16, 7, 2, 2), dict(rows=3, keys=5, position=2, row_step=1), "bubble"),
    # 8 = L + 1 accumulators: a result goes straight from the fma to its next operation
    ((8, 2, 4, 1), dict(rows=2, keys=10, position=9, row_step=0), "forward"),
    # four lanes (a tree of two levels), 8 accumulators
    ((16, 4, 8, 4), dict(rows=2, keys=9, position=7, row_step=1), "forward"),
    # 12 accumulators: results read back from the score registers
    ((16, 4, 8, 2), dict(rows=3, keys=11, position=8, row_step=1), "read back"),
    # E = 4: one row's key is 5 operations, so the accumulation waits 4 cycles after each
    ((16, 2, 16, 4), dict(rows=1, keys=20, position=19, row_step=0), "forward, pausing"),
]


def _beats(elements, lanes):
    """Rows of elements as beats of ``lanes`` elements (the first least significant)."""
    flat = elements.reshape(-1, lanes).astype(object)
    return [sum(int(x) << (32 * lane) for lane, x in enumerate(beat)) for beat in flat]


def _run(parameters, job, q, k, v, stall=0.0, seed=0):
    lanes, e = parameters.lanes, parameters.elements_per_lane
    out, cycles = run_streams(AttentionEngine(parameters),
                              {"job": [job], "query": _beats(q, lanes),
                               "key": _beats(k, lanes), "value": _beats(v, lanes)},
                              {"output": job["rows"] * e}, stall=stall, seed=seed)
    words = np.array([[int(b.value) >> (32 * lane) & 0xFFFF_FFFF for lane in range(lanes)]
                      for b in out["output"]], dtype=np.uint32)
    assert [int(b.last) for b in out["output"]] == [0] * (len(words) - 1) + [1]
    return words.reshape(job["rows"], -1), cycles["output"][-1] + 1


def _cases():
    """Each shape without stalls and with (the pausing shape without only: its wait changes
    no handshake); the larger shapes' stalled runs, and the pausing shape (which the
    attention unit's Verilator test also runs), are extended."""
    for shape, job, path in SHAPES:
        for stall in (0.0, 0.4) if "pausing" not in path else (0.0,):
            extended = "pausing" in path or (stall and shape[1:3] == (4, 8))
            yield pytest.param(shape, job, path, stall, id=f"{stall}-{shape}-{path}",
                               marks=[pytest.mark.extended] if extended else [])


@pytest.mark.parametrize("shape, job, path, stall", list(_cases()))
def test_engine_is_the_golden_model_in_the_model_cycles(shape, job, path, stall):
    d, r, c, lanes = shape
    parameters = AttentionParameters(head_dim=d, rows=r, cols=c, lanes=lanes, max_keys=64)
    slots, period = parameters.score_slots(job["rows"]), parameters.score_period(job["rows"])
    assert path.split(", ")[0] == ("bubble" if period > slots else "forward"
                                   if period == parameters.fma_latency + 1 else "read back")
    assert ("pausing" in path) == (parameters.accumulate_pause(job["rows"]) > 0)
    rng = np.random.default_rng(sum(shape) + job["keys"])
    q, k, v = (fm.to_bits(rng.standard_normal((n, d)) * 2, "float32")
               for n in (job["rows"], job["keys"], job["keys"]))
    positions = job["position"] + job["row_step"] * np.arange(job["rows"])
    expected = am.attention(q, k, v, positions, rows=r, cols=c)
    o, cycles = _run(parameters, job, q, k, v, stall=stall, seed=int(stall * 10))
    np.testing.assert_array_equal(o, expected)
    if not stall:  # the streams' first beats wait from the job's cycle
        assert cycles == parameters.cycles(job["rows"], job["keys"], paired=True)


def test_masked_and_zero_scores():
    """Rows that see one key of a tile (every other score masked), scores that are all zero
    (the maximum of equal values) and a negative infinity among the keys."""
    parameters = AttentionParameters(head_dim=16, rows=4, cols=8, lanes=2, max_keys=64)
    job = dict(rows=4, keys=12, position=8, row_step=1)
    rng = np.random.default_rng(5)
    q = fm.to_bits(rng.standard_normal((4, 16)), "float32")
    q[1] = 0
    k = fm.to_bits(rng.standard_normal((12, 16)), "float32")
    k[3, :] = fm.to_bits(np.full(16, -np.inf), "float32")
    v = fm.to_bits(rng.standard_normal((12, 16)), "float32")
    expected = am.attention(q, k, v, 8 + np.arange(4), rows=4, cols=8)
    o, _ = _run(parameters, job, q, k, v)
    np.testing.assert_array_equal(o, expected)
