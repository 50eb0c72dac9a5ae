"""The ternary matmul engines' parameters: their rules and messages, their facts."""

import pytest

from ternforge.hdl.matmul.parameters import (LIMITS, EngineKind, LoopOrder, TlmmParameters,
                                              WeightFormat)
from ternforge.sim.models import tl_code
from ternforge.sim.models.tlmm_stream import StreamGeometry


def test_kinds_say_their_weight_format_and_loop_order():
    assert [kind.value for kind in EngineKind] == ["tlmm", "tlmm-lutram", "adder"]
    assert EngineKind.TLMM.weight_format is EngineKind.TLMM_LUTRAM.weight_format is \
        WeightFormat.TL
    assert EngineKind.ADDER.weight_format is WeightFormat.TERNARY
    assert EngineKind.TLMM_LUTRAM.order is LoopOrder.TABLE
    assert EngineKind.TLMM.order is EngineKind.ADDER.order is LoopOrder.WEIGHT


def test_a_kind_may_be_given_by_name():
    assert TlmmParameters(kind="adder") == TlmmParameters(kind=EngineKind.ADDER)
    assert TlmmParameters(kind="adder").kind is EngineKind.ADDER


@pytest.mark.parametrize("kind", EngineKind)
@pytest.mark.parametrize("name,value,message", [
    ("kind", "fast", r"^Engine must be one of tlmm, tlmm-lutram, adder, not 'fast'$"),
    ("group_size", 1, r"^Group size must be an integer from 2 to 4, not 1$"),
    ("groups_per_cycle", 2.0, r"^Groups per cycle must be an integer from 1 to 64, not 2.0$"),
    ("rows", 0, r"^Rows must be an integer from 1 to 256, not 0$"),
    ("act_width", 17, r"^Activation width must be an integer from 2 to 16, not 17$"),
    ("max_k", 0, r"^Maximum K must be an integer from 1 to 1048576, not 0$"),
    ("max_tokens", 0, r"^Maximum tokens must be an integer from 1 to 64, not 0$"),
    ("max_n", -4, r"^Maximum N must be an integer from 1 to 131072, not -4$"),
])
def test_parameter_errors(kind, name, value, message):
    with pytest.raises(ValueError, match=message):
        TlmmParameters(**{"kind": kind, "max_n": 64, name: value})


def test_the_table_stationary_engine_needs_max_n():
    with pytest.raises(ValueError, match=r"^Maximum N must be an integer from 1 to 131072, "
                                         r"not None$"):
        TlmmParameters(kind="tlmm-lutram")
    TlmmParameters(kind="tlmm")  # the weight-stationary engines need no bound


@pytest.mark.parametrize("group_size", tl_code.GROUP_SIZES)
def test_code_widths_follow_the_golden_model(group_size):
    parameters = TlmmParameters(group_size=group_size)
    assert parameters.table_entries == tl_code.table_entries(group_size)
    assert parameters.index_bits == tl_code.index_bits(group_size)
    assert parameters.slot_bits == tl_code.code_bits(group_size)
    assert TlmmParameters(kind="adder", group_size=group_size).slot_bits == 2 * group_size


@pytest.mark.parametrize("max_k", [1, 64, 8192, 100_000])
def test_accumulators_hold_the_longest_reduction(max_k):
    assert TlmmParameters(max_k=max_k).acc_width == tl_code.accumulator_width(max_k)


def test_facts_of_the_default_engines():
    tlmm = TlmmParameters()
    lutram = TlmmParameters(kind="tlmm-lutram", max_tokens=1, max_n=8192)
    adder = TlmmParameters(kind="adder")
    assert tlmm.acts_per_beat == 24 and tlmm.macs_per_cycle == 384
    assert tlmm.weight_beat_bits == lutram.weight_beat_bits == 640
    assert adder.weight_beat_bits == 16 * 8 * 6
    assert (tlmm.operands_per_row, tlmm.tree_levels, tlmm.latency) == (9, 4, 6)
    assert (adder.operands_per_row, adder.tree_levels, adder.latency) == (25, 5, 7)
    assert (lutram.front_stages, lutram.latency) == (0, 5)
    assert tlmm.accumulator_depth == 8 and lutram.accumulator_depth == 8192 // 16
    assert tlmm.table_width == 10 and tlmm.token_bits == 3 and lutram.token_bits == 0


def test_cycle_models():
    tlmm = TlmmParameters(group_size=3, groups_per_cycle=2, rows=2, max_tokens=4)
    assert tlmm.cycles(3, 20, 5) == 3 * 4 * 3 + tlmm.latency
    lutram = TlmmParameters(kind="tlmm-lutram", group_size=2, groups_per_cycle=1, rows=4,
                            max_tokens=1, max_n=64)
    # one token, one chunk: write the table (entries - 1 cycles), then read every row block
    assert lutram.cycles(1, 2, 4 * 8) == 4 + 1 + 8 - 1 + lutram.latency + 1
    assert lutram.token_tiles(5) == [1] * 5


@pytest.mark.parametrize("kind,shape,message", [
    ("tlmm-lutram", (1, 8, 65), r"^N must be at most max_n = 64 \(raise --max-n\), not 65$"),
    ("tlmm", (1, 257, 4),
     r"^K must be at most the accumulators' max_k = 256 \(raise --max-k\), not 257$"),
    ("adder", (0, 8, 4), r"^M must be at least 1, not 0$"),
])
def test_jobs_beyond_the_engine_are_refused(kind, shape, message):
    parameters = TlmmParameters(kind=kind, max_k=256, max_n=64 if kind == "tlmm-lutram"
                                else None)
    with pytest.raises(ValueError, match=message):
        parameters.check_job(*shape)


def test_stream_geometry_follows_the_engine():
    lutram = StreamGeometry.of(TlmmParameters(kind="tlmm-lutram", max_tokens=2, max_n=64))
    assert (lutram.max_tokens, lutram.order, lutram.weight_format) == (
        2, LoopOrder.TABLE, WeightFormat.TL)
    adder = StreamGeometry.of(TlmmParameters(kind="adder", act_width=6))
    assert (adder.order, adder.weight_format, adder.act_width) == (
        LoopOrder.WEIGHT, WeightFormat.TERNARY, 6)
    assert adder.slot_bits == TlmmParameters(kind="adder").slot_bits


@pytest.mark.parametrize("name, value, message", [
    ("groups_per_cycle", 1_000_000, "Groups per cycle must be an integer from 1 to 64, "
                                    "not 1000000"),
    ("rows", 100_000, "Rows must be an integer from 1 to 256, not 100000"),
    ("max_tokens", 65, "Maximum tokens must be an integer from 1 to 64, not 65"),
    ("max_k", 1 << 21, "Maximum K must be an integer from 1 to 1048576, not 2097152"),
    ("max_n", 1_000_000_000, "Maximum N must be an integer from 1 to 131072, not 1000000000"),
])
def test_sizes_no_board_could_hold_are_refused(name, value, message):
    """Found as hangs and memory errors: elaborating such an engine never finishes."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        TlmmParameters(kind="tlmm-lutram", **{"max_n": 64, name: value})
    assert LIMITS[name] < value
