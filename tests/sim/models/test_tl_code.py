"""Golden model of the TL code and the table-lookup matmul."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from ternforge.sim.models import tl_code


@pytest.mark.parametrize("group_size,bits,entries", [(2, 4, 5), (3, 5, 14), (4, 7, 41)])
def test_code_sizes(group_size, bits, entries):
    assert tl_code.code_bits(group_size) == bits
    assert tl_code.table_entries(group_size) == entries


def ternary(shape):
    return hnp.arrays(np.int8, shape, elements=st.integers(-1, 1))


@st.composite
def problems(draw):
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 40)), draw(st.integers(1, 6))
    weights = draw(ternary((n, k)))
    acts = draw(hnp.arrays(np.int8, (m, k), elements=st.integers(-128, 127)))
    return acts, weights, draw(st.sampled_from(tl_code.GROUP_SIZES))


@settings(max_examples=200, deadline=None)
@given(problems())
def test_pack_unpack_is_identity(problem):
    _, weights, group_size = problem
    codes = tl_code.pack(weights, group_size)
    assert codes.shape == (len(weights), -(-weights.shape[1] // group_size))
    assert np.all(codes < 1 << tl_code.code_bits(group_size))
    np.testing.assert_array_equal(tl_code.unpack(codes, group_size, weights.shape[1]), weights)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_table_lookup_equals_integer_matmul(problem):
    acts, weights, group_size = problem
    expected = acts.astype(np.int64) @ weights.astype(np.int64).T
    result = tl_code.tlmm(acts, tl_code.pack(weights, group_size), group_size)
    np.testing.assert_array_equal(result, expected)


def test_every_pattern_has_one_code():
    for group_size in tl_code.GROUP_SIZES:
        patterns = np.array(np.meshgrid(*[[-1, 0, 1]] * group_size)).reshape(group_size, -1).T
        codes = tl_code.pack(patterns, group_size)[:, 0]
        assert len(set(codes.tolist())) == 3**group_size
        assert tl_code.pack(np.zeros((1, group_size), np.int8), group_size)[0, 0] == 0


@pytest.mark.parametrize("k", [1, 3, 1536, 4096, 8192])
@pytest.mark.parametrize("weight", [1, -1])
def test_accumulator_width_covers_worst_case(k, weight):
    width = tl_code.accumulator_width(k)
    acts = np.full((1, k), -128, np.int8)
    worst = int(tl_code.tlmm(acts, tl_code.pack(np.full((1, k), weight, np.int8), 3), 3)[0, 0])
    assert worst == -128 * k * weight
    assert -(1 << (width - 1)) <= worst < 1 << (width - 1)
    # and one bit fewer would not do
    low, high = tl_code.accumulator_bound(k)
    assert low < -(1 << (width - 2)) or high >= 1 << (width - 2)


@pytest.mark.parametrize("bad,message", [
    (np.array([[2]]), r"Weights must be in \{-1, 0, 1\}, not 2"),
    (np.array([[0.5]]), r"Weights must be integers, not of dtype 'float64'"),
    (np.array([1, 0]), r"Weights must be a 2-D \(N, K\) array, not of shape \(2,\)"),
])
def test_pack_rejects_bad_weights(bad, message):
    with pytest.raises(ValueError, match=message):
        tl_code.pack(bad, 3)


@pytest.mark.parametrize("group_size", [1, 5, "3", 3.0])
def test_group_size_rule(group_size):
    with pytest.raises(ValueError, match=rf"Group size must be an integer from 2 to 4, not {group_size!r}"):
        tl_code.code_bits(group_size)
