"""The element-wise stages' and unit's parameters: validation, operators, buffers, latencies
and cycle models (known without building any hardware)."""

import pytest

from ternforge.hdl.eltwise.parameters import (DequantiseParameters, EltwiseParameters,
                                              GatedActivationParameters, QuantiseParameters,
                                              ResidualParameters, RmsNormParameters,
                                              RopeParameters)
from ternforge.hdl.fp.format import float_format
from ternforge.hdl.fp.parameters import ConversionParameters, FloatUnitParameters


@pytest.mark.parametrize("parameters, latency, cycles", [
    (DequantiseParameters(), 13, 3 * 33 + 13),
    (ResidualParameters("bfloat16"), 4, 3 * 33 + 4),
    (GatedActivationParameters("float32", "silu"), 20, 3 * 33 + 20),
    (GatedActivationParameters("bfloat16", "silu"), 18, 3 * 33 + 18),
    (GatedActivationParameters(kind="relu2"), 10, 3 * 33 + 10),
    (RopeParameters(), 12, 3 * 33 + 12),
    (RmsNormParameters("float32", 64), 83, 424),
    (RmsNormParameters("bfloat16", 64), 82, 421),
    (QuantiseParameters("float32", 64), 23, 250),
    (EltwiseParameters("float32", 64), 123, 496),
    (EltwiseParameters("bfloat16", 64), 121, 492),
])
def test_latency_and_cycles(parameters, latency, cycles):
    assert (parameters.latency, parameters.cycles(3, 33)) == (latency, cycles)


def test_one_pass_latency_is_the_operators_in_series():
    stage = DequantiseParameters("float16", acc_width=24)
    assert stage.units == {"convert": ConversionParameters("int_to_float", "float16", 24, 1),
                           "by_act": FloatUnitParameters("mul", "float16", 1),
                           "by_weight": FloatUnitParameters("mul", "float16", 1)}
    assert stage.latency == 3 + 5 + 5
    assert stage.cycles(2, 10) == 20 + 13


def test_rmsnorm_lanes_and_phases():
    norm = RmsNormParameters("float32", 64)
    lanes = FloatUnitParameters("fma", "float32").latency
    assert norm.partial_sums == norm.slots == lanes == 7
    assert norm.squares_tag_layout.size == norm.units["squares"].tag_width == 4
    assert norm.scalar_cycles == lanes + lanes * (lanes + 1) + 1 + 7 + 2
    assert norm.pass2_latency == 5 + 5
    assert norm.token_period(20) == 39 + norm.scalar_cycles
    assert norm.cycles(2, 20) == 2 * norm.token_period(20) + norm.pass2_latency
    # four lanes: a beat of four elements a cycle, seven partial sums each, all 28 added in
    # the scalar phase
    wide = RmsNormParameters("float32", 64, lanes=4)
    assert (wide.slots, wide.partial_sums) == (7, 28)
    assert wide.scalar_cycles == 7 + 28 * 8 + 1 + 7 + 2
    assert wide.token_period(20) == 2 * 5 - 1 + wide.scalar_cycles


@pytest.mark.parametrize("make, message", [
    (lambda: RmsNormParameters("float32", 64, lanes=3), "Lanes must be a power of two, not 3"),
    (lambda: QuantiseParameters("float32", 66, lanes=4),
     "Maximum length must be a multiple of the 4 lanes, not 66"),
    (lambda: ResidualParameters(lanes=32), "Lanes must be an integer from 1 to 16, not 32")])
def test_lanes_are_checked(make, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        make()


def test_a_vector_is_whole_beats():
    stage = ResidualParameters(lanes=4)
    assert stage.cycles(2, 20) == 2 * 5 + stage.latency
    with pytest.raises(ValueError, match="^Length must be a multiple of the 4 lanes, not 18$"):
        stage.beats(18)


def test_quantise_phases():
    quant = QuantiseParameters("float32", 64)
    assert (quant.scalar_cycles, quant.pass2_latency) == (1 + 5 + 1 + 7 + 2, 5 + 2)
    assert quant.units["to_int"] == ConversionParameters("float_to_int", "float32", 8, 1)


def test_rope_carries_the_pair_and_angle():
    rope = RopeParameters("float16")
    assert rope.units["x1_sin"].tag_width == rope.carried_layout.size == 3 * 16 + 1
    assert list(rope.input_layout.members) == ["x0", "x1", "cos", "sin", "last"]
    assert rope.latency == 5 + 7


def test_unit_stages_and_facts():
    unit = EltwiseParameters("float32", max_length=64)
    assert list(unit.stages) == ["dequantise", "add_residual", "rmsnorm", "quantise"]
    assert unit.stages["rmsnorm"] == RmsNormParameters("float32", 64)
    assert unit.latency == sum(stage.latency for stage in unit.stages.values())
    assert unit.token_period(20) == 112


def test_buffers_are_sized_from_the_hidden_size():
    assert EltwiseParameters(max_length=2560).buffer_bits == 2 * 2560 * 32
    assert EltwiseParameters("bfloat16", max_length=1536).buffer_bits == 2 * 1536 * 16
    assert QuantiseParameters("float16", 100).buffer_bits == 1600


def test_format_is_normalised():
    assert ResidualParameters("float16").format == float_format("float16")
    assert EltwiseParameters(float_format("bfloat16")) == EltwiseParameters("bfloat16")


@pytest.mark.parametrize("make, message", [
    (lambda: RmsNormParameters(max_length=1),
     r"Maximum length must be an integer from 2 to 65536, not 1"),
    (lambda: QuantiseParameters(format="float64"),
     r"Float format must be one of float16, bfloat16, float32, not 'float64'"),
    (lambda: GatedActivationParameters(kind="gelu"),
     r"Activation must be one of silu, relu2, not 'gelu'"),
    (lambda: DequantiseParameters(acc_width=65),
     r"Accumulator width must be an integer from 2 to 64, not 65"),
    (lambda: EltwiseParameters(max_length=65537),
     r"Maximum length must be an integer from 2 to 65536, not 65537"),
    (lambda: EltwiseParameters(acc_width=1),
     r"Accumulator width must be an integer from 2 to 64, not 1"),
    (lambda: EltwiseParameters(format="float8"),
     r"Float format must be one of float16, bfloat16, float32, not 'float8'"),
])
def test_parameters_are_checked(make, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        make()
