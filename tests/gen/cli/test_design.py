"""The command line: its outputs, and one-line errors with exit status 2 and no output."""

import json

import numpy as np
import pytest

from cli_support import invoke
from ternforge.gen.config import AttentionConfig, DesignConfig, EltwiseConfig, EngineConfig
from ternforge.gen.reports.design import check_fits
import ternforge.boards as boards
from ternforge.boards import get_board

SMALL = EngineConfig(group_size=3, groups_per_cycle=2, rows=4, max_k=256, max_tokens=2,
                     max_n=64)
# the attention units at D = 16 over two lanes (bfloat16 keeps them small)
SMALL_ATTENTION = AttentionConfig(format="bfloat16", head_dim=16, heads=2, kv_heads=1, rows=2,
                                  cols=4, prefill_lanes=2, decode_lanes=2, max_keys=256)


def save(path, array):
    np.save(path, array)
    return str(path)


@pytest.fixture
def job(tmp_path):
    rng = np.random.default_rng(5)
    return {"weights": save(tmp_path / "w.npy", rng.integers(-1, 2, (6, 20)).astype(np.int8)),
            "acts": save(tmp_path / "x.npy", rng.integers(-128, 128, (3, 20)).astype(np.int8)),
            "out": str(tmp_path / "y.npy")}


def small_args():
    return ["--group-size", "3", "--groups-per-cycle", "2", "--rows", "4", "--max-k", "256",
            "--max-tokens", "2", "--max-n", "64"]


def test_boards_lists_builtin_boards(capsys):
    code, out, _ = invoke(capsys, "boards")
    assert code == 0 and "kv260" in out and "zcu104" in out and "117,120" in out


class BrokenPlugin:
    name, value = "broken", "nosuchpackage.boards:BOARDS"

    def load(self):
        raise ModuleNotFoundError("No module named 'nosuchpackage'")


def test_a_broken_board_plugin_is_skipped_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(boards, "entry_points", lambda group: [BrokenPlugin()])
    warning = ("ternforge: warning: Board entry point 'broken' must load, not fail with "
               "ModuleNotFoundError: No module named 'nosuchpackage'; skipped\n")
    code, out, err = invoke(capsys, "boards")
    assert (code, err) == (0, warning) and "kv260" in out
    code, out, err = invoke(capsys, "plan", "--layer", "64,48")
    assert (code, err) == (0, warning) and "kv260" in out
    # only a command that asks for a board it might have held fails
    code, _, err = invoke(capsys, "plan", "--layer", "64,48", "--board", "mine")
    assert code == 2 and err.splitlines() == [warning.strip(), (
        "ternforge: Board must be one of kv260, zcu104, not 'mine' (1 broken board entry "
        "points skipped: Board entry point 'broken' must load, not fail with "
        "ModuleNotFoundError: No module named 'nosuchpackage')")]


@pytest.mark.parametrize("change,message", [
    ({"weights": np.full((6, 20), 2, np.int8)}, r"Weights must be in \{-1, 0, 1\}, not 2"),
    ({"weights": np.zeros((6, 20))}, "Weights must be an integer array, not of dtype 'float64'"),
    ({"acts": np.full((3, 20), 300, np.int16)}, r"Activations must be int8 \(-128..127\), not 300"),
    ({"acts": np.zeros((3, 21), np.int8)}, "Activations must have K = 20 columns like the "
                                           "weights, not 21"),
    ({"acts": np.zeros(20, np.int8)},
     r"Activations must be a non-empty 2-D array, not of shape \(20,\)"),
    ({"acts": np.zeros((0, 20), np.int8)},
     r"Activations must be a non-empty 2-D array, not of shape \(0, 20\)"),
    ({"weights": np.zeros((6, 20), "m8")}, "Weights must be an integer array, not of dtype"),
    ({"weights": np.zeros((6, 300), np.int8), "acts": np.zeros((3, 300), np.int8)},
     r"K must be at most the accumulators' max_k = 256 \(raise --max-k\), not 300"),
    ({"weights": np.zeros((65, 20), np.int8)}, r"N must be at most max_n = 64"),
])
def test_run_tlmm_rejects_bad_data(capsys, tmp_path, job, change, message):
    for name, array in change.items():
        job[name] = save(tmp_path / f"bad_{name}.npy", array)
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", job["weights"], "--acts",
                          job["acts"], "--out", job["out"], *small_args())
    assert code == 2
    assert err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("argv,message", [
    (["--group-size", "1"], "Group size must be an integer from 2 to 4, not 1"),
    (["--engine", "fast"], "Invalid value for '--engine'"),
])
def test_run_tlmm_rejects_bad_parameters(capsys, tmp_path, job, argv, message):
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", job["weights"], "--acts",
                          job["acts"], "--out", job["out"], *argv)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "y.npy").exists()


