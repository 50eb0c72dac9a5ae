"""ternforge: a generator of FPGA accelerators for ternary LLM inference.

The package is split by concern (see ``DESIGN``):

- :mod:`ternforge.hdl`: Amaranth components.
- :mod:`ternforge.sim`: numpy golden models, cycle models and the Verilator/cocotb glue.
- :mod:`ternforge.gen`: configurations, elaboration, reports and the command line.
- :mod:`ternforge.boards`: board definitions.
"""

__version__ = "0.1.0"
