"""The parameters of a MAC-array engine (:mod:`ternforge.hdl.mac.array`): validated once, with
the tile shape, the accumulator width, the latency and the cycle model derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import signed as signed_shape, unsigned

from ..common.checks import check_int

__all__ = ["ARCHITECTURES", "VARIANTS", "MacArrayParameters", "accumulator_width"]

#: the array architectures (see :mod:`ternforge.hdl.mac.array`)
ARCHITECTURES = ("systolic", "cube3d", "addertree", "matrix2d")
#: the PE variants: conventional, bit-weight transformed, transformed with Booth products
VARIANTS = ("baseline", "transformed", "booth")
#: K steps a 3D-Cube PE reduces per cycle
_CUBE_DEPTH = 4


def accumulator_width(*, width: int, signed_operands: bool, max_k: int) -> int:
    """Bits that hold any sum of ``max_k`` products of two ``width``-bit operands."""
    if signed_operands:
        return (max_k << (2 * width - 2)).bit_length() + 1
    return (max_k * ((1 << width) - 1) ** 2).bit_length()


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}, not {value!r}")


@dataclass(frozen=True)
class MacArrayParameters:
    """Parameters of one MAC-array engine.

    Parameters
    ----------
    arch : str
        ``systolic``, ``cube3d``, ``addertree`` or ``matrix2d``.
    variant : str
        ``baseline``, ``transformed`` or ``booth``.
    size : int
        The array's size: it has ``size**2`` multipliers (even for the 3D-Cube).
    width : int
        Bits per operand (2 to 32).
    signed : bool
        Two's complement operands (else unsigned).
    max_k : int
        The longest reduction the accumulators hold exactly.
    acc_width : int or None
        Accumulator bits; at least (and by default) :func:`accumulator_width`.
    """

    arch: str = "systolic"
    variant: str = "baseline"
    size: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = None

    def __post_init__(self):
        _choice("Architecture", self.arch, ARCHITECTURES)
        if self.arch == "cube3d" and (not isinstance(self.size, int) or isinstance(
                self.size, bool) or self.size < 2 or self.size % 2):
            raise ValueError(f"Array size must be an even integer of at least 2 for the 3D-Cube, "
                             f"not {self.size!r}")
        check_int("Array size", self.size, 1, 64)
        check_int("Operand width", self.width, 2, 32)
        if not isinstance(self.signed, bool):
            raise ValueError(f"Signed must be True or False, not {self.signed!r}")
        _choice("Variant", self.variant, VARIANTS)
        check_int("Maximum K", self.max_k, 1)
        needed = accumulator_width(width=self.width, signed_operands=self.signed,
                                   max_k=self.max_k)
        if self.acc_width is None:
            object.__setattr__(self, "acc_width", needed)
        check_int("Accumulator width", self.acc_width, needed, 128)

    @property
    def module_name(self) -> str:
        """The Verilog module name of this engine."""
        return f"mac_{self.arch}_{self.variant}"

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(rows, cols, depth)``: the output tile and the K steps per beat."""
        size = self.size
        return {"systolic": (size, size, 1), "matrix2d": (size, size, 1),
                "cube3d": (size // 2, size // 2, _CUBE_DEPTH), "addertree": (1, size, size)
                }[self.arch]

    @property
    def operand_shape(self):
        return (signed_shape if self.signed else unsigned)(self.width)

    @property
    def acc_shape(self):
        return (signed_shape if self.signed else unsigned)(self.acc_width)

    @property
    def multipliers(self) -> int:
        rows, cols, depth = self.dims
        return rows * cols * depth

    @property
    def latency(self) -> int:
        """Cycles from accepting a tile's last beat to its results being ready: the skew of
        the systolic array, one register stage for the broadcast arrays."""
        return 2 * self.size - 1 if self.arch == "systolic" else 1

    def cycles(self, m: int, n: int, k: int) -> int:
        """Cycles of an (M, N, K) GEMM with no stalls, tile after tile (row-major over the
        output tiles), from the first beat accepted to the last row accepted, inclusive."""
        rows, cols, depth = self.dims
        tiles = -(-m // rows) * -(-n // cols)
        return tiles * (-(-k // depth) + self.latency + rows)
