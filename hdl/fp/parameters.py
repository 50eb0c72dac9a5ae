"""Parameters of the floating-point units and conversions: their validation, the layouts of
their streams and their latencies, known without building any hardware.

A unit's latency is the count of its pipeline's register stages, stage by stage as
:mod:`~ternforge.hdl.fp.ops`, :mod:`~ternforge.hdl.fp.functions` and
:mod:`~ternforge.hdl.fp.convert` describe them; every component checks, when it is
elaborated, that the pipeline it builds is exactly this deep.
"""

import math
from dataclasses import dataclass

from amaranth.hdl import signed
from amaranth.lib import data

from .format import FloatFormat, float_format
from ..common.checks import check_int

__all__ = ["OPERATIONS", "CONVERSIONS", "ROUND_STAGES", "FunctionParameters",
           "function_parameters", "FloatUnitParameters", "ConversionParameters"]

#: every floating-point unit by name, with its number of operands
OPERATIONS = {"add": 2, "mul": 2, "fma": 3, "reciprocal": 1, "rsqrt": 1, "exp": 1,
              "sigmoid": 1, "silu": 1}

#: every conversion by name
CONVERSIONS = ("int_to_float", "float_to_int")

#: the stages of :func:`~ternforge.hdl.fp.datapath.normalise_round`
ROUND_STAGES = 3


@dataclass(frozen=True)
class FunctionParameters:
    """Fixed-point widths and table shapes of the non-linear functions in one format (see
    :mod:`~ternforge.hdl.fp.functions`).

    Members
    -------
    fraction : int
        ``F``: fraction bits of polynomial outputs.
    z_fraction : int
        ``Fz``: fraction bits of the exponential's reduced argument.
    saturation : int
        ``E``: ``|x| >= 2**E`` saturates the exponential, sigmoid and SiLU.
    log2e_fraction : int
        ``FL``: fraction bits of ``log2e``.
    log2e : int
        ``round(log2(e) * 2**FL)``.
    reciprocal, rsqrt, exp2, sigmoid_reciprocal : (int, int)
        ``(index bits, degree)`` of each table.
    """

    fraction: int
    z_fraction: int
    saturation: int
    log2e_fraction: int
    log2e: int
    reciprocal: tuple
    rsqrt: tuple
    exp2: tuple
    sigmoid_reciprocal: tuple


def function_parameters(fmt) -> FunctionParameters:
    """The :class:`FunctionParameters` of format ``fmt``."""
    fmt = float_format(fmt)
    p = fmt.precision
    saturation = 1
    while 2 ** saturation * math.log2(math.e) <= fmt.bias + p + 1:
        saturation += 1
    z_fraction = p + 4
    log2e_fraction = z_fraction + saturation + 2
    tables = {"float16": dict(reciprocal=(6, 1), rsqrt=(6, 1), exp2=(6, 1),
                              sigmoid_reciprocal=(6, 1)),
              "bfloat16": dict(reciprocal=(5, 1), rsqrt=(5, 1), exp2=(5, 1),
                               sigmoid_reciprocal=(5, 1)),
              "float32": dict(reciprocal=(8, 2), rsqrt=(8, 2), exp2=(7, 2),
                              sigmoid_reciprocal=(8, 2))}[fmt.name]
    return FunctionParameters(fraction=p + 6, z_fraction=z_fraction, saturation=saturation,
                              log2e_fraction=log2e_fraction,
                              log2e=round(math.log2(math.e) * 2 ** log2e_fraction), **tables)


def _check(parameters, what: str, names) -> None:
    """Refuse an ``op`` of ``parameters`` not in ``names`` (``what`` it names); hold its
    format as a :class:`FloatFormat`."""
    if parameters.op not in names:
        raise ValueError(f"{what} must be one of {', '.join(names)}, not {parameters.op!r}")
    object.__setattr__(parameters, "format", float_format(parameters.format))


def _polynomial_stages(table) -> int:
    """The stages of a polynomial of ``table``'s ``(index bits, degree)``: the coefficient
    read, then one per Horner step."""
    return 1 + table[1]


