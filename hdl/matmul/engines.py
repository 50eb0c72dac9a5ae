"""The ternary matmul engines by kind: the one place that turns parameters into a component."""

from .adder import TernaryAdderEngine
from .lutram import TLMMLutramEngine
from .parameters import EngineKind, TlmmParameters
from .tlmm import TLMMEngine

__all__ = ["ENGINE_CLASSES", "matmul_engine"]

#: engine kind -> its component class
ENGINE_CLASSES = {EngineKind.TLMM: TLMMEngine, EngineKind.TLMM_LUTRAM: TLMMLutramEngine,
                  EngineKind.ADDER: TernaryAdderEngine}


def matmul_engine(parameters: TlmmParameters):
    """A fresh engine component of ``parameters.kind``."""
    return ENGINE_CLASSES[parameters.kind](parameters)
