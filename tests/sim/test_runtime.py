"""The runtime: an image laid out for a buffer at any address (a board's), every address in
its programs and descriptor tables the buffer's; instruction fields refused if they do not
fit."""

import numpy as np
import pytest

from ternforge.hdl.accelerator.attention import ATTENTION_INSTRUCTION
from ternforge.hdl.accelerator.gemv import GEMV_INSTRUCTION
from ternforge.hdl.accelerator.model import preset
from ternforge.hdl.accelerator.parameters import VECTOR_INSTRUCTION, AcceleratorParameters
from ternforge.hdl.accelerator.rope import ROPE_INSTRUCTION
from ternforge.hdl.accelerator.top import COPY_INSTRUCTION
from ternforge.sim.models.bitnet import random_weights
from ternforge.sim.runtime import UNITS, Image, Program, decode_instruction, generation
from ternforge.sim.runtime import _fields

TINY = preset("tiny")
PARAMETERS = AcceleratorParameters.for_simulation(TINY, context=32)
BASE = 0x6000_0000
#: each unit's instruction and the fields that hold addresses
ADDRESSES = {
    "copy": (COPY_INSTRUCTION, {"source", "destination"}),
    "vector": (VECTOR_INSTRUCTION, {"a", "b", "y", "z"}),
    "gemv": (GEMV_INSTRUCTION, {"descriptors", "acts", "results"}),
    "rope": (ROPE_INSTRUCTION, {"x", "cos", "sin", "y"}),
    "attention": (ATTENTION_INSTRUCTION, {"base", "q", "k", "v", "out"}),
}


def _instructions(image, address, length):
    units = {index: name for name, index in UNITS.items()}
    raw = image.get(address, 32 * length)
    for i in range(length):
        word = int.from_bytes(raw[32 * i:32 * (i + 1)], "little")
        unit = units[word & 15]
        layout, addresses = ADDRESSES[unit]
        fields = {name: word >> 5 + offset & (1 << width) - 1
                  for name, offset, width in _fields(layout)}
        yield unit, fields, addresses


def test_an_image_for_a_buffer_elsewhere_is_the_same_image_relocated():
    weights = random_weights(TINY, seed=1)
    args = dict(prompt_tokens=3, new_tokens=2, gemv=PARAMETERS.gemv,
                attention=PARAMETERS.attention, data_bits=128, memory_bytes=1 << 22)
    (here, job), (there, moved) = generation(weights, **args), generation(weights, base=BASE,
                                                                         **args)
    assert [(n, a + BASE, b) for n, a, b in here.regions] == there.regions
    assert moved["input"] == job["input"] + BASE and moved["final"] == job["final"] + BASE
    programs = [(job["prefill"], moved["prefill"])] + list(zip(job["decode"], moved["decode"]))
    tables = set()
    for (address, length), (moved_address, moved_length) in programs:
        assert (moved_address, moved_length) == (address + BASE, length)
        pairs = zip(_instructions(here, address, length),
                    _instructions(there, moved_address, length))
        for (unit, fields, addresses), (_, moved_fields, _) in pairs:
            for name, value in fields.items():
                if name in addresses and value:  # (0: a field the instruction leaves unused)
                    assert moved_fields[name] == value + BASE, (unit, name)
                else:
                    assert moved_fields[name] == value, (unit, name)
            if unit == "gemv":
                tables.add((fields["descriptors"], fields["descriptor_count"]))
    assert tables
    for table, count in tables:  # per load: its address, its length in words
        entries = np.frombuffer(here.get(table, 8 * count), "<u4").reshape(count, 2)
        moved = np.frombuffer(there.get(table + BASE, 8 * count), "<u4").reshape(count, 2)
        assert np.array_equal(moved[:, 0], entries[:, 0] + BASE)
        assert np.array_equal(moved[:, 1], entries[:, 1])


def test_a_field_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match=r"^Field tokens of a vector instruction must fit 16 "
                                         r"bits, not 65536$"):
        Program().add("vector", VECTOR_INSTRUCTION, {"tokens": 1 << 16})
    with pytest.raises(ValueError, match="^Image base must be a multiple of 64, not 0x20$"):
        Image(1024, base=0x20)


def test_an_instruction_decodes_to_what_was_added():
    program = Program(words=2, word_bytes=16)
    fields = {"rows": 2, "keys": 10, "position": 9, "append": 1, "base": 0x4000,
              "q": 0x1234_5640, "q_stride": 256, "out": 0xFFFF_FFC0}
    program.add("attention", ATTENTION_INSTRUCTION, fields, wait=False)
    program.add("copy", COPY_INSTRUCTION, {"words": 3})
    unit, wait, decoded = decode_instruction(program.instructions[0])
    assert (unit, wait) == ("attention", False)
    assert decoded == {name: fields.get(name, 0) for name in decoded}
    assert decode_instruction(program.instructions[1]) == (
        "copy", True, {"source": 0, "destination": 0, "words": 3})
