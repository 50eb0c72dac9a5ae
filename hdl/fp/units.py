"""Every floating-point unit by name: the operators (``add``, ``mul``, ``fma``) and the
non-linear functions (``reciprocal``, ``rsqrt``, ``exp``, ``sigmoid``, ``silu``)."""

from .functions import FLOAT_FUNCTIONS
from .ops import FLOAT_OPERATORS
from .parameters import FloatUnitParameters

__all__ = ["FLOAT_UNITS", "float_unit"]

#: component class by :data:`~ternforge.hdl.fp.parameters.OPERATIONS` name
FLOAT_UNITS = {**FLOAT_OPERATORS, **FLOAT_FUNCTIONS}


def float_unit(parameters: FloatUnitParameters):
    """A new component of ``parameters``' unit."""
    return FLOAT_UNITS[parameters.op](parameters)
