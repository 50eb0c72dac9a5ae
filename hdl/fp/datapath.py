"""Building blocks of pipelined floating-point datapaths.

:class:`Pipeline` turns a combinational datapath into a stream-to-stream pipeline: every
:meth:`Pipeline.stage` is one register stage, the whole pipeline moves when its output can
take a beat (``advance = ~result.valid | result.ready``), so it accepts one beat per cycle,
never drops one, and its latency is the number of stages.

:func:`unpack` classifies a bit pattern; :func:`normalise_round` is the common back end of
every operator: it turns an exact (or sticky-collapsed) intermediate value
``significand * 2**(exponent - bias - (W - 1))`` into the nearest representable value (round
to nearest, ties to even), with gradual underflow to subnormals and overflow to infinity.

Each stage is kept shallow in logic levels, since the slowest stage sets the clock: zero
counts are trees (:func:`leading_zeros`, :func:`trailing_zeros`), not priority chains; a
sticky bit of a shift right is a comparison with trailing zeros counted a stage earlier where
the datapath has one to spare, or the bits under a mask of the shift's amount, reduced beside
the shift, not after it; and
:func:`normalise_round` stops its count of leading zeros with a one placed by a decoder of the
exponent, so that no comparison follows the count.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring

from .format import FloatFormat

__all__ = ["Pipeline", "PipelinedUnit", "pipelined", "unpack", "leading_zeros", "trailing_zeros",
           "shift_right_sticky", "exponent_stop", "normalise_round",
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


def _zero_run(m, bits, name: str) -> Signal:
    """Zeros of ``bits`` from its top down (its width when it is zero), by a tree of
    two-way merges: each node of a block holds whether the block is all zero and the zeros
    above its first one, so the depth grows with the log of the width, not the width."""
    width = len(bits)
    size = 1 << max(width - 1, 1).bit_length()
    padded = Cat(Const(0, size - width), bits)  # zeros below the value count only if all are
    nodes = [(~padded[i], Const(0, 0)) for i in range(size)]  # (all zero, zeros above a one)
    level = 0
    while len(nodes) > 1:
        merged = []
        for low, high in zip(nodes[::2], nodes[1::2]):
            empty = Signal(name=f"{name}_e{level}_{len(merged)}")
            count = Signal(level + 1, name=f"{name}_c{level}_{len(merged)}")
            m.d.comb += [empty.eq(high[0] & low[0]),
                         count.eq(Mux(high[0], Cat(low[1], Const(1, 1)),
                                      Cat(high[1], Const(0, 1))))]
            merged.append((empty, count))
        nodes, level = merged, level + 1
    empty, count = nodes[0]
    result = Signal(range(width + 1), name=name)
    m.d.comb += result.eq(Mux(empty, width, count))
    return result


def leading_zeros(m, value, name: str) -> Signal:
    """Leading zeros of ``value`` (its width when it is zero)."""
    return _zero_run(m, Value.cast(value), name)


def trailing_zeros(m, value, name: str) -> Signal:
    """Trailing zeros of ``value`` (its width when it is zero)."""
    value = Value.cast(value)
    return _zero_run(m, Cat(*(value[i] for i in reversed(range(len(value))))), name)


def shift_right_sticky(m, value, amount, name: str, *, trailing=None):
    """``(value >> amount, sticky)``: ``sticky`` is the OR of the bits shifted out. Amounts
    beyond the width shift everything out. ``trailing``, the trailing zeros of ``value``
    (:func:`trailing_zeros`, its width when it is zero) if an earlier stage counted them,
    makes ``sticky`` a comparison; without it, ``sticky`` is the OR of the bits under a mask
    of ``amount`` (bit ``i`` where ``amount > i``), reduced beside the shift, not after it."""
    width, amount = len(value), Value.cast(amount).as_unsigned()
    shifted, sticky = Signal(width, name=name), Signal(name=f"{name}_sticky")
    m.d.comb += shifted.eq(value >> amount)
    if trailing is None:
        dropped = Signal(width, name=f"{name}_dropped")
        m.d.comb += [dropped.eq(Cat(amount > bit for bit in range(width))),
                     sticky.eq((value & dropped) != 0)]
    else:
        m.d.comb += sticky.eq((trailing < amount) & (trailing != width))
    return shifted, sticky


def exponent_stop(m, exponent, width: int, name: str) -> Signal:
    """The one :func:`normalise_round` ORs into a ``width``-bit significand to stop its count
    of leading zeros at ``exponent - 1`` (none when that is ``width`` or more): a decoder of
    the exponent's low bits, gated by its high bits being zero, so that neither a subtraction
    nor a wide comparison comes before the count. A caller whose exponent is ready a stage
    before its significand decodes it there and passes the register."""
    low_bits = width.bit_length()
    low = Signal(low_bits, name=f"{name}_exponent_low")
    small = Signal(name=f"{name}_exponent_small")
    stop = Signal(width, name=name)
    m.d.comb += [low.eq(exponent[:low_bits]), small.eq(exponent[low_bits:] == 0),
                 stop.eq(Cat(small & (low == width - bit) for bit in range(width)))]
    return stop


def normalise_round(pipe: Pipeline, fmt: FloatFormat, *, sign, exponent, significand, sticky,
                    special, special_bits, name: str = "round", subnormal: bool = True,
                    stop=None, left=None):
    """Three stages from an intermediate value to a bit pattern.

    The value is ``(-1)**sign * (significand + sticky * tiny) * 2**(exponent - bias - (W -
    1))``, ``W = len(significand)`` at least ``precision + 2``, ``sticky`` standing for nonzero
    bits below the significand's last (only set when at most two bits of normalisation
    follow). When ``special``, the result is ``special_bits`` (NaN, infinity, exact zero).

    A caller that knows more passes it: ``stop``, :func:`exponent_stop` of ``exponent``
    (registered by its previous stage); ``left``, the shift that normalises, counted its own
    way (the leading zeros of ``significand | stop``); ``subnormal=False``, that
    ``exponent`` is never below 1 (a sum's: its larger operand's and one more), so that the
    shift right into the subnormal range is left out.
    Returns the result's bit pattern (a registered value of the last stage).
    """
    m, width, p = pipe.m, len(significand), fmt.precision
    # Stage 1: the shift left that normalises without going below exponent 1 (unless the
    # caller counted it: the leading zeros of the value with a one set ``exponent - 1`` bits
    # below its top, so that no comparison follows the count); whether the value is below
    # exponent 1 (subnormal), and if so how far right it shifts into the subnormal range.
    if left is None:
        if stop is None:
            stop = exponent_stop(m, exponent, width, f"{name}_stop")
        left = leading_zeros(m, significand | stop, f"{name}_left")
    below = {}
    if subnormal:
        room = Signal(exponent.shape(), name=f"{name}_room")
        m.d.comb += room.eq(exponent - 1)
        right = Signal(range(width + 3), name=f"{name}_right")
        m.d.comb += right.eq(Mux(-room > width + 2, width + 2, -room))
        below = {"subnormal": room < 0, "right": right}
    s1 = pipe.stage(sign=sign, exponent=exponent, significand=significand, sticky=sticky,
                    left=left, special=special, special_bits=special_bits, **below)
    # Stage 2: shift left (normalise) or right (to the subnormal range, collecting a sticky:
    # the bits below ``right``, a mask of its register beside the shift).
    shifted_left = Signal(width, name=f"{name}_shifted_left")
    m.d.comb += shifted_left.eq(s1.significand << s1.left)
    exponent, significand, sticky = s1.exponent - s1.left, shifted_left, s1.sticky
    if subnormal:
        shifted_right, lost = shift_right_sticky(m, s1.significand, s1.right, f"{name}_normal")
        exponent = Mux(s1.subnormal, 1, exponent)
        significand = Mux(s1.subnormal, shifted_right, significand)
        sticky = sticky | (s1.subnormal & lost)
    s2 = pipe.stage(sign=s1.sign, exponent=exponent, significand=significand, sticky=sticky,
                    special=s1.special, special_bits=s1.special_bits)
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
