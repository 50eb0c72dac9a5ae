# amaranth: UnusedElaboratable=no
"""The floating-point units' and conversions' parameters: validation, layouts, latencies and
cycle models, and the pipelines the components build against them."""

import pytest
from amaranth.hdl import Fragment, signed
from amaranth.lib import data

from ternforge.hdl.fp.convert import FloatToInt, IntToFloat
from ternforge.hdl.fp.format import FLOAT_FORMATS, float_format
from ternforge.hdl.fp.ops import FloatFma
from ternforge.hdl.fp.parameters import (CONVERSIONS, OPERATIONS, ConversionParameters,
                                         FloatUnitParameters)
from ternforge.hdl.fp.units import FLOAT_UNITS, float_unit


FORMATS = ("float16", "bfloat16", "float32")

#: the documented latencies (float16, bfloat16, float32)
LATENCIES = {"add": (4, 4, 4), "mul": (5, 5, 5), "fma": (7, 7, 7),
             "reciprocal": (6, 6, 7), "rsqrt": (6, 6, 7), "exp": (8, 8, 9),
             "sigmoid": (12, 12, 14), "silu": (13, 13, 15)}


def test_every_unit_has_a_component():
    assert tuple(FLOAT_UNITS) == tuple(OPERATIONS) == tuple(LATENCIES)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", OPERATIONS)
def test_latency(op, fmt):
    parameters = FloatUnitParameters(op, fmt)
    assert parameters.latency == LATENCIES[op][FORMATS.index(fmt)]
    assert parameters.cycles(10) == 10 + parameters.latency


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", OPERATIONS)
def test_elaborated_pipeline_is_as_deep_as_the_latency(op, fmt):
    # elaborate asserts that its pipeline has exactly ``latency`` stages
    Fragment.get(float_unit(FloatUnitParameters(op, fmt, tag_width=1)), None)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op, latency", [("int_to_float", 3), ("float_to_int", 2)])
def test_conversion_latency(op, latency, fmt):
    parameters = ConversionParameters(op, fmt, int_width=8, tag_width=1)
    assert (parameters.latency, parameters.cycles(5)) == (latency, 5 + latency)
    component = {"int_to_float": IntToFloat, "float_to_int": FloatToInt}[op](parameters)
    Fragment.get(component, None)  # elaborate asserts the pipeline's depth


def test_format_is_normalised():
    assert FloatUnitParameters("add", "bfloat16").format == float_format("bfloat16")
    assert FloatUnitParameters("add", float_format("float16")) == \
        FloatUnitParameters("add", "float16")
    assert FloatUnitParameters("mul").format.name == "float32"
    assert FloatUnitParameters("exp", "float16").module_name == "float16_exp"


def test_layouts():
    plain = FloatUnitParameters("fma", "float16")
    assert plain.arity == 3
    assert plain.operands_layout == data.StructLayout({"a": 16, "b": 16, "c": 16})
    assert plain.result_layout == 16
    tagged = FloatUnitParameters("rsqrt", "float32", tag_width=3)
    assert tagged.operands_layout == data.StructLayout({"a": 32, "tag": 3})
    assert tagged.result_layout == data.StructLayout({"value": 32, "tag": 3})
    conversion = ConversionParameters("int_to_float", "bfloat16", int_width=12)
    assert conversion.source_layout == data.StructLayout({"value": signed(12), "tag": 0})
    assert conversion.result_layout == data.StructLayout({"value": 16, "tag": 0})
    assert ConversionParameters("float_to_int", int_width=8).result_layout == \
        data.StructLayout({"value": signed(8), "tag": 0})


def test_component_signature_follows_the_parameters():
    parameters = FloatUnitParameters("fma", "bfloat16", tag_width=2)
    unit = FloatFma(parameters)
    assert unit.parameters is parameters
    assert unit.operands.payload.shape() == parameters.operands_layout
    assert unit.result.payload.shape() == parameters.result_layout


@pytest.mark.parametrize("make, message", [
    (lambda: FloatUnitParameters("div"),
     "Operation must be one of add, mul, fma, reciprocal, rsqrt, exp, sigmoid, silu, "
     "not 'div'"),
    (lambda: FloatUnitParameters("add", "float64"),
     "Float format must be one of float16, bfloat16, float32, not 'float64'"),
    (lambda: FloatUnitParameters("add", tag_width=257),
     "Tag width must be an integer from 0 to 256, not 257"),
    (lambda: FloatUnitParameters("add", tag_width=True),
     "Tag width must be an integer from 0 to 256, not True"),
    (lambda: ConversionParameters("float_to_float"),
     "Conversion must be one of int_to_float, float_to_int, not 'float_to_float'"),
    (lambda: ConversionParameters("int_to_float", "float8"),
     "Float format must be one of float16, bfloat16, float32, not 'float8'"),
    (lambda: ConversionParameters("int_to_float", int_width=1),
     "Integer width must be an integer from 2 to 64, not 1"),
    (lambda: ConversionParameters("float_to_int", tag_width=-1),
     "Tag width must be an integer from 0 to 256, not -1"),
    (lambda: FloatFma(FloatUnitParameters("mul")), "Operation must be 'fma', not 'mul'"),
    (lambda: IntToFloat(ConversionParameters("float_to_int")),
     "Conversion must be 'int_to_float', not 'float_to_int'"),
])
def test_parameters_are_checked(make, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        make()


def test_every_format_is_offered():
    assert tuple(FLOAT_FORMATS) == FORMATS and CONVERSIONS == ("int_to_float", "float_to_int")
