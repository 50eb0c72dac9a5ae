import pytest

from ternforge.gen.timing import (DelayModel, delay_model, design_timing, path_timing,
                                  speed_grade)


@pytest.mark.parametrize("part,grade", [("xck26-sfvc784-2LV-c", "-2LV"),
                                        ("xczu7ev-ffvc1156-2-e", "-2"),
                                        ("xczu9eg-ffvb1156-1-i", "-1"),
                                        ("xczu9eg-ffvb1156-3-e", "-3")])
def test_speed_grade(part, grade):
    assert speed_grade(part) == grade


@pytest.mark.parametrize("part,message", [
    ("xc7z020", r"^Part must be a Xilinx part number ending in a speed grade and temperature "
                r"\(e\.g\. 'xck26-sfvc784-2LV-c'\), not 'xc7z020'$"),
    (None, r"^Part must be .*, not None$"),
    ("xczu7ev-ffvc1156-5-e", r"^Speed grade must be one of -3, -2, -1, -2LV, -1LV, "
                             r"not '-5'$"),
])
def test_speed_grade_refuses_other_parts(part, message):
    with pytest.raises(ValueError, match=message):
        speed_grade(part)


def test_delay_model_arithmetic():
    model = DelayModel()  # -2: clock-to-out 0.10, setup 0.05, uncertainty 0.15, LUT+net 0.45
    assert model.path_ns([]) == pytest.approx(0.30)
    assert model.path_ns(["LUT6", "LUT3", "LUT2"]) == pytest.approx(0.30 + 3 * 0.45)
    # a MUXF7 adds its mux, no net
    assert model.path_ns(["LUT2", "CARRY8", "MUXF7"]) == pytest.approx(
        0.30 + 0.45 + 0.50 + 0.08)
    # a block RAM start and a DSP end
    assert model.path_ns(["LUT6"], start="RAMB36E2", end="DSP48E2") == pytest.approx(
        0.90 + 0.45 + 0.40 + 0.15)
    assert model.max_levels(250e6) == 8  # (4 - 0.30) / 0.45 = 8.2
    assert model.max_levels(300e6) == 6  # (3.33 - 0.30) / 0.45 = 6.7


def _carry4_chain(length, *, first="LUT2"):
    """A path's cells: ``first``, then ``length`` CARRY4 chained from the head, as
    :func:`~ternforge.gen.synthesis.logic_levels` gives them."""
    return [{"type": first, "module": ""},
            *({"type": "CARRY4", "module": "", "carry_in": k > 0, "levels": 1 - k % 2}
              for k in range(length))]


def test_a_carry_chain_entered_through_its_carry_in_costs_little():
    """A 77-bit adder's carry: twenty CARRY4 chained, ten CARRY8 levels, of which only the
    first is entered from a LUT through a routed net; the nine above it take the dedicated
    carry route, 0.05 ns each at -2 (the upper CARRY4 of each CARRY8 none)."""
    model = DelayModel()
    assert model.level_ns("CARRY8") == pytest.approx(0.50)
    assert model.level_ns("CARRY8", carry_in=True) == pytest.approx(0.05)
    assert model.level_ns("CARRY4", carry_in=True) == pytest.approx(0.05)
    assert model.level_ns("LUT3", carry_in=True) == pytest.approx(0.45)  # (no carry-in)
    assert model.path_ns(_carry4_chain(20)) == pytest.approx(0.30 + 0.45 + 0.50 + 9 * 0.05)
    kv260 = delay_model("xck26-sfvc784-2LV-c")
    assert kv260.path_ns(_carry4_chain(20)) == pytest.approx(
        0.15 + kv260.scale * (0.15 + 0.45 + 0.50 + 9 * 0.05), abs=1e-4)


def test_delay_model_of_a_part_scales_by_its_grade():
    kv260, zcu104 = delay_model("xck26-sfvc784-2LV-c"), delay_model("xczu7ev-ffvc1156-2-e")
    assert (zcu104.grade, zcu104.scale) == ("-2", 1.0)
    assert (kv260.grade, kv260.scale) == ("-2LV", round(775 / 725, 4))
    assert kv260.level_ns("LUT4") == pytest.approx(0.45 * 775 / 725, abs=1e-4)
    assert kv260.max_levels(250e6) == 7
    assert kv260.clock_uncertainty_ns == zcu104.clock_uncertainty_ns  # (not scaled)


@pytest.mark.parametrize("kwargs,message", [
    ({"scale": 0}, r"^Delay scale must be a number above 0 and at most 10, not 0$"),
])
def test_delay_model_refuses_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DelayModel(**kwargs)


def test_max_levels_refuses_a_bad_clock():
    with pytest.raises(ValueError, match=r"^Clock must be a positive frequency in Hz, not 0$"):
        DelayModel().max_levels(0)


def _synthesis(levels, cells, start="a.count", end="b.total"):
    cells = [{"type": kind, "module": ""} if isinstance(kind, str) else kind for kind in cells]
    return {"levels": levels, "path": {
        "from": start, "from_type": "FDRE", "to": end, "to_type": "FDRE", "cells": cells}}


def test_path_timing():
    timing = path_timing(_synthesis(3, ["LUT6"] * 3), DelayModel())
    assert timing == {"levels": 3, "fmax_mhz": round(1e3 / 1.65, 1), "path": {
        "from": "a.count", "to": "b.total", "cells": ["LUT6"] * 3, "levels": 3,
        "delay_ns": 1.65}}


def test_path_timing_times_the_slowest_path_by_its_arcs():
    """The module's deepest path (here an adder, 11 levels) is not the one timed: the
    slowest path, three LUTs, is; its carry-in arcs, if any, cost the dedicated route."""
    timing = path_timing(_synthesis(11, ["LUT6"] * 3), DelayModel())
    assert (timing["levels"], timing["path"]["levels"]) == (11, 3)
    assert timing["path"]["delay_ns"] == 1.65
    adder = path_timing(_synthesis(11, _carry4_chain(20)), DelayModel())
    assert adder["path"]["levels"] == 11 and adder["path"]["delay_ns"] == 1.70
    assert adder["path"]["cells"] == ["LUT2", *["CARRY4"] * 20]


def test_design_timing_names_the_paths_too_deep_for_the_clock():
    model = DelayModel()
    modules = {"fast": path_timing(_synthesis(4, ["LUT6"] * 4), model),
               "deep": path_timing(_synthesis(12, ["LUT6"] * 12, "x.a", "x.b"), model)}
    timing = design_timing(modules, part="xczu7ev-ffvc1156-2-e", clock_hz=250e6)
    assert (timing["estimate"], timing["speed_grade"], timing["max_levels"]) == (True, "-2", 8)
    assert timing["clock_mhz"] == 250 and timing["meets_clock"] is False
    assert timing["fmax_mhz"] == modules["deep"]["fmax_mhz"] < 250
    assert timing["worst"]["module"] == "deep"
    assert timing["too_deep"] == [{"module": "deep", "levels": 12, "from": "x.a", "to": "x.b",
                                   "path_levels": 12, "fmax_mhz": modules["deep"]["fmax_mhz"],
                                   "delay_ns": modules["deep"]["path"]["delay_ns"]}]
    met = design_timing({"fast": modules["fast"]}, part="xczu7ev-ffvc1156-2-e",
                        clock_hz=250e6)
    assert met["meets_clock"] is True and met["too_deep"] == []
