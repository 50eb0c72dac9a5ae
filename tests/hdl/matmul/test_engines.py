# amaranth: UnusedElaboratable=no
"""Every ternary matmul engine: in the Amaranth simulator on small shapes, and its generated
Verilog on Verilator through the cocotb testbench (``tb/tlmm_tb.py``) at eight parameter
points."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from stream_sim import run_simulation
from ternforge.gen.elaborate import MODULE_NAMES
from ternforge.hdl.matmul.engines import ENGINE_CLASSES, matmul_engine
from ternforge.hdl.matmul.parameters import EngineKind, TlmmParameters
from ternforge.sim import verilator
from ternforge.sim.models import tl_code
from ternforge.sim.models.tlmm_stream import StreamGeometry, job_beats, results_from_words


def simulate(parameters, acts, weights, *, stall=0.0, seed=0):
    """Run one job; return (Y, cycles from first activation accepted to last result, inclusive)."""
    engine = matmul_engine(parameters)
    geom = StreamGeometry.of(parameters)
    beats = job_beats(acts, weights, geom)
    expected_results = sum(beats.token_tiles) * geom.row_blocks(len(weights))
    rng = np.random.default_rng(seed)
    words, trace = [], {}

    async def bench(ctx):
        queues = {"acts": list(beats.acts), "weights": list(beats.weights)}
        cycle = 0
        while len(words) < expected_results:
            for name, queue in queues.items():
                port = getattr(engine, name)
                offer = bool(queue) and rng.random() >= stall
                ctx.set(port.valid, offer)
                if offer:
                    ctx.set(port.payload.as_value(), queue[0])
            ctx.set(engine.results.ready, rng.random() >= stall)
            for name, queue in queues.items():
                port = getattr(engine, name)
                if ctx.get(port.valid) and ctx.get(port.ready):
                    queue.pop(0)
                    if name == "acts":
                        trace.setdefault("first", cycle)
            if ctx.get(engine.results.valid) and ctx.get(engine.results.ready):
                words.append(ctx.get(engine.results.payload.as_value()))
                trace["last"] = cycle
            await ctx.tick()
            cycle += 1
            assert cycle < 100 * (len(beats.acts) + len(beats.weights) + 50), "no progress"

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    run_simulation(sim)
    result = results_from_words(words, m=len(acts), n=len(weights), geom=geom,
                                acc_width=parameters.acc_width)
    return result, trace["last"] - trace["first"] + 1


def random_job(rng, m, k, n):
    return (rng.integers(-128, 128, (m, k)).astype(np.int8),
            rng.integers(-1, 2, (n, k)).astype(np.int8))


def exact(acts, weights):
    return acts.astype(np.int64) @ weights.T.astype(np.int64)


def engine_parameters(kind, max_n, **parameters):
    """Parameters of ``kind``, bounded by ``max_n`` where the engine needs it."""
    return TlmmParameters(kind=kind, max_n=max_n if kind is EngineKind.TLMM_LUTRAM else None,
                          **parameters)


@pytest.mark.parametrize("kind", EngineKind)
@pytest.mark.parametrize("group_size,groups,rows,tokens,shape", [
    (3, 2, 2, 4, (3, 20, 5)),
    (2, 3, 3, 2, (5, 13, 4)),
    (4, 1, 4, 1, (2, 9, 8)),
    (3, 2, 2, 4, (1, 6, 2)),
    (2, 2, 1, 3, (4, 9, 30)),
    (2, 1, 17, 1, (2, 5, 20)),
])
def test_engine_matches_golden_model_and_cycle_model(kind, group_size, groups, rows, tokens,
                                                     shape):
    parameters = engine_parameters(kind, 32, group_size=group_size, groups_per_cycle=groups,
                                   rows=rows, max_k=64, max_tokens=tokens)
    acts, weights = random_job(np.random.default_rng(sum(shape)), *shape)
    result, cycles = simulate(parameters, acts, weights)
    np.testing.assert_array_equal(result, exact(acts, weights))
    assert cycles == parameters.cycles(*shape)


@pytest.mark.parametrize("kind", EngineKind)
def test_engine_survives_random_stalls(kind):
    parameters = engine_parameters(kind, 16, group_size=3, groups_per_cycle=2, rows=2,
                                   max_k=64, max_tokens=3)
    acts, weights = random_job(np.random.default_rng(7), 4, 17, 5)
    result, _ = simulate(parameters, acts, weights, stall=0.4, seed=3)
    np.testing.assert_array_equal(result, exact(acts, weights))


@pytest.mark.parametrize("kind", EngineKind)
@pytest.mark.parametrize("weight", [1, -1])
def test_engine_extreme_values(kind, weight):
    k = 64
    parameters = engine_parameters(kind, 8, group_size=3, groups_per_cycle=4, rows=2, max_k=k,
                                   max_tokens=2)
    assert parameters.acc_width == tl_code.accumulator_width(k)
    acts = np.full((2, k), -128, np.int8)
    result, _ = simulate(parameters, acts, np.full((2, k), weight, np.int8))
    assert np.all(result == -128 * k * weight)


@pytest.mark.parametrize("kind", EngineKind)
def test_engine_ports_follow_the_parameters(kind):
    parameters = engine_parameters(kind, 8, group_size=2, groups_per_cycle=3, rows=5, max_k=96)
    engine = ENGINE_CLASSES[kind](parameters)
    assert engine.parameters is parameters
    assert len(engine.weights.payload.slots.as_value()) == parameters.weight_beat_bits
    assert len(engine.acts.payload.data.as_value()) == parameters.acts_per_beat * 8
    assert len(engine.results.payload.as_value()) == parameters.rows * parameters.acc_width


def test_engine_refuses_parameters_of_another_kind():
    from ternforge.hdl.matmul.tlmm import TLMMEngine

    with pytest.raises(ValueError, match=r"^Parameters must be TlmmParameters of kind tlmm, "
                                         r"not TlmmParameters\(kind=<EngineKind.ADDER"):
        TLMMEngine(TlmmParameters(kind="adder"))


@pytest.mark.parametrize("group_size", tl_code.GROUP_SIZES)
def test_table_walk_reaches_every_entry_one_digit_at_a_time(group_size):
    from ternforge.hdl.matmul.lutram import table_walk

    digits = np.zeros(group_size, np.int64)
    seen = []
    for index, digit, step in table_walk(group_size):
        digits[digit] += step
        assert set(digits.tolist()) <= {-1, 0, 1}
        assert int(digits @ 3 ** np.arange(group_size)) == index
        seen.append(index)
    assert sorted(seen) == list(range(1, tl_code.table_entries(group_size)))


# -- the generated Verilog on Verilator

POINTS = [
    TlmmParameters(kind="tlmm", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=4),
    TlmmParameters(kind="tlmm", group_size=2, groups_per_cycle=3, rows=5, max_k=96,
                   max_tokens=1),
    TlmmParameters(kind="tlmm", group_size=4, groups_per_cycle=2, rows=3, max_k=200,
                   max_tokens=3),
    TlmmParameters(kind="tlmm-lutram", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=2, max_n=64),
    TlmmParameters(kind="tlmm-lutram", group_size=2, groups_per_cycle=2, rows=3, max_k=96,
                   max_tokens=1, max_n=30),
    TlmmParameters(kind="tlmm-lutram", group_size=2, groups_per_cycle=1, rows=17, max_k=40,
                   max_tokens=1, max_n=40),
    TlmmParameters(kind="adder", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=4),
    TlmmParameters(kind="adder", group_size=2, groups_per_cycle=3, rows=5, max_k=96,
                   max_tokens=1),
]


def point_id(p):
    return f"{p.kind}-G{p.group_size}P{p.groups_per_cycle}R{p.rows}T{p.max_tokens}"


#: one point of each engine, and every LUT-RAM point (the accelerator's), by default; the rest
#: with ``-m extended``
DEFAULT = {"tlmm-G3P4R4T4", "adder-G3P4R4T4"}


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", [
    pytest.param(point, id=point_id(point), marks=() if point_id(point) in DEFAULT or
                 point.kind is EngineKind.TLMM_LUTRAM else pytest.mark.extended)
    for point in POINTS])
def test_engine_on_verilator(parameters, tmp_path):
    toplevel = MODULE_NAMES[parameters.kind]
    build = verilator.build(verilog.convert(matmul_engine(parameters), name=toplevel),
                            toplevel=toplevel)
    verilator.run(build, toplevel=toplevel, test_module="ternforge.tb.tlmm_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(asdict(parameters))})
