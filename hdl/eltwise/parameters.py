"""Parameters of the element-wise stages and unit: their validation, their floating-point
operators (:class:`~ternforge.hdl.fp.parameters.FloatUnitParameters`), buffers, latencies and
cycle models, all known without building any hardware.

Every stage streams one beat per cycle through its operators, so its latency is theirs in
series; the two-pass stages add a scalar phase between their passes (see
:mod:`~ternforge.hdl.eltwise.two_pass` for the sequencing these cycle models count). A beat is
one element, or with ``lanes`` (the keyword every stage takes) that many consecutive elements
of a vector, each through its own copy of the operators: a vector is then a whole number of
beats.
"""

from dataclasses import dataclass, field

from amaranth.lib import data

from ..common.checks import check_int
from ..fp.format import FloatFormat, float_format
from ..fp.parameters import ConversionParameters, FloatUnitParameters

__all__ = ["ACTIVATIONS", "element_layout", "lanes_layout", "StageParameters",
           "DequantiseParameters",
           "ResidualParameters", "GatedActivationParameters", "RopeParameters",
           "TwoPassParameters", "RmsNormParameters", "QuantiseParameters",
           "EltwiseParameters", "QUANT_FLOOR"]

ACTIVATIONS = ("silu", "relu2")

#: the smallest absmax quantisation divides by (BitNet's clamp)
QUANT_FLOOR = 1e-5


def lanes_layout(shape, lanes: int = 1):
    """``lanes`` elements of ``shape`` side by side, the first least significant: ``shape``
    itself for one lane, else an array."""
    return shape if lanes == 1 else data.ArrayLayout(shape, lanes)


def element_layout(shape, lanes: int = 1) -> data.StructLayout:
    """The payload of a vector stream: ``value`` (``lanes`` elements of ``shape``,
    :func:`lanes_layout`) and ``last`` (on the beat of the token's last element)."""
    return data.StructLayout({"value": lanes_layout(shape, lanes), "last": 1})


@dataclass(frozen=True)
class StageParameters:
    """A one-pass stage in ``format``.

    Parameters
    ----------
    format : str or FloatFormat
        The arithmetic's format (float32 by default: sums of squares over a hidden vector
        overflow float16); held as a :class:`~ternforge.hdl.fp.format.FloatFormat`.
    lanes : int
        Elements of a beat (keyword only; a power of two, 1 to 16), each through its own
        copy of the per-element operators.
    """

    format: FloatFormat = "float32"
    lanes: int = field(default=1, kw_only=True)

    def __post_init__(self):
        check_int("Lanes", self.lanes, 1, 16)
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"Lanes must be a power of two, not {self.lanes!r}")
        self._check()
        object.__setattr__(self, "format", float_format(self.format))

    def _check(self) -> None:
        """Refuse (``ValueError``) a stage's own parameters beside the format."""

    @property
    def units(self) -> dict:
        """The stage's operators' parameters by submodule name, in pipeline order."""
        raise NotImplementedError

    #: the operators that are not per element: one, whatever the lanes (the scalar phase's)
    SCALAR_UNITS = ()

    def beats(self, length: int) -> int:
        """Beats of a vector of ``length`` elements; refuses (``ValueError``) a length that
        is not a whole number of beats."""
        if length % self.lanes:
            raise ValueError(f"Length must be a multiple of the {self.lanes} lanes, "
                             f"not {length!r}")
        return length // self.lanes

    def _unit(self, op: str, tag_width: int = 1) -> FloatUnitParameters:
        return FloatUnitParameters(op, self.format, tag_width)

    @property
    def latency(self) -> int:
        """Cycles from an element entering to its result leaving, without stalls (the
        operators are in series)."""
        return sum(unit.latency for unit in self.units.values())

    def cycles(self, tokens: int, length: int) -> int:
        """Cycles of ``tokens`` vectors of ``length`` elements without stalls, first beat
        in to last out, inclusive."""
        return tokens * self.beats(length) + self.latency


@dataclass(frozen=True)
class DequantiseParameters(StageParameters):
    """``(float(acc) * act_scale) * weight_scale``: from a ternary matmul's accumulators
    to floating point.

    Parameters
    ----------
    format : str or FloatFormat
    acc_width : int
        Bits of the signed accumulators (2 to 64).
    """

    acc_width: int = 32

    def _check(self):
        check_int("Accumulator width", self.acc_width, 2, 64)

    @property
    def units(self):
        return {"convert": ConversionParameters("int_to_float", self.format, self.acc_width, 1),
                "by_act": self._unit("mul"), "by_weight": self._unit("mul")}


