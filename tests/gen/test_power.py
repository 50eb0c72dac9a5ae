"""The power estimate: the board's static power once, each part's resources x coefficients x
clock x activity, the measured activity or the assumed one, the energy per token."""

import pytest
from rich.console import Console

from ternforge.boards import RESOURCE_KEYS
from ternforge.boards.builtin import KV260
from ternforge.gen.power import ASSUMED_ACTIVITY, power_estimate, power_table

NONE = dict.fromkeys(RESOURCE_KEYS, 0)
MODULES = {"gemv": NONE | {"LUT": 10_000, "FF": 20_000, "URAM": 8},
           "vector": NONE | {"LUT": 4_000, "DSP": 10},
           "striper": NONE | {"LUT": 1_000}}
#: what :func:`ternforge.sim.activity.measure` gives (no striper measured)
MEASURED = {"source": "verilator-saif", "workload": {"prompt_tokens": 4}, "accelerator": {},
            "build": "b", "nets": "registers", "cycles": {"prefill": 100, "decode": 50},
            "activity": {"prefill": {"gemv": 0.1, "vector": 0.02},
                         "decode": {"gemv": 0.05, "vector": 0.01}},
            "mean": {"prefill": 0.04, "decode": 0.03}}


def _dynamic(used, activity):
    return sum(used[k] * KV260.dynamic_power_w_per_mhz[k] for k in RESOURCE_KEYS) \
        * KV260.clock_mhz * activity


def test_the_static_power_counts_once_and_the_total_is_static_plus_every_part():
    power = power_estimate(MODULES, KV260, measured=MEASURED, tokens_per_s={128: 40.0})
    assert power["estimate"] is True and "not sign-off" in power["label"]
    assert power["static_w"] == KV260.static_power_w and power["clock_hz"] == KV260.clock_hz
    assert power["coefficients_w_per_mhz"] == dict(KV260.dynamic_power_w_per_mhz)
    # the striper, not measured, takes the measured accelerator's mean, and says so
    assert power["activity"] == {"gemv": 0.05, "vector": 0.01, "striper": 0.03}
    assert power["activity_source"]["kind"] == "verilator-saif"
    assert power["activity_source"]["mean_for"] == ["striper"]
    assert power["activity_source"]["prefill_activity"] == {"gemv": 0.1, "vector": 0.02,
                                                            "striper": 0.04}
    for name, used in MODULES.items():
        assert power["dynamic_w"][name] == pytest.approx(
            _dynamic(used, power["activity"][name]), abs=1e-4)
    total = KV260.static_power_w + sum(power["dynamic_w"].values())
    assert power["total_w"] == pytest.approx(total, abs=1e-3)
    assert power["prefill_w"] > power["total_w"]  # the prefill's activity is higher
    assert power["energy_per_token_j"] == {128: pytest.approx(power["total_w"] / 40, abs=1e-4)}
    assert power["tokens_per_s"] == {128: 40.0}


def test_without_a_measurement_every_part_has_the_assumed_activity():
    power = power_estimate(MODULES, KV260)
    assert power["activity"] == dict.fromkeys(MODULES, ASSUMED_ACTIVITY)
    assert power["activity_source"] == {"kind": "assumed", "rate": 0.125}
    assert power["prefill_w"] == power["total_w"] and power["energy_per_token_j"] == {}
    expected = KV260.static_power_w + sum(_dynamic(used, 0.125) for used in MODULES.values())
    assert power["total_w"] == pytest.approx(expected, abs=1e-3)


def test_the_table_shows_each_part_the_static_power_the_total_and_the_energy():
    power = power_estimate(MODULES, KV260, measured=MEASURED, tokens_per_s={128: 40.0})
    console = Console(width=200, record=True)
    console.print(power_table(power, MODULES))
    text = console.export_text()
    assert "striper (mean)" in text and "measured on Verilator" in text
    assert f"{power['total_w']:.3f}" in text and "J per token, context 128" in text
