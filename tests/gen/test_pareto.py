"""Objectives and the Pareto front of a design sweep (ternforge.gen.pareto)."""

import itertools

import pytest

from ternforge.gen.pareto import objective_value, parse_objective, pareto_front


def _line(speed, lut, fits=True):
    return {"objectives": {"tokens_per_s@128": speed, "LUT": lut}, "fits": fits}


def test_objectives_own_their_sense_and_length():
    speed, ttft, lut, power = map(parse_objective,
                                  ("tokens_per_s@1024", "ttft@64", "LUT", "power"))
    assert (speed.sense, speed.at, speed.needs_synthesis) == ("max", 1024, False)
    assert (ttft.sense, ttft.at, ttft.unit) == ("min", 64, "s")
    assert (lut.sense, lut.needs_synthesis) == ("min", True)
    assert (power.kind, power.unit) == ("power", "W")


@pytest.mark.parametrize("text", ["tokens_per_s", "tokens_per_s@", "tokens_per_s@0", "ttft@x",
                                  "LUT@3", "speed", "", "power@2"])
def test_a_name_that_is_no_objective_is_refused(text):
    with pytest.raises(ValueError, match="^Objective .* not "):
        parse_objective(text)


def test_values_are_read_from_a_line():
    line = {"decode_tokens_per_s": {"128": 12.5}, "ttft_s": {"64": 0.25},
            "resources": {"LUT": 1000}, "power_w": 3.5}
    values = [objective_value(parse_objective(t), line)
              for t in ("tokens_per_s@128", "ttft@64", "LUT", "power")]
    assert values == [12.5, 0.25, 1000, 3.5]
    assert objective_value(parse_objective("LUT"), {"resources": None}) is None


def test_the_front_is_the_points_no_other_dominates():
    objectives = [parse_objective("tokens_per_s@128"), parse_objective("LUT")]
    lines = [_line(10, 100), _line(20, 200), _line(15, 300),  # dominated by (20, 200)
             _line(20, 200),  # equal to a front point: neither dominates
             _line(5, 50), _line(99, 10, fits=False),  # does not fit: never on the front
             _line(4, 60), _line(30, 400, fits=None)]  # fit unknown: a candidate
    assert pareto_front(lines, objectives) == [0, 1, 3, 4, 7]


def test_the_front_agrees_with_brute_force_on_a_grid():
    objectives = [parse_objective(t) for t in ("tokens_per_s@128", "ttft@64", "LUT")]
    values = list(itertools.product((1, 2, 3), (0.3, 0.2, 0.1), (30, 10, 20)))[::2]
    lines = [{"objectives": dict(zip((o.name for o in objectives), v)), "fits": True}
             for v in values]
    front = pareto_front(lines, objectives)
    for i, (speed, ttft, lut) in enumerate(values):
        beaten = any(s >= speed and t <= ttft and u <= lut and (s, t, u) != (speed, ttft, lut)
                     for s, t, u in values)
        assert (i in front) == (not beaten)
