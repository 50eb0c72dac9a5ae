"""``ternforge test``: the testbenches at a user's configuration, with waves, JUnit XML, seeds,
and the first mismatch of a wrong result; bad input is one line, exit 2 and nothing
written."""

import xml.etree.ElementTree as ET

import pytest

from cli_support import invoke
from ternforge.gen.accelerator import accelerator_parameters
from ternforge.gen.config import AcceleratorConfig, AttentionConfig, DesignConfig, EltwiseConfig
from ternforge.gen.testbenches import UNITS, benches
from ternforge.hdl.accelerator.model import preset
from ternforge.sim.cocotb.check import case_seed, first_mismatch
from ternforge.tb.controller_tb import WIDE

#: a configuration changed from the default in every section ``ternforge test`` reads: a
#: short element-wise unit, small bfloat16 attention units, and the accelerator of the
#: machine tests' ``WIDE`` build (four vector lanes, a 4 x 4 tile, a context of 32), so that
#: its build is theirs
CONFIG = DesignConfig(
    eltwise=EltwiseConfig(hidden=64),
    attention=AttentionConfig(format="bfloat16", head_dim=16, heads=2, kv_heads=1, rows=2,
                              cols=4, prefill_lanes=2, decode_lanes=2, max_keys=256),
    accelerator=AcceleratorConfig(attention_rows=4, attention_cols=4, attention_lanes=2,
                                  context=32, vector_lanes=4))


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text(CONFIG.to_toml())
    return path


def test_the_accelerator_of_the_configuration_is_the_machine_tests_wide_build():
    assert accelerator_parameters(CONFIG, preset("tiny")) == WIDE


def test_every_unit_has_a_testbench_in_order():
    assert [bench.unit for bench in benches(CONFIG)] == list(UNITS)
    assert [bench.unit for bench in benches(CONFIG, ["eltwise", "tlmm"])] == \
        ["tlmm", "eltwise"]


@pytest.mark.verilator
def test_a_changed_configuration_runs_green_with_waves_and_junit(capsys, tmp_path,
                                                                 config_file):
    out, junit = tmp_path / "out", tmp_path / "out.xml"
    code, stdout, err = invoke(capsys, "test", "eltwise", "attention-decode", "--config",
                               str(config_file), "--waves", "--junit", str(junit), "--out",
                               str(out), "--seed", "3")
    assert (code, err) == (0, ""), stdout
    assert "ternforge test (seed 3)" in stdout
    for unit in ("eltwise", "attention-decode"):
        vcd = out / f"{unit}.vcd"
        assert f"waves: {vcd}" in stdout
        assert vcd.read_text()[:200].lstrip().startswith("$")  # a VCD header
        assert "PASS=" in (out / f"{unit}.log").read_text()
    root = ET.parse(junit).getroot()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == ["eltwise", "attention-decode"]
    assert root.get("failures") == "0" and int(root.get("tests")) >= 10
    for suite in suites.values():
        assert suite.find("properties/property").attrib == {"name": "seed", "value": "3"}
        assert int(suite.get("tests")) == len(suite.findall("testcase")) > 3


@pytest.mark.verilator
def test_the_accelerator_generates_the_golden_models_tokens_at_the_configuration(
        capsys, tmp_path, config_file):
    junit = tmp_path / "out.xml"
    code, stdout, err = invoke(capsys, "test", "accelerator", "--config", str(config_file),
                               "--junit", str(junit), "--out", str(tmp_path / "out"))
    assert (code, err) == (0, ""), stdout
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [case.get("name") for case in cases] == [
        "generation without stalls", "generation under random stalls of 0.3"]
    assert all(case.find("failure") is None for case in cases)


@pytest.mark.verilator
def test_a_wrong_result_fails_with_the_first_mismatch_and_its_seed(capsys, tmp_path,
                                                                   config_file):
    """The checkers' self-test corrupts the model's expectation: every case fails, the first
    mismatch is named, the seed to reproduce it printed, and the exit status is 1."""
    junit = tmp_path / "out.xml"
    code, stdout, _ = invoke(capsys, "test", "eltwise", "--config", str(config_file),
                             "--waves", "--inject-fault", "--seed", "5", "--junit", str(junit),
                             "--out", str(tmp_path / "out"))
    assert code == 1
    assert "FAIL" in stdout
    assert "first mismatch at index [0, 0] (value 0 in order): expected 0x" in stdout
    assert f"reproduce with: ternforge test eltwise --seed 5 --config {config_file}" in stdout
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert failures and all("first mismatch" in f.get("message") for f in failures)
    assert "--seed 5" in failures[0].text


def test_the_first_mismatch_names_the_value_and_both_sides():
    assert first_mismatch("y", [[1, 2], [3, 4]], [[1, 2], [3, 4]]) is None
    assert first_mismatch("y", [[1, 2], [5, 6]], [[1, 2], [3, 4]]) == (
        "y: first mismatch at index [1, 0] (value 2 in order): expected 3, got 5; 2 of 4 "
        "differ")
    assert first_mismatch("o", [0x3F800000], [0x40000000], fmt="float32") == (
        "o: first mismatch at index [0] (value 0 in order): expected 0x40000000 (2), got "
        "0x3f800000 (1); 1 of 1 differ")
    # NaN against NaN of another pattern is the same result
    assert first_mismatch("o", [0x7FC00001], [0x7FC00000], fmt="float32") is None
    assert first_mismatch("y", [1, 2], [1, 2, 3]) == "y: shape (2,), expected (3,)"


def test_seed_zero_keeps_each_cases_own_data_and_others_differ():
    assert [case_seed(0, case) for case in (0, 3, 11)] == [0, 3, 11]
    assert case_seed(7, 3) == case_seed(7, 3) != case_seed(8, 3) != 3


@pytest.mark.parametrize("argv,message", [
    (["test", "nosuch"], r"Invalid value for '\[UNIT\]\.\.\.': 'nosuch' is not one of 'tlmm'"),
    (["test", "eltwise", "--seed", "-1"],
     "Seed must be an integer from 0 to 4294967295, not -1"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(capsys, tmp_path, monkeypatch,
                                                               argv, message):
    import re

    monkeypatch.chdir(tmp_path)
    code, _, err = invoke(capsys, *argv, "--junit", "j.xml")
    assert code == 2 and len(err.splitlines()) == 1 and re.search(message, err), err
    assert list(tmp_path.iterdir()) == []
