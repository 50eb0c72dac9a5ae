"""The attention units' parameters: their rules and messages, layouts, buffers, the choice
of a unit for a problem, and the cycle models (without building any hardware)."""

import pytest

from ternforge.hdl.attention.parameters import (MAX_COLS, MAX_ROWS, AttentionParameters,
                                                AttentionUnitParameters, Phase, lanes_fit)
from ternforge.hdl.fp.parameters import FloatUnitParameters


@pytest.mark.parametrize("parameters, message", [
    (dict(head_dim=4), "Head dimension must be an integer from 8 to 256, not 4"),
    (dict(rows=2, cols=3), r"Rows times columns per lane must be at least the fma latency "
                           r"\(7\), not 6"),
    (dict(head_dim=32, lanes=4, rows=1, cols=16),
     r"Rows times columns per lane must be at least the fma latency \(7\), not 4"),
    (dict(head_dim=16, lanes=3), r"Lanes must be a power of two dividing the head dimension "
                                 r"\(16\), not 3"),
    (dict(head_dim=24, lanes=16), r"Lanes must be a power of two dividing the head dimension "
                                  r"\(24\), not 16"),
    (dict(head_dim=16, lanes=0), "Lanes must be an integer from 1 to 16, not 0"),
    (dict(head_dim=32, lanes=4, cols=6), "Columns must be a multiple of the 4 lanes, not 6"),
    (dict(rows=0), "Rows must be an integer from 1 to 64, not 0"),
    (dict(rows=65), "Rows must be an integer from 1 to 64, not 65"),
    (dict(cols=129), "Columns must be an integer from 1 to 128, not 129"),
    (dict(max_keys=0), "Maximum keys must be an integer from 1 to 1048576, not 0"),
    (dict(format="float8"), "Float format must be one of float16, bfloat16, float32, not "
                            "'float8'"),
])
def test_engine_parameters_are_checked(parameters, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        AttentionParameters(**parameters)


@pytest.mark.parametrize("parameters, message", [
    (dict(addr_bits=12), "Address bits must be an integer from 13 to 64, not 12"),
    (dict(data_bits=48), "Data bits must be a power of two from 32 to 1024, not 48"),
    (dict(engine=AttentionParameters(head_dim=8), data_bits=1024),
     r"Data bits must divide a cache row's 512 bits into whole beats of 32, not 1024"),
    (dict(engine=AttentionParameters(head_dim=16, lanes=2), data_bits=32),
     r"Data bits must divide a cache row's 1024 bits into whole beats of 64, not 32"),
    (dict(max_heads=0), "Maximum heads must be an integer from 1 to 1024, not 0"),
])
def test_unit_parameters_are_checked(parameters, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        AttentionUnitParameters(**parameters)


def test_phase_by_name():
    assert Phase.of("decode") is Phase.DECODE and Phase.of(Phase.PREFILL) is Phase.PREFILL
    with pytest.raises(ValueError, match=r"^Phase must be prefill or decode, not 'train'$"):
        Phase.of("train")


def test_one_command_layout_for_the_unit_and_the_sequencer():
    unit = AttentionUnitParameters(engine=AttentionParameters(rows=4, max_keys=64),
                                   addr_bits=20)
    layout = unit.command_layout
    assert list(layout.members) == ["rows", "keys", "position", "row_step", "base",
                                    "append"]
    assert layout["rows"].shape == range(1, 5) and layout["base"].shape == 20
    job = unit.engine.job_layout
    assert all(layout[name].shape == job[name].shape for name in job.members)
    assert unit.start_layout["tokens"].shape == range(1, 65)


def test_limits_are_the_layouts():
    """The most rows and columns are the tags' field widths (in the engine)."""
    assert (MAX_ROWS, MAX_COLS) == (64, 128)
    assert AttentionParameters(rows=MAX_ROWS, cols=MAX_COLS).job_layout["rows"].shape == \
        range(1, MAX_ROWS + 1)


def test_buffers_and_cache_rows():
    engine = AttentionParameters(head_dim=16, rows=4, cols=8, lanes=2)
    assert engine.buffer_elements == {"q": 64, "k": 256, "v": 256, "scores": 32,
                                      "accumulators": 4 * (16 + 2)}
    unit = AttentionUnitParameters(engine=engine, data_bits=512)
    assert (unit.row_bits, unit.row_words, unit.row_bytes, unit.row_beats) == (1024, 2, 128,
                                                                                16)
    assert unit.region(3) == 3 * 4096 * 128
    commands = [{"keys": 5, "append": 0}, {"keys": 9, "append": 1}]
    assert unit.bytes_read(commands) == (5 + 8) * 128


def test_unit_for_a_problem():
    """Decode tiles are the query heads of a KV head, widened until the fmas never wait;
    the port is the widest a cache row fills; lanes the most that D and the port allow."""
    decode = AttentionUnitParameters.for_problem("decode", 96, 1000, 1)
    assert (decode.engine.rows, decode.engine.cols, decode.engine.lanes) == (1, 56, 8)
    assert (decode.engine.max_keys, decode.data_bits) == (1024, 512)
    prefill = AttentionUnitParameters.for_problem(Phase.PREFILL, 96, 2048, 1, lanes=4)
    assert (prefill.engine.rows, prefill.engine.cols, prefill.engine.lanes) == (8, 8, 4)
    narrow = AttentionUnitParameters.for_problem("prefill", 8, 10, 1, "bfloat16")
    assert (narrow.data_bits, narrow.engine.lanes) == (256, 1)
    with pytest.raises(ValueError, match=r"^Lanes must be a power of two dividing the head "
                                         r"dimension \(8\), not 3$"):
        AttentionUnitParameters.for_problem("prefill", 8, 10, 1, lanes=3)


def test_lanes_fit():
    assert lanes_fit(8, 96, 7) and not lanes_fit(16, 96, 7) and not lanes_fit(3, 96, 7)


def test_more_lanes_than_fit_pause_the_accumulation_of_few_rows():
    """16 lanes of D = 96 (E = 6): a row's key takes E + 1 = 7 operations, 2 fewer than
    an accumulator's reuse needs (L + 2 = 9); two rows need none."""
    engine = AttentionParameters(head_dim=96, rows=2, cols=128, lanes=16)
    assert [engine.accumulate_pause(r) for r in (1, 2)] == [2, 0]
    assert AttentionParameters(head_dim=96, lanes=8).accumulate_pause(1) == 0


def test_engine_cycle_model_adds_its_phases():
    engine = AttentionParameters(head_dim=16, rows=4, cols=4, max_keys=64)
    # one tile: its load (2 x 4 x 16 beats through the streams' registers from cycle 2, and
    # a cycle for the tile to be in) outlasts the query load (4 x 16 + 7 + 3 cycles), then
    # scores, maximum, exponentials, scale, accumulation, the reciprocal and the output
    compute = (16 * 16 + 7 + 3) + (16 + 3) + (4 * 5 + 4 + 9 + 4) + (4 * 17 + 7 + 3) \
        + (4 * 4 * 17 + 7 + 3)
    reciprocal = FloatUnitParameters("reciprocal", "float32").latency
    assert engine.cycles(4, 4) == (2 + 2 * 4 * 16 + 1) + compute + (4 + reciprocal + 3) \
        + (4 * 16 + 7 + 4)
    # a second tile loads while the first is computed: it adds its computation only
    assert engine.cycles(4, 8) - engine.cycles(4, 4) == compute
    # paired (a key beat and a value beat a cycle), the tile's 4 x 16 pairs from cycle 2 are
    # in before the queries: the computation starts after them
    assert engine.cycles(4, 4, paired=True) == engine.cycles(4, 4) - (2 + 2 * 4 * 16 + 1) \
        + (4 * 16 + 7 + 3)


def test_lanes_divide_the_work_not_the_waiting():
    engine = AttentionParameters(head_dim=16, rows=4, cols=4, max_keys=64, lanes=2)
    # a second tile: scores over two column groups, a maximum over two groups a row (a tree
    # of one level), accumulators of E + 1 = 9 elements a lane
    assert engine.cycles(4, 8) - engine.cycles(4, 4) == (16 * 4 * 2 + 7 + 3) \
        + (4 * 2 + 1 + 3) + (4 * 5 + 4 + 9 + 4) + (4 * 9 + 7 + 3) + (4 * 4 * 9 + 7 + 3)
    # the first tile's 2 x 4 x 8 beats from cycle 2 outlast the query load (4 x 8 + 7 + 3):
    # a first key later than cycle 1 delays the job as much
    assert engine.cycles(4, 4, first_key=6) == engine.cycles(4, 4) + 5
    assert engine.cycles(4, 4, first_key=1) == engine.cycles(4, 4)


def test_score_accumulators_are_reused_no_sooner_than_the_fma_latency_and_a_cycle():
    """Only L score accumulators (a tile of 7 columns, one row) make every round of them but
    the first wait a cycle."""
    exact = AttentionParameters(head_dim=8, rows=1, cols=7, max_keys=64)
    assert (exact.score_slots(1), exact.score_period(1)) == (7, 8)
    assert AttentionParameters(head_dim=8, rows=1, cols=8).score_period(1) == 8
    assert AttentionParameters(head_dim=16, rows=8, cols=8).score_period(8) == 64
    # a second tile (loaded while the first is computed) adds its computation
    compute = (8 * 7 + (8 - 1) + 7 + 3) + (7 + 3) + (1 * 8 + 4 + 9 + 4) + (1 * 9 + 7 + 3) \
        + (7 * 1 * 9 + 7 + 3)
    assert exact.cycles(1, 14, paired=True) - exact.cycles(1, 7, paired=True) == compute


@pytest.mark.parametrize("lanes, data_bits, paired", [
    (1, 512, True),   # 16 beats a word, a key a word
    (8, 512, True),   # two beats a word, a key four words
    (8, 256, False),  # a beat a word
    (2, 128, True),
    (4, 128, False)])
def test_a_unit_pairs_its_streams_when_a_word_holds_two_beats(lanes, data_bits, paired):
    unit = AttentionUnitParameters(engine=AttentionParameters(head_dim=64, rows=2, cols=32,
                                                              lanes=lanes),
                                   data_bits=data_bits)
    assert unit.paired == paired
    assert unit.key_cycles == (unit.row_words // 2 + 2 if paired else 1)


def test_unit_cycle_model_is_the_engine_jobs_and_the_handovers():
    unit = AttentionUnitParameters(engine=AttentionParameters(head_dim=16, rows=4, cols=4,
                                                              max_keys=64))
    # a row of 2 x 16 float32 elements is two 512-bit words, a word 16 one-lane beats: the
    # key and value stream paired, the first value after the key's word, its FIFO and the
    # splitter
    assert unit.paired and unit.key_cycles == 1 + 2
    first_key = unit.first_key_cycle(20)
    assert first_key == 2 + 20 + 3  # the reader's address two cycles after the job
    commands = [{"rows": 4, "keys": 4, "append": 0}, {"rows": 1, "keys": 3, "append": 1}]
    engine = unit.engine
    expected = (2 + engine.cycles(4, 4, first_key=first_key, paired=True)) + \
        (2 + engine.cycles(1, 3, first_key=first_key, paired=True)) - 1
    assert unit.modeled(commands)
    assert unit.cycles(commands, read_latency=20) == expected
    assert unit.cycles(commands, read_latency=20, sequenced=True) == expected + 1
    # a decode against an empty cache (its only key the appended row) is not modeled
    empty = [{"rows": 1, "keys": 1, "append": 1}]
    assert not unit.modeled(empty)
    with pytest.raises(ValueError, match="^Keys of the attention unit's cycle model must be "
                                         "more than the appended row, not 1$"):
        unit.cycles(empty, read_latency=20)