@dataclass(frozen=True)
class ResidualParameters(StageParameters):
    """``x + residual``, element by element."""

    @property
    def units(self):
        return {"add": self._unit("add")}


@dataclass(frozen=True)
class GatedActivationParameters(StageParameters):
    """``silu(gate) * up`` or ``relu(gate)**2 * up``.

    Parameters
    ----------
    format : str or FloatFormat
    kind : str
        One of :data:`ACTIVATIONS`: ``"silu"`` (BitNet b1.58 0.7B-3B) or ``"relu2"``
        (BitNet b1.58 2B4T).
    """

    kind: str = "silu"

    def _check(self):
        if self.kind not in ACTIVATIONS:
            raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"not {self.kind!r}")

    @property
    def units(self):
        return {"activate": self._unit("silu" if self.kind == "silu" else "mul"),
                "by_up": self._unit("mul")}


@dataclass(frozen=True)
class RopeParameters(StageParameters):
    """Rotary position embedding of pairs: ``y0 = fma(x0, cos, -(x1 * sin))``,
    ``y1 = fma(x0, sin, x1 * cos)``; ``x1 * sin`` carries ``x0``, the angle and ``last`` to
    the fmas as its tag (:attr:`carried_layout`)."""

    def _check(self):
        if self.lanes != 1:  # a beat is a pair and its angle
            raise ValueError(f"Lanes of the RoPE stage must be 1, not {self.lanes!r}")

    @property
    def input_layout(self) -> data.StructLayout:
        """One pair, its angle's cosine and sine, and ``last``."""
        width = self.format.width
        return data.StructLayout({"x0": width, "x1": width, "cos": width, "sin": width,
                                  "last": 1})

    @property
    def output_layout(self) -> data.StructLayout:
        """The rotated pair and ``last``."""
        width = self.format.width
        return data.StructLayout({"y0": width, "y1": width, "last": 1})

    @property
    def carried_layout(self) -> data.StructLayout:
        """The tag of ``x1 * sin``: what the fmas need besides the products."""
        width = self.format.width
        return data.StructLayout({"last": 1, "x0": width, "cos": width, "sin": width})

    @property
    def units(self):
        mul, fma = self._unit("mul"), self._unit("fma")
        return {"x1_sin": self._unit("mul", self.carried_layout.size), "x1_cos": mul,
                "y0": fma, "y1": fma}

    @property
    def latency(self):
        """Cycles from a pair entering to its result leaving (the products in parallel, then
        the fmas in parallel)."""
        units = self.units
        return units["x1_sin"].latency + units["y0"].latency


@dataclass(frozen=True)
class TwoPassParameters(StageParameters):
    """A two-pass stage: a token buffer between pass 1 and pass 2, and a scalar phase
    that finishes the token's statistic.

    Parameters
    ----------
    format : str or FloatFormat
    max_length : int
        The longest vector (buffer depth, 2 to 65536); a longer one is cut: its element
        ``max_length - 1`` ends the token.
    """

    max_length: int = 2560

    def _check(self):
        check_int("Maximum length", self.max_length, 2, 65536)
        if self.max_length % self.lanes:
            raise ValueError(f"Maximum length must be a multiple of the {self.lanes} lanes, "
                             f"not {self.max_length!r}")

    @property
    def buffer_bits(self) -> int:
        """Bits of the token buffer."""
        return self.max_length * self.format.width

    @property
    def scalar_cycles(self) -> int:
        """Cycles from the token's last element in to the first element of pass 2 read."""
        raise NotImplementedError

    @property
    def pass2_latency(self) -> int:
        """Cycles from an element read in pass 2 to its result leaving."""
        raise NotImplementedError

    @property
    def latency(self) -> int:
        """Cycles from a token's last element in to its first result out, without stalls."""
        return self.scalar_cycles + self.pass2_latency

    def token_period(self, length: int) -> int:
        """Cycles between consecutive tokens of ``length`` elements in steady state: pass 1,
        the scalar phase, pass 2 (a beat a cycle each)."""
        return 2 * self.beats(length) - 1 + self.scalar_cycles

    def cycles(self, tokens: int, length: int) -> int:
        """Cycles of ``tokens`` vectors of ``length`` elements without stalls, first element
        in to last result out, inclusive: each token takes :meth:`token_period` and the last
        one's pipeline drains."""
        return tokens * self.token_period(length) + self.pass2_latency


