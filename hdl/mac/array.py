"""Tensor engines built from multiply-accumulate (MAC) arrays, each in two variants.

Every engine computes one output tile ``C[rows, cols] = A[rows, K] @ B[K, cols]`` at a time,
with ``K`` streamed in beats of ``depth`` steps, and has ``size**2`` multipliers:

============ ===================== ======================================================
arch         rows x cols x depth   structure
============ ===================== ======================================================
systolic     size x size x 1       output-stationary systolic array: ``a`` flows right,
                                   ``b`` flows down (inputs skewed), one MAC per PE
matrix2d     size x size x 1       2D-Matrix: ``a[i]`` broadcast along row ``i``, ``b[j]``
                                   down column ``j`` (an outer product per cycle)
cube3d       size/2 x size/2 x 4   3D-Cube: each PE reduces a 4-long dot product per cycle
addertree    1 x size x size       multiplier-adder tree: ``size`` dot products of length
                                   ``size`` per cycle, one activation vector broadcast
============ ===================== ======================================================

``baseline`` PEs are conventional: a multiplier per product (``*``, which Yosys maps to
DSP48E2 or to LUTs), an adder tree over a PE's products and a carry-propagate accumulator.
``transformed`` PEs work in the bit-weight dimension (:class:`~ternforge.hdl.mac.carry_save
.CarrySaveSum`): the partial-product bits of all of a PE's products and its accumulator, held in
carry-save form (``sum``, ``carry``), are compressed together by one full-adder tree, and the
carry-propagate addition is done once per output, when the tile is read out, by ``cols``
adders shared by all rows. ``booth`` PEs are transformed PEs whose products are radix-4 Booth
rows (half as many partial products, each a multiplexer), the multiplier's Booth encoding done
once per broadcast operand (or per column of the systolic array, whose digits flow down it)
and shared by all the PEs that use it.

Interface: ``operands`` beats carry ``a`` (``A[i, k + d]`` at ``i * depth + d``), ``b``
(``B[k + d, j]`` at ``d * cols + j``) and ``last`` (the tile's last beat; pad ``K`` to a
multiple of ``depth`` with zeros). After the last beat the array flushes for
:attr:`~ternforge.hdl.mac.parameters.MacArrayParameters.latency` cycles, then ``results``
carries the tile's rows, row 0 first; the next tile's beats are accepted after the last row.
"""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .carry_save import CarrySaveSum, booth_encode
from .parameters import MacArrayParameters

__all__ = ["MacArray", "SystolicArray", "Matrix2D", "Cube3D", "AdderTree", "MAC_ARCHITECTURES",
           "mac_array"]


def _tree_sum(values):
    """Sum of ``values`` as a balanced tree of carry-propagate adders."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class MacArray(wiring.Component):
    """The stream skeleton shared by every MAC array; see the module documentation.

    Parameters
    ----------
    parameters : MacArrayParameters
        The engine's parameters (of the subclass's :attr:`arch`); its facts (``dims``,
        ``acc_width``, ``latency``, ``cycles``, ...) are :attr:`parameters`'.

    Members
    -------
    operands : ``In(stream.Signature(StructLayout({"a": ..., "b": ..., "last": 1})))``
        One beat per ``depth`` steps of ``K``.
    results : ``Out(stream.Signature(ArrayLayout(acc_shape, cols)))``
        One row of the output tile per beat.
    """

    #: the architecture whose parameters this component takes
    arch = None

    def __init__(self, parameters: MacArrayParameters):
        if not isinstance(parameters, MacArrayParameters) or parameters.arch != self.arch:
            raise ValueError(f"Parameters must be MacArrayParameters of architecture "
                             f"{self.arch}, not {parameters!r}")
        self._parameters = p = parameters
        rows, cols, depth = p.dims
        super().__init__({
            "operands": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(p.operand_shape, rows * depth),
                "b": data.ArrayLayout(p.operand_shape, depth * cols), "last": 1}))),
            "results": Out(stream.Signature(data.ArrayLayout(p.acc_shape, cols))),
        })

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        p = self._parameters
        rows, cols, _ = p.dims
        a, b = Signal.like(self.operands.payload.a), Signal.like(self.operands.payload.b)
        fed, clear = Signal(), Signal()
        accepted = self.operands.valid & self.operands.ready
        m.d.sync += fed.eq(accepted)
        with m.If(accepted):
            m.d.sync += [a.eq(self.operands.payload.a), b.eq(self.operands.payload.b)]
        states = self._elaborate_array(m, a, b, fed, clear)
        countdown, draining = Signal(range(p.latency + 1)), Signal()
        row = Signal(range(max(rows, 2)))  # a zero-width signal trips Verilator
        m.d.comb += [
            self.operands.ready.eq((countdown == 0) & ~draining),
            self.results.valid.eq(draining),
            clear.eq(self.results.ready & draining & (row == rows - 1)),
        ]
        for column in range(cols):
            parts = [Array(states[i][column][p] for i in range(rows))[row]
                     for p in range(len(states[0][column]))]
            m.d.comb += self.results.payload[column].eq(self._resolve(parts))
        with m.If(accepted & self.operands.payload.last):
            m.d.sync += countdown.eq(p.latency)
        with m.If(countdown > 0):
            m.d.sync += countdown.eq(countdown - 1)
            with m.If(countdown == 1):
                m.d.sync += draining.eq(1)
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(clear):
                m.d.sync += [row.eq(0), draining.eq(0)]
        return m

    def _elaborate_array(self, m, a, b, fed, clear):
        """The PEs, fed from the registered beat; return each PE's state, by row and column."""
        raise NotImplementedError

    def _pe(self, m, pairs, *, enable, clear, name):
        """A PE accumulating the products of ``pairs`` when ``enable``; returns its state
        (``(acc,)``, or ``(sum, carry)`` when transformed)."""
        p = self._parameters
        if p.variant == "baseline":
            acc = Signal(p.acc_shape, name=f"{name}_acc")
            with m.If(clear):
                m.d.sync += acc.eq(0)
            with m.Elif(enable):
                m.d.sync += acc.eq(acc + _tree_sum([x * y for x, y in pairs]))
            return (acc,)
        total, carry = Signal(p.acc_width, name=f"{name}_sum"), \
            Signal(p.acc_width, name=f"{name}_carry")
        matrix = CarrySaveSum(p.acc_width)
        for x, y in pairs:
            if p.variant == "booth":
                matrix.add_booth_product(x, y, signed=p.signed)
            else:
                matrix.add_product(x, y, signed=p.signed)
        matrix.add_value(total)
        matrix.add_value(carry)
        next_total, next_carry = matrix.compress(m, name=name)
        with m.If(clear):
            m.d.sync += [total.eq(0), carry.eq(0)]
        with m.Elif(enable):
            m.d.sync += [total.eq(next_total), carry.eq(next_carry)]
        return (total, carry)

    def _multiplier(self, m, value, name):
        """What a PE takes as the second operand of its products: the value, or for the
        ``booth`` variant its Booth digits, encoded once here and shared by every PE that
        multiplies by it."""
        if self._parameters.variant != "booth":
            return value
        return booth_encode(m, value, signed=self._parameters.signed, name=name)

    def _resolve(self, state):
        """A PE's accumulated value from its state: the deferred carry-propagate addition of
        a transformed PE."""
        if self._parameters.variant == "baseline":
            return state[0]
        return (state[0] + state[1])[:self._parameters.acc_width]


