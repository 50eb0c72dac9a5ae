"""Every floating-point unit by name: the operators (``add``, ``mul``, ``fma``) and the
non-linear functions (``reciprocal``, ``rsqrt``, ``exp``, ``sigmoid``, ``silu``)."""

from .format import float_format
from .functions import FLOAT_FUNCTIONS
from .ops import FLOAT_OPERATORS

__all__ = ["FLOAT_UNITS", "float_unit", "module_name"]

FLOAT_UNITS = {**FLOAT_OPERATORS, **FLOAT_FUNCTIONS}


def float_unit(op: str, format: str):
    """A new component computing ``op`` in ``format``."""
    if op not in FLOAT_UNITS:
        raise ValueError(f"Operation must be one of {', '.join(FLOAT_UNITS)}, not {op!r}")
    return FLOAT_UNITS[op](format=float_format(format))


def module_name(op: str, format: str) -> str:
    """The Verilog module name of ``op`` in ``format`` (e.g. ``float16_add``)."""
    return f"{float_format(format).name}_{op}"