@dataclass(frozen=True)
class FloatUnitParameters:
    """One pipelined floating-point unit: an operator or a non-linear function.

    Parameters
    ----------
    op : str
        One of :data:`OPERATIONS`: ``"add"``, ``"mul"``, ``"fma"``, ``"reciprocal"``,
        ``"rsqrt"``, ``"exp"``, ``"sigmoid"`` or ``"silu"``.
    format : str or FloatFormat
        ``"float16"``, ``"bfloat16"`` or ``"float32"`` (held as a :class:`FloatFormat`).
    tag_width : int
        Bits of a tag (such as a ``last`` flag) that travels with each operation; 0 for none.
    """

    op: str
    format: FloatFormat = "float32"
    tag_width: int = 0

    def __post_init__(self):
        _check(self, "Operation", OPERATIONS)
        check_int("Tag width", self.tag_width, 0, 256)

    @property
    def arity(self) -> int:
        """Operands of one operation (``a``, ``b``, ``c`` in that order)."""
        return OPERATIONS[self.op]

    @property
    def operands_layout(self) -> data.StructLayout:
        """The payload of the ``operands`` stream: ``a``, ``b`` (and ``c``), ``width`` bits
        each, and ``tag`` when ``tag_width``."""
        fields = {name: self.format.width for name in "abc"[:self.arity]}
        if self.tag_width:
            fields["tag"] = self.tag_width
        return data.StructLayout(fields)

    @property
    def result_layout(self):
        """The payload of the ``result`` stream: the result's bit pattern (``width`` bits);
        with a tag, a struct of ``value`` and ``tag``."""
        if not self.tag_width:
            return self.format.width
        return data.StructLayout({"value": self.format.width, "tag": self.tag_width})

    @property
    def module_name(self) -> str:
        """The unit's Verilog module name (e.g. ``float16_add``)."""
        return f"{self.format.name}_{self.op}"

    @property
    def latency(self) -> int:
        """Cycles from accepting operands to their result being valid."""
        fixed = function_parameters(self.format)
        exp = 3 + _polynomial_stages(fixed.exp2)  # argument, product, shift; 2**f
        sigmoid = exp + 1 + _polynomial_stages(fixed.sigmoid_reciprocal) + 1  # 1 + q; select
        stages = {"add": 1, "mul": 2, "fma": 4,
                  "reciprocal": 1 + _polynomial_stages(fixed.reciprocal),
                  "rsqrt": 1 + _polynomial_stages(fixed.rsqrt),
                  "exp": exp, "sigmoid": sigmoid, "silu": sigmoid + 1}[self.op]
        return stages + ROUND_STAGES

    def cycles(self, count: int) -> int:
        """Cycles of ``count`` operations with no stalls, from the first beat accepted to the
        last result accepted, inclusive."""
        return count + self.latency


@dataclass(frozen=True)
class ConversionParameters:
    """One pipelined conversion between two's complement integers and floating point.

    Parameters
    ----------
    op : str
        ``"int_to_float"`` (round to nearest, ties to even) or ``"float_to_int"`` (round to
        nearest, ties to even, saturating; NaN to 0).
    format : str or FloatFormat
        The floating-point side's format (held as a :class:`FloatFormat`).
    int_width : int
        Bits of the two's complement integer side (2 to 64).
    tag_width : int
        Bits of a tag that travels with each value; 0 for none.
    """

    op: str
    format: FloatFormat = "float32"
    int_width: int = 32
    tag_width: int = 0

    def __post_init__(self):
        _check(self, "Conversion", CONVERSIONS)
        check_int("Integer width", self.int_width, 2, 64)
        check_int("Tag width", self.tag_width, 0, 256)

    @property
    def source_layout(self) -> data.StructLayout:
        """The payload of the ``source`` stream: ``value`` and ``tag``."""
        return self._layout(self.op == "int_to_float")

    @property
    def result_layout(self) -> data.StructLayout:
        """The payload of the ``result`` stream: ``value`` and ``tag``."""
        return self._layout(self.op == "float_to_int")

    def _layout(self, integer: bool) -> data.StructLayout:
        value = signed(self.int_width) if integer else self.format.width
        return data.StructLayout({"value": value, "tag": self.tag_width})

    @property
    def latency(self) -> int:
        """Cycles from accepting a value to its result being valid: normalise_round's, or one
        stage of alignment and one of rounding."""
        return ROUND_STAGES if self.op == "int_to_float" else 2

    def cycles(self, count: int) -> int:
        """Cycles of ``count`` conversions without stalls, first beat in to last out."""
        return count + self.latency
