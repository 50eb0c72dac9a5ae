"""The GEMV/GEMM top's parameters: their rules and messages, their facts."""

import pytest

from ternforge.hdl.gemv.parameters import (DESCRIPTOR_BITS, DESCRIPTOR_BYTES, MAX_DESCRIPTORS,
                                           GemvParameters)
from ternforge.hdl.matmul.parameters import TlmmParameters


def lutram(**parameters):
    return TlmmParameters(**{"kind": "tlmm-lutram", "max_tokens": 1, "max_n": 8192,
                             **parameters})


def test_a_descriptor_is_an_address_and_a_length():
    assert (DESCRIPTOR_BITS, DESCRIPTOR_BYTES, MAX_DESCRIPTORS) == (64, 8, 64)


@pytest.mark.parametrize("engine,data_bits", [
    (lutram(), 512),  # 640-bit beats
    (lutram(rows=4, groups_per_cycle=2), 32),  # 40-bit beats
    (lutram(rows=8, groups_per_cycle=4), 128),  # 160-bit beats
])
def test_default_data_width_is_at_most_a_beat(engine, data_bits):
    parameters = GemvParameters(engine=engine)
    assert parameters.data_bits == GemvParameters.default_data_bits(engine) == data_bits
    assert parameters.beat_bits == engine.weight_beat_bits
    assert parameters.word_bytes == data_bits // 8


def test_port_widths():
    parameters = GemvParameters(engine=lutram(rows=4, groups_per_cycle=2, max_k=256),
                                data_bits=32)
    assert parameters.act_bits == 6 * 8 and parameters.result_bits == 4 * 17


@pytest.mark.parametrize("changes,message", [
    ({"engine": TlmmParameters()},
     r"^Engine must be TlmmParameters of kind tlmm-lutram, not TlmmParameters\(kind="
     r"<EngineKind.TLMM: 'tlmm'>"),
    ({"max_descriptors": 1}, r"^Descriptor table depth must be an integer of at least 2, "
                             r"not 1$"),
    ({"data_bits": 1024}, r"^AXI data bits must be an integer from 32 to 640, not 1024$"),
    ({"data_bits": 16}, r"^AXI data bits must be an integer from 32 to 640, not 16$"),
])
def test_parameter_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        GemvParameters(**{"engine": lutram(), **changes})
