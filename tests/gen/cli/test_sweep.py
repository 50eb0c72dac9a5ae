"""``ternforge sweep`` of a model's whole accelerator against model-level objectives: the
Pareto front, the cache, parallel processes and a Dask cluster."""

import json

import pytest

import ternforge.gen.sweep as sweep
from cli_support import invoke
from ternforge.boards import RESOURCE_KEYS, get_board
from ternforge.gen.config import AcceleratorConfig, DesignConfig, EngineConfig
from ternforge.gen.pareto import objective_value, parse_objective
from ternforge.gen.sweep import ModelPoint, evaluate_point

#: an engine whose GEMV cycle model takes the tiny model's projections (P = 4, R = 8), on
#: one HP port (its weight beats are narrower than four)
TINY = DesignConfig(tlmm=EngineConfig(groups_per_cycle=4, rows=8),
                    accelerator=AcceleratorConfig(hp_ports=1, attention_lanes=4))
#: 27 points: the attention engine's lanes x tile rows (at least tiny's group of two) x
#: tile columns
GRID = ("accelerator.attention_lanes=1,2,4", "accelerator.attention_rows=2,4,8",
        "accelerator.attention_cols=16,32,64")
OBJECTIVES = ("tokens_per_s@128", "ttft@64")


def _argv(tmp_path, out, *extra):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.to_toml())
    argv = ["sweep", "--model", "tiny", "--config", str(config), "--no-synthesis",
            "--out", str(tmp_path / out)]
    for param in GRID:
        argv += ["--param", param]
    for objective in OBJECTIVES:
        argv += ["--objective", objective]
    return [*argv, *extra]


def _read(folder):
    lines = [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]
    return lines, json.loads((folder / "pareto.json").read_text())


