"""The golden model of every floating-point unit by name (the units of
:mod:`ternforge.hdl.fp.units`): the operators' in :mod:`.fp`, the functions' in
:mod:`.fp_functions`."""

import numpy as np

from .fp import add, fma, multiply
from .fp_functions import evaluate

__all__ = ["golden"]


def golden(op: str, operands, fmt) -> np.ndarray:
    """The golden result of operator or function ``op`` on ``operands`` (an ``(n, arity)``
    array of bit patterns)."""
    operands = np.asarray(operands)
    if op == "add":
        return add(operands[:, 0], operands[:, 1], fmt)
    if op == "mul":
        return multiply(operands[:, 0], operands[:, 1], fmt)
    if op == "fma":
        return fma(operands[:, 0], operands[:, 1], operands[:, 2], fmt)
    return evaluate(op, operands[:, 0], fmt)
