"""The checker every testbench shares: results against the model, element by element, with
the first mismatch named; and the seeds a testbench's cases draw their data and stalls from.

A failure says which element of which result differs first, in the order the hardware
delivers them (the flat index is the beat count for one value a beat), what the model
expected and what the hardware gave, and how many differ, so the cocotb log and the JUnit
XML carry everything needed to start debugging.

Seeds: a run has one seed (``ternforge test --seed``; the pytest suite's fixed points run
seed 0). Each case of a testbench has its own number; :func:`case_seed` mixes the two, and
seed 0 keeps the case's own number, so the suite's data is the same as before seeds existed.

A self-test of the checker: with :data:`FAULT_VARIABLE` set in the simulator's environment,
:func:`assert_same` corrupts one value of every expectation (the first element's lowest bit)
before comparing, so a run proves that a wrong result is caught and reported
(``ternforge test --inject-fault``).
"""

from __future__ import annotations

import os

import numpy as np

from ..models import fp as fm

__all__ = ["FAULT_VARIABLE", "case_seed", "first_mismatch", "assert_same", "assert_cycles",
           "check_generation"]

#: set (to anything but empty) to corrupt every expectation: the checker's self-test
FAULT_VARIABLE = "TERNFORGE_TB_FAULT"


def case_seed(seed: int, case: int) -> int:
    """The seed of case ``case`` in a run of seed ``seed``: ``case`` itself for seed 0 (the
    pytest suite's fixed data), otherwise a number drawn from both."""
    if not seed:
        return case
    return int(np.random.SeedSequence([seed, case]).generate_state(1)[0])


def _show(value, fmt) -> str:
    if fmt is None:
        return repr(value.item() if hasattr(value, "item") else value)
    as_float = fm.from_bits(np.asarray(value), fmt).astype(np.float64)
    width = fm.bits_dtype(fmt).itemsize * 2
    return f"0x{int(value):0{width}x} ({float(as_float):.9g})"


def first_mismatch(what: str, got, expected, *, fmt=None) -> str | None:
    """``None`` if ``got`` equals ``expected`` everywhere (for a float format ``fmt``, bit
    patterns equal or both NaN), otherwise one line naming the first element that differs
    (its index and flat position), the expected and the given value, and how many differ."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return f"{what}: shape {got.shape}, expected {expected.shape}"
    ok = fm.same(got, expected, fmt) if fmt is not None else got == expected
    wrong = np.argwhere(~np.asarray(ok).reshape(got.shape))
    if not len(wrong):
        return None
    index = tuple(int(i) for i in wrong[0])
    flat = int(np.ravel_multi_index(index, got.shape)) if got.ndim else 0
    return (f"{what}: first mismatch at index {list(index)} (value {flat} in order): "
            f"expected {_show(expected[index], fmt)}, got {_show(got[index], fmt)}; "
            f"{len(wrong)} of {got.size} differ")


def _faulty(expected: np.ndarray) -> np.ndarray:
    """``expected`` with its first element's lowest bit flipped (the checker's self-test)."""
    corrupted = np.array(expected, copy=True)
    if corrupted.size:
        flat = corrupted.reshape(-1)
        flat[0] = (flat[0] ^ 1) if flat.dtype.kind in "iub" else flat[0] + 1
    return corrupted


def assert_same(what: str, got, expected, *, fmt=None) -> None:
    """Raise ``AssertionError`` with :func:`first_mismatch`'s line unless ``got`` equals
    ``expected`` (see there); with :data:`FAULT_VARIABLE` set, ``expected`` is corrupted
    first."""
    expected = np.asarray(expected)
    if os.environ.get(FAULT_VARIABLE):
        expected = _faulty(expected)
    problem = first_mismatch(what, got, expected, fmt=fmt)
    if problem:
        raise AssertionError(problem)


def assert_cycles(what: str, got: int, expected: int) -> None:
    """Raise ``AssertionError`` unless the measured cycles ``got`` are the cycle model's
    ``expected``."""
    if got != expected:
        raise AssertionError(f"{what}: expected {expected:,} cycles (the cycle model), got "
                             f"{got:,}")


def check_generation(result: dict, tokens: list, states: list, *, stalled: bool) -> None:
    """The checker of a generation (:func:`ternforge.sim.machine.generate`'s ``result``): the
    tokens and every chosen-from hidden state (float32 bit patterns) the golden model's;
    without stalls, each step's cycles the cycle model's (under stalls, more), wherever the
    cycle model covers the model's layers."""
    assert_same("tokens [step]", result["tokens"], tokens)
    got = np.array([np.frombuffer(bytes.fromhex(h), "<u4") for h in result["hidden"]])
    assert_same("final hidden states [step, element]", got,
                np.array([np.asarray(s, "<u4") for s in states]), fmt="float32")
    if result.get("unmodeled"):
        return
    measured = [result["prefill_cycles"], *result["decode_cycles"]]
    predicted = [result["predicted_prefill_cycles"], *result["predicted_decode_cycles"]]
    for step, (got_cycles, model) in enumerate(zip(measured, predicted)):
        what = "the prefill" if step == 0 else f"decode step {step}"
        if stalled:
            assert got_cycles > model, f"{what}: {got_cycles:,} cycles under stalls, not more " \
                                       f"than the model's {model:,} without"
        else:
            assert_cycles(what, got_cycles, model)