class BroadcastArray(MacArray):
    """PEs that all take the same registered beat: ``a[i, d]`` goes to every PE of row ``i``,
    ``b[d, j]`` to every PE of column ``j``."""

    def _elaborate_array(self, m, a, b, fed, clear):
        rows, cols, depth = self._parameters.dims
        # the multiplier is the operand more PEs share: b (a column) unless rows are fewer
        by_b = rows >= cols or self._parameters.variant != "booth"
        lefts = {(i, d): a[i * depth + d] for i in range(rows) for d in range(depth)}
        tops = {(d, j): b[d * cols + j] for d in range(depth) for j in range(cols)}
        if by_b:
            tops = {key: self._multiplier(m, value, f"booth_b{key[0]}_{key[1]}")
                    for key, value in tops.items()}
        else:
            lefts = {key: self._multiplier(m, value, f"booth_a{key[0]}_{key[1]}")
                     for key, value in lefts.items()}

        def pairs(i, j):
            return [(lefts[i, d], tops[d, j]) if by_b else (tops[d, j], lefts[i, d])
                    for d in range(depth)]
        return [[self._pe(m, pairs(i, j), enable=fed, clear=clear, name=f"pe_{i}_{j}")
                 for j in range(cols)] for i in range(rows)]


class Matrix2D(BroadcastArray):
    """2D-Matrix engine: ``size x size`` PEs, an outer product per cycle."""

    arch = "matrix2d"


class Cube3D(BroadcastArray):
    """3D-Cube engine: ``size/2 x size/2`` PEs, each a 4-long dot product per cycle."""

    arch = "cube3d"


class AdderTree(BroadcastArray):
    """Multiplier-adder tree engine: ``size`` dot products of length ``size`` per cycle."""

    arch = "addertree"


class SystolicArray(MacArray):
    """Output-stationary systolic array: row ``i`` of ``a`` enters ``i`` cycles late and
    flows right, column ``j`` of ``b`` enters ``j`` cycles late and flows down, so PE
    ``(i, j)`` meets ``a[i, k]`` and ``b[k, j]`` ``i + j`` cycles after the beat."""

    arch = "systolic"

    def _elaborate_array(self, m, a, b, fed, clear):
        rows, cols, _ = self._parameters.dims

        def delayed(value, cycles, name):
            for stage in range(cycles):
                register = Signal.like(value, name=f"{name}_{stage}")
                m.d.sync += register.eq(value)
                value = register
            return value

        west = [(delayed(a[i], i, f"skew_a{i}"), delayed(fed, i, f"skew_v{i}"))
                for i in range(rows)]
        north = [self._multiplier(m, delayed(b[j], j, f"skew_b{j}"), f"booth_b{j}")
                 for j in range(cols)]  # Booth digits, if any, flow down the column
        states = [[None] * cols for _ in range(rows)]
        for i in range(rows):
            for j in range(cols):
                (x, valid), y = west[i], north[j]
                states[i][j] = self._pe(m, [(x, y)], enable=valid, clear=clear,
                                        name=f"pe_{i}_{j}")
                west[i] = (delayed(x, 1, f"a_{i}_{j}"), delayed(valid, 1, f"v_{i}_{j}"))
                north[j] = delayed(y, 1, f"b_{i}_{j}")
        return states


#: architecture name -> engine class
MAC_ARCHITECTURES = {cls.arch: cls for cls in (SystolicArray, Cube3D, AdderTree, Matrix2D)}


def mac_array(parameters: MacArrayParameters) -> MacArray:
    """A fresh engine component of ``parameters.arch``."""
    return MAC_ARCHITECTURES[parameters.arch](parameters)