@dataclass(frozen=True)
class RmsNormParameters(TwoPassParameters):
    """``x * rsqrt(mean(x**2) + eps) * gain``, with :attr:`partial_sums` partial sums of
    squares."""

    SCALAR_UNITS = ("rsqrt",)

    @property
    def slots(self) -> int:
        """Partial sums of squares a lane: the fma's latency, so that a beat enters the
        fmas every cycle."""
        return FloatUnitParameters("fma", self.format).latency

    @property
    def partial_sums(self) -> int:
        """Partial sums of squares: :attr:`slots` a lane (element ``i`` into sum ``i mod
        partial_sums``, the ``partial_sums`` of
        :func:`~ternforge.sim.models.eltwise.sum_of_squares`)."""
        return self.lanes * self.slots

    @property
    def squares_tag_layout(self) -> data.StructLayout:
        """The tag of the sums of squares' fmas: the partial sum's ``slot`` in its lane, and
        ``scalar`` for the scalar phase's operations."""
        return data.StructLayout({"slot": (self.slots - 1).bit_length(), "scalar": 1})

    @property
    def units(self):
        return {"squares": self._unit("fma", self.squares_tag_layout.size),
                "rsqrt": self._unit("rsqrt"), "by_r": self._unit("mul"),
                "by_gain": self._unit("mul")}

    @property
    def scalar_cycles(self):
        slots, sums = self.slots, self.partial_sums
        # drain the fmas (slots: their latency); sums - 1 additions and the mean, each issued
        # the cycle after the previous result (slots + 1 each); the rsqrt, issued the same
        # way; its result registered, then seen by the pass sequencer (2)
        return slots + sums * (slots + 1) + 1 + self.units["rsqrt"].latency + 2

    @property
    def pass2_latency(self):
        units = self.units
        return units["by_r"].latency + units["by_gain"].latency


@dataclass(frozen=True)
class QuantiseParameters(TwoPassParameters):
    """Absmax int8 quantisation: the scale and its reciprocal in the scalar phase, the codes
    in pass 2."""

    SCALAR_UNITS = ("to_scale", "reciprocal")

    @property
    def units(self):
        return {"to_scale": self._unit("mul"), "reciprocal": self._unit("reciprocal"),
                "by_s": self._unit("mul"),
                "to_int": ConversionParameters("float_to_int", self.format, 8, 1)}

    @property
    def scalar_cycles(self):
        units = self.units
        # the scale (issued the cycle after the last element), the reciprocal (issued the
        # cycle after), its result registered and seen by the pass sequencer
        return 1 + units["to_scale"].latency + 1 + units["reciprocal"].latency + 2

    @property
    def pass2_latency(self):
        units = self.units
        return units["by_s"].latency + units["to_int"].latency


@dataclass(frozen=True)
class EltwiseParameters:
    """The element-wise unit: dequantise, add the residual, RMSNorm and quantise.

    Parameters
    ----------
    format : str or FloatFormat
        The arithmetic's format (float32 by default); held as a
        :class:`~ternforge.hdl.fp.format.FloatFormat`.
    max_length : int
        The longest token vector (the model's hidden size): the depth of both two-pass
        stages' buffers.
    acc_width : int
        Bits of the matmul's accumulators.
    """

    format: FloatFormat = "float32"
    max_length: int = 2560
    acc_width: int = 32

    def __post_init__(self):
        object.__setattr__(self, "format", float_format(self.format))
        self.stages  # validates every stage's parameters

    @property
    def stages(self) -> dict:
        """The stages' parameters by submodule name, in stream order."""
        fmt, length = self.format, self.max_length
        return {"dequantise": DequantiseParameters(fmt, self.acc_width),
                "add_residual": ResidualParameters(fmt),
                "rmsnorm": RmsNormParameters(fmt, length),
                "quantise": QuantiseParameters(fmt, length)}

    @property
    def buffer_bits(self) -> int:
        """On-chip bits of the two token buffers."""
        stages = self.stages
        return stages["rmsnorm"].buffer_bits + stages["quantise"].buffer_bits

    @property
    def latency(self) -> int:
        """Cycles from a token's last accumulator in to its first code out, less the token's
        length minus one (the quantiser waits for the whole normalised token), without
        stalls."""
        return sum(stage.latency for stage in self.stages.values())

    def token_period(self, length: int) -> int:
        """Cycles between consecutive tokens of ``length`` elements in steady state (the
        norm's, whose scalar phase is the longer)."""
        return self.stages["rmsnorm"].token_period(length)

    def cycles(self, tokens: int, length: int) -> int:
        """Cycles of ``tokens`` vectors of ``length`` elements without stalls, first
        accumulator in to last code out, inclusive. The norm sets the pace; the quantiser
        finishes the last token after it."""
        stages = self.stages
        ahead = stages["dequantise"].latency + stages["add_residual"].latency
        quant = stages["quantise"]
        return ahead + stages["rmsnorm"].cycles(tokens, length) + quant.scalar_cycles \
            + length - 1 + quant.pass2_latency