def test_run_tlmm_rejects_a_folder_as_output(capsys, tmp_path, job):
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", job["weights"], "--acts",
                          job["acts"], "--out", str(tmp_path))
    assert code == 2 and err == f"ternforge: Output must be a file, not the folder {str(tmp_path)!r}\n"


def test_outputs_under_a_file_are_refused_before_any_work(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    for command in (["generate"], ["sweep", "--param", "tlmm.rows=2"]):
        code, _, err = invoke(capsys, *command, "--out", str(tmp_path / "afile" / "sub"))
        assert code == 2 and "Output folder must be a folder, not the file" in err


def test_report_units_keeps_unrelated_files(capsys, tmp_path, monkeypatch):
    import ternforge.gen.cli.design as cli

    monkeypatch.setattr(cli, "design_report", lambda config, board, advance: {
        "modules": {}, "engines": {}, "total": {}, "utilization": {}, "board": board.name,
        "source": "test"})
    monkeypatch.setattr(cli, "resource_table", lambda report: "")
    mine = tmp_path / "out" / "verilog" / "my_top.v"
    mine.parent.mkdir(parents=True)
    mine.write_text("module my_top; endmodule\n")
    config = tmp_path / "small.toml"
    config.write_text(DesignConfig(tlmm=SMALL).to_toml())
    code, _, err = invoke(capsys, "report", "units", "--config", str(config), "--out",
                          str(tmp_path / "out"))
    assert code == 0, err
    assert mine.exists() and (tmp_path / "out" / "verilog" / "tlmm_engine.v").exists()


def test_sweep_rejects_a_repeated_parameter(capsys, tmp_path):
    code, _, err = invoke(capsys, "sweep", "--param", "tlmm.rows=2,3", "--param", "tlmm.rows=4",
                          "--out", str(tmp_path / "s"))
    assert code == 2 and "--param names must differ, not 'tlmm.rows' twice" in err


def test_run_tlmm_rejects_unreadable_file(capsys, tmp_path, job):
    (tmp_path / "junk.npy").write_text("not an array")
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", str(tmp_path / "junk.npy"),
                          "--acts", job["acts"], "--out", job["out"])
    assert code == 2 and "Weights file must be a readable .npy array" in err
    code, _, err = invoke(capsys, "run", "tlmm", "--weights", str(tmp_path / "missing.npy"),
                          "--acts", job["acts"], "--out", job["out"])
    assert code == 2 and "missing.npy" in err and not (tmp_path / "y.npy").exists()


@pytest.mark.verilator
@pytest.mark.parametrize("engine", ["tlmm-lutram", "tlmm", "adder"])
def test_run_tlmm_writes_exact_results(capsys, job, engine):
    code, out, err = invoke(capsys, "run", "tlmm", "--weights", job["weights"], "--acts",
                            job["acts"], "--out", job["out"], "--engine", engine, *small_args())
    assert code == 0, err
    y = np.load(job["out"])
    expected = np.load(job["acts"]).astype(np.int64) @ np.load(job["weights"]).T.astype(np.int64)
    assert y.dtype == np.int32 and np.array_equal(y, expected)
    assert "cycles:" in out


