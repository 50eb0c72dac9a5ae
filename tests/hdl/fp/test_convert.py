"""The conversion from floating point to integers in the Amaranth simulator, against the
arithmetic: round to nearest, ties to even, saturating, NaN to 0, with random stalls."""

import numpy as np
import pytest

from ternforge.hdl.fp.convert import FloatToInt
from ternforge.hdl.fp.parameters import ConversionParameters

from stream_sim import run_streams


def _expected(bits, width):
    """What the conversion means: numpy's ``rint`` (ties to even), saturated."""
    values = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    with np.errstate(invalid="ignore"):
        rounded = np.clip(np.rint(np.nan_to_num(values, nan=0.0, posinf=2.0 ** 80,
                                                neginf=-2.0 ** 80)), low, high)
    return rounded.astype(np.int64)


def _stimulus(seed):
    rng = np.random.default_rng(seed)
    near = np.concatenate([rng.uniform(-300, 300, 400), np.arange(-260, 260) + 0.5,
                           rng.uniform(-3e9, 3e9, 100)]).astype(np.float32)
    special = [0x7FC00000, 0x7F800000, 0xFF800000, 0x80000000, 0, 1, 0x4F000000, 0xCF000000,
               0x3F000000, 0xBF000000, 0x3EFFFFFF, 0x3FC00000]
    return np.concatenate([rng.integers(0, 2 ** 32, 400), near.view(np.uint32), special]
                          ).astype(np.uint64)


@pytest.mark.parametrize("width", [8, 32])
def test_float32_to_int_rounds_ties_to_even_and_saturates(width):
    dut = FloatToInt(ConversionParameters("float_to_int", "float32", width, 1))
    bits = _stimulus(width)
    beats = [{"value": int(b), "tag": i % 2} for i, b in enumerate(bits)]
    got, _ = run_streams(dut, {"source": beats}, {"result": len(beats)}, stall=0.3, seed=width)
    values = np.array([int(beat.value) for beat in got["result"]])
    expected = _expected(bits, width)
    wrong = np.flatnonzero(values != expected)
    assert not len(wrong), (f"{len(wrong)} wrong, first {bits[wrong[0]]:#010x}: expected "
                            f"{expected[wrong[0]]}, got {values[wrong[0]]}")
    assert [int(beat.tag) for beat in got["result"]] == [i % 2 for i in range(len(bits))]
