"""Building blocks of pipelined floating-point datapaths.

:class:`Pipeline` turns a combinational datapath into a stream-to-stream pipeline: every
:meth:`Pipeline.stage` is one register stage, the whole pipeline moves when its output can
take a beat (``advance = ~result.valid | result.ready``), so it accepts one beat per cycle,
never drops one, and its latency is the number of stages.

:func:`unpack` classifies a bit pattern; :func:`normalise_round` is the common back end of
every operator: it turns an exact (or sticky-collapsed) intermediate value
``significand * 2**(exponent - bias - (W - 1))`` into the nearest representable value (round
to nearest, ties to even), with gradual underflow to subnormals and overflow to infinity.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring

from .format import FloatFormat

__all__ = ["Pipeline", "PipelinedUnit", "pipelined", "unpack", "leading_zeros", "shift_right_sticky", "normalise_round",
           "exponent_shape"]


class Pipeline:
    """Registers for a stream pipeline in module ``m`` from stream ``source`` to ``sink``.

    When ``tag`` is given (a value of the source's payload, such as a ``last`` flag), it
    travels with its beat through every stage and drives ``sink.payload.tag``; the result
    goes to ``sink.payload.value``.

    Members
    -------
    advance : Signal
        High when every stage moves forward this cycle.
    depth : int
        Stages added so far (the latency of the finished pipeline).
    """

    def __init__(self, m, source, sink, *, tag=None):
        self.m, self._sink = m, sink
        self.advance = Signal()
        self._valid, self._tag = source.valid, tag
        self.depth = 0
        m.d.comb += [self.advance.eq(~sink.valid | sink.ready), source.ready.eq(self.advance)]

    def stage(self, **values) -> SimpleNamespace:
        """One register stage holding ``values`` (name to value); returns the registers."""
        self.depth += 1
        valid = Signal(name=f"stage{self.depth}_valid")
        registers = {}
        if self._tag is not None:
            values = {**values, "_tag": self._tag}
        with self.m.If(self.advance):
            self.m.d.sync += valid.eq(self._valid)
            for name, value in values.items():
                value = Value.cast(value)
                registers[name] = Signal(value.shape(), name=f"s{self.depth}{name}"
                                         if name == "_tag" else f"s{self.depth}_{name}")
                self.m.d.sync += registers[name].eq(value)
        self._valid = valid
        if self._tag is not None:
            self._tag = registers.pop("_tag")
        return SimpleNamespace(**registers)

    def finish(self, payload) -> None:
        """Drive the sink from the last stage (its payload ``payload``)."""
        self.m.d.comb += self._sink.valid.eq(self._valid)
        if self._tag is None:
            self.m.d.comb += self._sink.payload.eq(payload)
        else:
            self.m.d.comb += [self._sink.payload.value.eq(payload),
                              self._sink.payload.tag.eq(self._tag)]


class PipelinedUnit(wiring.Component):
    """A component of one pipelined unit: its ``parameters`` (of the class's :attr:`op`)
    and its signature ``ports``; ``what`` names the ``op`` in messages."""

    op = None

    def __init__(self, parameters, ports, *, what: str):
        if parameters.op != self.op:
            raise ValueError(f"{what} must be {self.op!r}, not {parameters.op!r}")
        self._parameters = parameters
        super().__init__(ports)

    parameters = property(lambda self: self._parameters)


def pipelined(source, sink, datapath, *, tag, latency: int) -> Module:
    """A module of the :class:`Pipeline` from ``source`` to ``sink`` (with ``tag``) whose
    stages ``datapath(m, pipe)`` adds, returning the result; refuses (``AssertionError``) a
    pipeline that is not exactly ``latency`` stages deep, so that a unit's analytic latency
    cannot drift from the hardware."""
    m = Module()
    pipe = Pipeline(m, source, sink, tag=tag)
    pipe.finish(datapath(m, pipe))
    assert pipe.depth == latency, (pipe.depth, latency)
    return m


def exponent_shape(fmt: FloatFormat, width: int):
    """A signed shape for biased exponents of intermediate values ``width`` bits wide
    (products of two operands, alignments and normalisations included)."""
    return signed(fmt.exponent_bits + 3 + max(width, fmt.precision).bit_length())


def unpack(m, fmt: FloatFormat, bits, name: str) -> SimpleNamespace:
    """The fields of ``bits``: ``sign``; ``exponent`` (biased, subnormals as 1, signed so that
    exponent arithmetic needs no casts); ``significand``
    (``precision`` bits, the hidden bit included); flags ``nan``, ``inf``, ``zero``."""
    m_bits, e_bits = fmt.mantissa_bits, fmt.exponent_bits
    field = Signal(e_bits, name=f"{name}_field")
    mantissa = Signal(m_bits, name=f"{name}_mantissa")
    value = SimpleNamespace(sign=Signal(name=f"{name}_sign"),
                            exponent=Signal(signed(e_bits + 2), name=f"{name}_exponent"),
                            significand=Signal(fmt.precision, name=f"{name}_significand"),
                            nan=Signal(name=f"{name}_nan"), inf=Signal(name=f"{name}_inf"),
                            zero=Signal(name=f"{name}_zero"))
    m.d.comb += [
        Cat(mantissa, field, value.sign).eq(bits),
        value.exponent.eq(Mux(field == 0, 1, field)),
        value.significand.eq(Cat(mantissa, field != 0)),
        value.nan.eq((field == fmt.max_exponent) & (mantissa != 0)),
        value.inf.eq((field == fmt.max_exponent) & (mantissa == 0)),
        value.zero.eq((field == 0) & (mantissa == 0)),
    ]
    return value


def leading_zeros(m, value, name: str) -> Signal:
    """Leading zeros of ``value`` (its width when it is zero), as a priority encoder."""
    width = len(value)
    count = Signal(range(width + 1), name=name)
    m.d.comb += count.eq(width)
    for bit in range(width):  # the highest set bit is assigned last and wins
        with m.If(value[bit]):
            m.d.comb += count.eq(width - 1 - bit)
    return count


def shift_right_sticky(m, value, amount, name: str):
    """``(value >> amount, sticky)``: ``sticky`` is the OR of the bits shifted out. Amounts
    beyond the width shift everything out."""
    width, amount = len(value), Value.cast(amount)
    wide = Signal(2 * width, name=f"{name}_wide")
    m.d.comb += wide.eq(Cat(Const(0, width), value) >> amount.as_unsigned())
    shifted, sticky = Signal(width, name=name), Signal(name=f"{name}_sticky")
    m.d.comb += [shifted.eq(wide[width:]), sticky.eq(wide[:width] != 0)]
    return shifted, sticky


def normalise_round(pipe: Pipeline, fmt: FloatFormat, *, sign, exponent, significand, sticky,
                    special, special_bits, name: str = "round"):
    """Three stages from an intermediate value to a bit pattern.

    The value is ``(-1)**sign * (significand + sticky * tiny) * 2**(exponent - bias - (W -
    1))``, ``W = len(significand)`` at least ``precision + 2``, ``sticky`` standing for nonzero
    bits below the significand's last (only set when at most two bits of normalisation
    follow). When ``special``, the result is ``special_bits`` (NaN, infinity, exact zero).
    Returns the result's bit pattern (a registered value of the last stage).
    """
    m, width, p = pipe.m, len(significand), fmt.precision
    # Stage 1: count leading zeros; the shift that normalises without going below exponent 1.
    zeros = leading_zeros(m, significand, f"{name}_zeros")
    room = Signal(exponent.shape(), name=f"{name}_room")
    m.d.comb += room.eq(exponent - 1)
    shift = Signal(exponent.shape(), name=f"{name}_shift")
    m.d.comb += shift.eq(Mux(room < zeros, room, zeros))
    s1 = pipe.stage(sign=sign, exponent=exponent, significand=significand, sticky=sticky,
                    shift=shift, special=special, special_bits=special_bits)
    # Stage 2: shift left (normalise) or right (to the subnormal range, collecting a sticky).
    left = Signal(range(width + 1), name=f"{name}_left")
    right = Signal(range(width + 3), name=f"{name}_right")
    m.d.comb += [left.eq(Mux(s1.shift < 0, 0, s1.shift)),
                 right.eq(Mux(s1.shift >= 0, 0, Mux(-s1.shift > width + 2, width + 2,
                                                     -s1.shift)))]
    shifted_left = Signal(width, name=f"{name}_shifted_left")
    m.d.comb += shifted_left.eq(s1.significand << left)
    normal, lost = shift_right_sticky(m, shifted_left, right, f"{name}_normal")
    s2 = pipe.stage(sign=s1.sign, exponent=s1.exponent - s1.shift, significand=normal,
                    sticky=s1.sticky | lost, special=s1.special, special_bits=s1.special_bits)
    # Stage 3: round to nearest even, pack, overflow to infinity.
    top = s2.significand[width - p:]
    guard = s2.significand[width - p - 1]
    rest = (s2.significand[:width - p - 1] != 0) | s2.sticky
    packed = Signal(unsigned(len(s2.exponent) + fmt.mantissa_bits + 1), name=f"{name}_packed")
    m.d.comb += packed.eq(((s2.exponent - 1).as_unsigned() << fmt.mantissa_bits) + top
                          + (guard & (rest | top[0])))
    overflow = packed >= fmt.infinity
    magnitude = Mux(overflow, fmt.infinity, packed[:fmt.width - 1])
    return pipe.stage(bits=Mux(s2.special, s2.special_bits, Cat(magnitude, s2.sign))).bits