def test_generate_rejects_unknown_board_and_writes_nothing(capsys, tmp_path):
    code, _, err = invoke(capsys, "generate", "--board", "de10", "--out", str(tmp_path / "g"))
    assert code == 2 and err == "ternforge: Board must be one of kv260, zcu104, not 'de10'\n"
    assert not (tmp_path / "g").exists()


def test_generate_rejects_bad_config(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[tlmm]\ngroup_size = 5\n")
    code, _, err = invoke(capsys, "generate", "--config", str(config), "--out", str(tmp_path / "g"))
    assert code == 2 and "Group size must be an integer from 2 to 4, not 5" in err
    config.write_text("tlmm = 5\n")
    code, _, err = invoke(capsys, "generate", "--config", str(config), "--out", str(tmp_path / "g"))
    assert code == 2 and err == "ternforge: tlmm must be a table of parameters, not 5\n"
    code, _, err = invoke(capsys, "generate", "--config", str(tmp_path / "none.toml"),
                          "--out", str(tmp_path / "g"))
    assert code == 2 and "Configuration file must be readable TOML or JSON" in err
    assert not (tmp_path / "g").exists()


@pytest.mark.yosys
# (one worker for both: they synthesise the same units, and the second finds them cached)
@pytest.mark.xdist_group("units-synthesis")
def test_report_units_writes_verilog_and_report(capsys, tmp_path):
    config = tmp_path / "small.toml"
    eltwise = EltwiseConfig(format="bfloat16", hidden=64)
    config.write_text(DesignConfig(tlmm=SMALL, eltwise=eltwise,
                                   attention=SMALL_ATTENTION).to_toml())
    code, out, err = invoke(capsys, "report", "units", "--config", str(config), "--out",
                            str(tmp_path / "build"))
    assert code == 0, err
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    assert {"board", "modules", "total", "utilization", "source"} <= set(report)
    names = {"tlmm_engine", "tlmm_lutram_engine", "ternary_adder_engine", "gemv_top",
             "eltwise_unit", "attention_prefill", "attention_decode"}
    assert set(report["modules"]) == names
    assert report["modules"]["gemv_top"]["URAM"] == report["weight_plan"]["uram_count"]
    assert 0 < report["weight_plan"]["bandwidth_utilization"] <= 1
    assert report["eltwise"]["buffer_bits"] == 2 * 64 * 16
    assert report["eltwise"]["cycles_per_token"] == eltwise.parameters.cycles(1, 64)
    units = report["attention"]["units"]
    assert (units["prefill"]["rows"], units["decode"]["rows"]) == (2, 2)
    assert units["decode"]["cols"] == 8  # raised so that 2 rows x 8 keys / 2 lanes >= 7
    prefill_128, decode_256 = report["attention"]["cases"][1], report["attention"]["cases"][3]
    assert (prefill_128["tokens"], prefill_128["commands"]) == (128, 2 * 128 // 2)
    assert (decode_256["keys"], decode_256["commands"]) == (256, 1)
    loose = {"gemv_top", "eltwise_unit", "attention_prefill", "attention_decode"}
    for name in loose:
        assert (tmp_path / "build" / "verilog" / f"{name}.v").exists()
    for name in names - loose:
        assert (tmp_path / "build" / "verilog" / f"{name}.v").read_text().startswith("/*")
        assert set(report["modules"][name]) == {"LUT", "FF", "CARRY8", "DSP", "BRAM36", "URAM",
                                                "levels", "fmax_mhz", "path"}
        assert report["modules"][name]["LUT"] > 0
    for name, entry in report["modules"].items():  # every module's deepest path, timed
        assert entry["levels"] > 0 and entry["fmax_mhz"] > 0
        assert entry["path"]["from"] and entry["path"]["to"] and entry["path"]["cells"]
    timing = report["timing"]
    assert timing["estimate"] is True and timing["clock_mhz"] == 180
    assert timing["worst"]["module"] in names and timing["max_levels"] == 10
    assert {entry["module"] for entry in timing["too_deep"]} == {
        name for name, entry in report["modules"].items() if entry["fmax_mhz"] < 180}
    assert "Fmax MHz" in out
    assert report["total"]["LUT"] == sum(m["LUT"] for m in report["modules"].values())
    assert report["source"] == "yosys-synth_xilinx" and "tlmm_lutram_engine" in out
    power = report["power"]
    assert power["estimate"] is True and set(power["dynamic_w"]) == names
    assert power["activity_source"]["kind"] == "assumed"  # separate units: nothing measured
    assert power["total_w"] == pytest.approx(power["static_w"] + sum(power["dynamic_w"].values()),
                                              abs=1e-3)


@pytest.mark.yosys
def test_sweep_writes_one_line_per_point(capsys, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(DesignConfig(tlmm=SMALL).to_toml())
    code, out, err = invoke(capsys, "sweep", "--config", str(config), "--param",
                            "tlmm.group_size=2,3", "--out", str(tmp_path / "sweep"))
    assert code == 0, err
    lines = [json.loads(line) for line in
             (tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()]
    assert [line["params"] for line in lines] == [{"tlmm.group_size": 2}, {"tlmm.group_size": 3}]
    for line in lines:
        assert line["tlmm"]["macs_per_cycle"] == line["params"]["tlmm.group_size"] * 2 * 4
        assert line["tlmm"]["lut_per_mac_per_cycle"] > 0


@pytest.mark.yosys
def test_sweep_of_attention_lanes_trades_resources_for_time(capsys, tmp_path):
    lanes = ("attention.prefill_lanes", "attention.decode_lanes")
    config = tmp_path / "small.toml"
    config.write_text(DesignConfig(tlmm=SMALL, attention=SMALL_ATTENTION).to_toml())
    code, out, err = invoke(capsys, "sweep", "--config", str(config), "--param",
                            f"{lanes[0]}=1,2", "--param", f"{lanes[1]}=1,2", "--out",
                            str(tmp_path / "sweep"))
    assert code == 0, err
    lines = [json.loads(line) for line in
             (tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()]
    one, two = lines[0], lines[3]  # the grid's corners: one lane each, two lanes each
    assert (one["params"], two["params"]) == (dict.fromkeys(lanes, 1), dict.fromkeys(lanes, 2))
    assert "tlmm" not in one and set(one["fits"]) == {"attention_prefill", "attention_decode"}
    for unit in ("attention_prefill", "attention_decode"):
        assert two[unit]["LUT"] > one[unit]["LUT"]
    for slow, fast in zip(one["attention_cases"], two["attention_cases"]):
        assert slow["phase"] == fast["phase"] and fast["cycles"] < slow["cycles"]
    assert "Attention units" in out


def test_sweep_rejects_unknown_parameter(capsys, tmp_path):
    code, _, err = invoke(capsys, "sweep", "--param", "tlmm.speed=1,2", "--out",
                          str(tmp_path / "s"))
    assert code == 2
    assert ("Parameter must be board or <section>.<name> of tlmm, eltwise, attention, accelerator, not "
            "'tlmm.speed'") in err
    assert not (tmp_path / "s").exists()


def test_design_larger_than_board_is_refused():
    board = get_board("kv260")
    report = {"modules": {"tlmm_engine": {"LUT": 200_000, "FF": 1, "CARRY8": 0, "DSP": 0,
                                          "BRAM36": 0, "URAM": 0}}}
    with pytest.raises(ValueError, match="tlmm_engine does not fit kv260: LUT"):
        check_fits(report, board)
