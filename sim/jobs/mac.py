# amaranth: UnusedElaboratable=no
"""Configuration of one MAC-array engine (:mod:`ternforge.hdl.mac.array`): frozen, validated
at construction by the engine itself, JSON-able through ``__dict__``."""

from __future__ import annotations

from dataclasses import dataclass

from ...hdl.mac.array import MAC_ARCHITECTURES
from ..models.mac import MacGeometry, operand_range

__all__ = ["MacConfig"]


@dataclass(frozen=True)
class MacConfig:
    """One engine: architecture, variant and the engine's parameters.

    Members
    -------
    arch : str
        ``systolic``, ``cube3d``, ``addertree`` or ``matrix2d``.
    variant : str
        ``baseline`` or ``transformed``.
    size, width, signed, max_k, acc_width :
        As for :class:`~ternforge.hdl.mac.array.MacArray`.
    """

    arch: str = "systolic"
    variant: str = "baseline"
    size: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = None

    def __post_init__(self):
        if self.arch not in MAC_ARCHITECTURES:
            raise ValueError(f"Architecture must be one of {', '.join(MAC_ARCHITECTURES)}, "
                             f"not {self.arch!r}")
        self.component()  # validates the rest

    @property
    def module_name(self) -> str:
        return f"mac_{self.arch}_{self.variant}"

    def component(self):
        return MAC_ARCHITECTURES[self.arch](
            size=self.size, width=self.width, signed=self.signed, variant=self.variant,
            max_k=self.max_k, acc_width=self.acc_width)

    def geometry(self) -> MacGeometry:
        return MacGeometry.of(self.component())

    def check_job(self, a, b) -> None:
        """Refuse (``ValueError``) operands this engine cannot multiply exactly."""
        if a.ndim != 2 or b.ndim != 2 or 0 in a.shape or 0 in b.shape:
            raise ValueError(f"A and B must be non-empty matrices, not of shapes {a.shape} "
                             f"and {b.shape}")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"B must have as many rows as A has columns ({a.shape[1]}), "
                             f"not {b.shape[0]}")
        if a.shape[1] > self.max_k:
            raise ValueError(f"K must be at most max_k = {self.max_k}, not {a.shape[1]}")
        low, high = operand_range(self.width, self.signed)
        for name, array in (("A", a), ("B", b)):
            if array.min() < low or array.max() > high:
                kind = "signed" if self.signed else "unsigned"
                bad = array.min() if array.min() < low else array.max()
                raise ValueError(f"{name} must hold {kind} {self.width}-bit integers "
                                 f"({low} to {high}), not {int(bad)}")
