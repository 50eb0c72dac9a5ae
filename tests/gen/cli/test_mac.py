"""``ternforge run mac`` and ``ternforge report mac``: results, reports and bad input."""

import json

import numpy as np
import pytest

from cli_support import invoke


@pytest.mark.verilator
def test_run_mac_writes_exact_results(capsys, tmp_path):
    rng = np.random.default_rng(3)
    a, b = rng.integers(-128, 128, (5, 11)), rng.integers(-128, 128, (11, 3))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    code, out, err = invoke(capsys, "run", "mac", "--arch", "matrix2d", "--variant",
                            "transformed", "--size", "2", "--a", str(tmp_path / "a.npy"),
                            "--b", str(tmp_path / "b.npy"), "--out", str(tmp_path / "c.npy"))
    assert code == 0, err
    c = np.load(tmp_path / "c.npy")
    assert c.dtype == np.int64 and np.array_equal(c, a @ b)
    assert "cycles: 84 (cycle model 84)" in out  # 6 tiles of 11 beats, 1 flush, 2 rows


@pytest.mark.parametrize("a,b,extra,message", [
    (np.full((2, 3), 128), np.zeros((3, 2), int), [],
     "A must hold signed 8-bit integers (-128 to 127), not 128"),
    (np.zeros((2, 3), int), np.full((3, 2), -1), ["--unsigned"],
     "B must hold unsigned 8-bit integers (0 to 255), not -1"),
    (np.zeros((2, 3), int), np.zeros((4, 2), int), [],
     "B must have as many rows as A has columns (3), not 4"),
    (np.zeros((2, 3), int), np.zeros((3, 2), int), ["--arch", "cube3d", "--size", "3"],
     "Array size must be an even integer of at least 2 for the 3D-Cube, not 3"),
    (np.zeros((2, 3), np.float32), np.zeros((3, 2), int), [],
     "A must be an integer array, not of dtype 'float32'"),
])
def test_run_mac_rejects_bad_input(capsys, tmp_path, a, b, extra, message):
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    arch = [] if "--arch" in extra else ["--arch", "systolic"]
    code, _, err = invoke(capsys, "run", "mac", *arch, *extra, "--a", str(tmp_path / "a.npy"),
                          "--b", str(tmp_path / "b.npy"), "--out", str(tmp_path / "c.npy"))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not (tmp_path / "c.npy").exists()


@pytest.mark.yosys
def test_report_mac_compares_every_architecture(capsys, tmp_path):
    out = tmp_path / "mac.json"
    code, text, err = invoke(capsys, "report", "mac", "--size", "2", "--width", "4",
                             "--no-dsp", "--out", str(out))
    assert code == 0, err
    report = json.loads(out.read_text())
    assert (report["size"], report["width"], report["dsp"]) == (2, 4, False)
    assert set(report["engines"]) == {"systolic", "cube3d", "addertree", "matrix2d"}
    for arch, entry in report["engines"].items():
        for variant in ("baseline", "transformed", "booth"):
            assert entry[variant]["LUT"] > 0 and entry[variant]["levels"] > 0
            assert entry[variant]["DSP"] == 0 and entry[variant]["multipliers"] == 4
        for variant in ("transformed", "booth"):
            assert entry["gain"][variant]["LUT"] == round(entry["baseline"]["LUT"]
                                                          / entry[variant]["LUT"], 3)
        assert entry["paper_area_gain"] > 1
    assert "LUT gain" in text and "paper area gain" in text


def test_report_mac_rejects_bad_size_before_any_work(capsys, tmp_path):
    code, _, err = invoke(capsys, "report", "mac", "--size", "5", "--out",
                          str(tmp_path / "mac.json"))
    assert (code, err) == (2, "ternforge: Array size must be an even integer of at least 2 "
                              "for the 3D-Cube, not 5\n")
    assert not (tmp_path / "mac.json").exists()
