"""The jobs a MAC-array engine (:mod:`ternforge.hdl.mac.array`) can compute exactly."""

from __future__ import annotations

from ...hdl.mac.parameters import MacArrayParameters
from ..models.mac import operand_range

__all__ = ["check_job"]


def check_job(parameters: MacArrayParameters, a, b) -> None:
    """Refuse (``ValueError``) operands the engine of ``parameters`` cannot multiply exactly."""
    if a.ndim != 2 or b.ndim != 2 or 0 in a.shape or 0 in b.shape:
        raise ValueError(f"A and B must be non-empty matrices, not of shapes {a.shape} "
                         f"and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"B must have as many rows as A has columns ({a.shape[1]}), "
                         f"not {b.shape[0]}")
    if a.shape[1] > parameters.max_k:
        raise ValueError(f"K must be at most max_k = {parameters.max_k}, not {a.shape[1]}")
    low, high = operand_range(parameters.width, parameters.signed)
    for name, array in (("A", a), ("B", b)):
        if array.min() < low or array.max() > high:
            kind = "signed" if parameters.signed else "unsigned"
            bad = array.min() if array.min() < low else array.max()
            raise ValueError(f"{name} must hold {kind} {parameters.width}-bit integers "
                             f"({low} to {high}), not {int(bad)}")
