"""The accelerator's parameters: the DDR bytes each unit's instruction moves (the units'
``ddr_bytes``, which ``perf`` adds up for the roofline), counted by hand on the machine tests'
128-bit bus (16-byte words, four float32 a word)."""

import pytest

from ternforge.tb.controller_tb import ACCELERATOR as P
from ternforge.hdl.accelerator.parameters import VectorOp
from ternforge.hdl.gemv.parameters import DESCRIPTOR_BYTES

WORD = 16


@pytest.mark.parametrize("op, tokens, length, words", [
    # a (20 elements: 5 words), b (the gain again a token: 3 words twice), y (5 words)
    (VectorOp.RMSNORM, 2, 10, 5 + 2 * 3 + 5),
    # a (5 words), the int8 codes (20 bytes: 2 words), a scale a token (1 word)
    (VectorOp.QUANTISE, 2, 10, 5 + 2 + 1),
    # a (24 accumulators: 6 words), a scale a token (1 word), y (6 words)
    (VectorOp.DEQUANTISE, 3, 8, 6 + 1 + 6),
    (VectorOp.RESIDUAL, 1, 9, 3 + 3 + 3),
    (VectorOp.GATED, 2, 4, 2 + 2 + 2),
])
def test_a_vector_instruction_moves_its_operands_whole_words(op, tokens, length, words):
    fields = {"op": op, "tokens": tokens, "length": length}
    assert P.instruction_bytes("vector", fields) == WORD * words


def test_each_units_instruction_bytes():
    assert P.instruction_bytes("copy", {"words": 5}) == 2 * 5 * WORD
    # RoPE: each of 2 x 3 rows reads its two halves, cosines and sines and writes two
    # halves, 6 elements each: 2 words
    assert P.instruction_bytes("rope", {"tokens": 2, "heads": 3, "half": 6}) == \
        2 * 3 * 6 * 2 * WORD
    g = P.gemv
    beats = g.weight_beats(100, 50)
    table = -(-3 * DESCRIPTOR_BYTES // WORD)
    assert P.instruction_bytes("gemv", {"n": 100, "k": 50, "descriptor_count": 3,
                                        "weight_beats": beats}) == WORD * (
        table + -(-beats * g.beat_bits // 128) + -(-50 // WORD) + -(-4 * 100 // WORD))
    d = P.attention.engine.head_dim
    # two query rows read and two output rows written, nine cached key-value rows read, the
    # appended row read and written
    assert P.instruction_bytes("attention", {"rows": 2, "keys": 10, "append": 1}) == \
        2 * 2 * 4 * d + 9 * 8 * d + 2 * 8 * d
    with pytest.raises(ValueError, match="^Unit must be one of copy, vector, gemv, attention, "
                                         "rope, not 'fft'$"):
        P.instruction_bytes("fft", {})