def _check_front(lines, pareto):
    """Every front point is a line no line beats in both objectives; every other line is
    beaten by a front point (faster and no slower to the first token, or the reverse)."""
    def beats(a, b):
        (sa, ta), (sb, tb) = ([x["objectives"][o] for o in OBJECTIVES] for x in (a, b))
        return sa >= sb and ta <= tb and (sa, ta) != (sb, tb)

    front = pareto["front"]
    assert front and all(not beats(line, point) for point in front for line in lines)
    assert all(line in front or any(beats(point, line) for point in front) for line in lines)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_sweep_runs_on_a_dask_cluster_and_a_rerun_comes_from_the_cache(capsys, tmp_path,
                                                                         cache):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        code, out, err = invoke(capsys, *_argv(tmp_path, "dask", "--scheduler",
                                               cluster.scheduler_address))
    assert code == 0, err
    lines, pareto = _read(tmp_path / "dask")
    assert len(lines) == 27 and pareto["points"] == 27 and "0 of 27 points from the cache" in out
    assert [line["params"]["accelerator.attention_lanes"] for line in lines[:9]] == [1] * 9
    assert pareto["objectives"] == [{"name": "tokens_per_s@128", "sense": "max",
                                     "unit": "tokens/s"},
                                    {"name": "ttft@64", "sense": "min", "unit": "s"}]
    _check_front(lines, pareto)
    assert (tmp_path / "dask" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a line is the point's own modeled figures, as evaluated here
    point = ModelPoint(params=lines[5]["params"], model="tiny", config=_config(lines[5]),
                       contexts=(128,), prompts=(64,), latency=None, synthesis=False)
    assert evaluate_point(point) == {k: v for k, v in lines[5].items() if k != "objectives"}
    # more lanes decode faster, the rest alike
    slow, fast = lines[0], lines[18]
    assert slow["params"] | {"accelerator.attention_lanes": 4} == fast["params"]
    assert fast["decode_tokens_per_s"]["128"] > slow["decode_tokens_per_s"]["128"]
    # the rerun (no cluster now) evaluates nothing and writes the same lines
    code, out, err = invoke(capsys, *_argv(tmp_path, "again"))
    assert code == 0, err
    assert "27 of 27 points from the cache" in out
    assert _read(tmp_path / "again") == (lines, pareto)


def _config(line):
    config = TINY
    for name, value in line["params"].items():
        config = config.replace(name, value)
    return config.to_dict()


def test_points_in_processes_equal_points_here(capsys, tmp_path, cache):
    code, _, err = invoke(capsys, *_argv(tmp_path, "jobs", "--jobs", "2"))
    assert code == 0, err
    lines, pareto = _read(tmp_path / "jobs")
    _check_front(lines, pareto)
    for line in lines[::7]:
        point = ModelPoint(params=line["params"], model="tiny", config=_config(line),
                           contexts=(128,), prompts=(64,), latency=None, synthesis=False)
        assert evaluate_point(point) == {k: v for k, v in line.items() if k != "objectives"}


def test_a_changed_point_is_not_answered_from_the_cache(cache):
    point = ModelPoint(params={}, model="tiny", config=TINY.to_dict(), contexts=(128,),
                       prompts=(), latency=32, synthesis=False)
    keys = {point.key(), ModelPoint(**{**point.__dict__, "latency": 33}).key(),
            ModelPoint(**{**point.__dict__, "contexts": (64,)}).key(),
            ModelPoint(**{**point.__dict__, "config": _config(
                {"params": {"accelerator.attention_lanes": 2}})}).key()}
    assert len(keys) == 4


def test_the_accelerators_parameters_need_an_objective(capsys, tmp_path):
    code, _, err = invoke(capsys, "sweep", "--param", "accelerator.attention_rows=1,2",
                          "--out", str(tmp_path / "s"))
    assert code == 2 and "must be swept against an --objective" in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("extra, message", [
    (["--objective", "speed"], "Objective must be tokens_per_s@<context>, ttft@<prompt>"),
    (["--objective", "tokens_per_s@4096"],
     "Context of tiny on {'accelerator.attention_lanes': 1, 'accelerator.attention_rows': 2, "
     "'accelerator.attention_cols': 16} must be an integer from 2 to 256, not 4096"),
    (["--objective", "LUT"], "Objective LUT must be synthesised, not swept with --no-synthesis"),
    (["--objective", "ttft@64"], "Objectives must differ"),
    (["--model", "gpt-5"], "Model must be one of"),
    (["--jobs", "0"], "Jobs must be an integer from 1 to 256, not 0"),
    (["--scheduler", "tcp://127.0.0.1:9"],
     "Scheduler must be the address of a running Dask scheduler, not 'tcp://127.0.0.1:9'"),
])
def test_bad_input_is_one_line(capsys, tmp_path, cache, extra, message):
    code, _, err = invoke(capsys, *_argv(tmp_path, "bad", *extra))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()


def test_the_default_design_is_outside_the_tiny_models_gemv_cycle_model(capsys, tmp_path,
                                                                        cache):
    code, _, err = invoke(capsys, "sweep", "--model", "tiny", "--param",
                          "accelerator.attention_lanes=2", "--objective", "tokens_per_s@128",
                          "--no-synthesis", "--out", str(tmp_path / "s"))
    assert code == 2 and "Rows N of the GEMV cycle model must be an integer from" in err
    assert not (tmp_path / "s").exists()


def test_a_synthesised_point_has_its_resources_fit_and_power(monkeypatch, cache):
    """The plumbing of synthesis into a line (Yosys stood in for: the parts' counts fixed)."""
    parts = {"controller": dict.fromkeys(RESOURCE_KEYS, 10),
             "attention": {**dict.fromkeys(RESOURCE_KEYS, 0), "LUT": 500_000}}
    seen = []
    monkeypatch.setattr(sweep, "accelerator_resources",
                        lambda parameters, jobs: seen.append(jobs) or parts)
    point = ModelPoint(params={}, model="tiny", config=TINY.to_dict(), contexts=(128,),
                       prompts=(), latency=32, synthesis=True)
    line = evaluate_point(point)
    assert evaluate_point(point, synthesis_jobs=None) == line and seen == [1, None]
    board = get_board("kv260")
    assert line["resources"] == {key: 10 + parts["attention"][key] for key in RESOURCE_KEYS}
    assert line["fits"] is False  # half a million LUTs
    dynamic = sum(sum(used[k] * board.dynamic_power_w_per_mhz[k] for k in RESOURCE_KEYS)
                  for used in parts.values()) * board.clock_mhz * 0.125
    assert line["power_w"] == pytest.approx(board.static_power_w + dynamic, abs=2e-3)
    assert line["utilization"]["LUT"] > 100
    assert objective_value(parse_objective("power"), line) == line["power_w"]
    assert objective_value(parse_objective("LUT"), line) == 500_010
