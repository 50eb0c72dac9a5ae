"""``ternforge power``: the estimate's table and JSON from the parts' resources (Yosys stood
in for) and the measured activity (stood in for: tests/sim/test_activity.py measures it)."""

import json

import pytest

import ternforge.gen.accelerator as generator
from cli_support import invoke
from ternforge.boards import RESOURCE_KEYS
from ternforge.boards.builtin import KV260

PARTS = ("controller", "interconnect", "striper", "copy", "vector", "gemv", "rope",
         "attention")
MEASURED = {"source": "verilator-saif", "workload": {"prompt_tokens": 4, "decode_steps": 1},
            "accelerator": {}, "build": "b", "nets": "registers",
            "cycles": {"prefill": 100, "decode": 50},
            "activity": {phase: dict.fromkeys(PARTS, 0.05) for phase in ("prefill", "decode")},
            "mean": {"prefill": 0.05, "decode": 0.05}}


@pytest.fixture
def stand_ins(monkeypatch):
    monkeypatch.setattr(generator, "synthesize", lambda text, *, top, levels=False: {
        **dict.fromkeys(RESOURCE_KEYS, 0), "LUT": 1_000, "FF": 2_000, "cells": {}})
    monkeypatch.setattr(generator, "measure_activity", lambda: MEASURED)


def test_power_prints_each_part_and_writes_the_estimate(capsys, tmp_path, stand_ins):
    code, out, err = invoke(capsys, "power", "--model", "tiny", "--jobs", "1", "--json",
                            str(tmp_path / "power.json"))
    assert code == 0, err
    power = json.loads((tmp_path / "power.json").read_text())
    assert power["estimate"] is True and list(power["dynamic_w"]) == list(PARTS)
    dynamic = (1_000 * 2.5e-7 + 2_000 * 1e-7) * KV260.clock_hz / 1e6 * 0.05  # each part, W
    assert power["dynamic_w"]["gemv"] == pytest.approx(dynamic, abs=1e-4)
    assert power["total_w"] == pytest.approx(KV260.static_power_w + 8 * dynamic, abs=1e-3)
    assert power["energy_per_token_j"] == {}  # (tiny is outside the default's cycle model)
    assert "attention" in out and f"{power['total_w']:.2f} W estimated" in out


def test_power_refuses_bad_arguments_and_writes_nothing(capsys, tmp_path, stand_ins):
    code, _, err = invoke(capsys, "power", "--jobs", "0", "--json", str(tmp_path / "p.json"))
    assert (code, err) == (2, "ternforge: --jobs must be an integer from 1 to 256, not 0\n")
    assert not (tmp_path / "p.json").exists()
