"""Design configurations: round trips and validation messages."""

import json

import pytest

from ternforge.gen.config import DesignConfig, EltwiseConfig, EngineConfig, load_config


def test_toml_and_json_round_trip(tmp_path):
    config = DesignConfig(board="zcu104", tlmm=EngineConfig(group_size=2, rows=7, max_k=100),
                          eltwise=EltwiseConfig(format="bfloat16", hidden=2560))
    (tmp_path / "c.toml").write_text(config.to_toml())
    (tmp_path / "c.json").write_text(config.to_json())
    assert load_config(tmp_path / "c.toml") == config
    assert load_config(tmp_path / "c.json") == config
    assert json.loads(config.to_json())["tlmm"]["rows"] == 7


def test_replace_by_dotted_name():
    config = DesignConfig().replace("tlmm.rows", 4).replace("board", "zcu104")
    assert config.tlmm.rows == 4 and config.board == "zcu104"
    with pytest.raises(ValueError, match=r"Parameter must be board or <section>.<name> of "
                                         r"tlmm, eltwise, attention, not 'rows'"):
        config.replace("rows", 4)


@pytest.mark.parametrize("values,message", [
    ({"tlmm": {"speed": 1}}, r"tlmm keys must be among .*, not \['speed'\]"),
    ({"eltwise": {"format": "float8"}},
     r"Float format must be one of float16, bfloat16, float32, not 'float8'"),
    ({"eltwise": {"hidden": 1}}, r"Maximum length must be an integer from 2 to 65536, not 1"),
    ({"engine": {}}, r"Configuration keys must be board, tlmm, eltwise, attention, not "
                   r"\['engine'\]"),
    ({"tlmm": {"rows": -1}}, "Rows must be an integer of at least 1, not -1"),
    ({"attention": {"decode_lanes": 16}}, r"Lanes must be a power of two dividing the head "
                                   r"dimension \(96\) into parts of more than 7, not 16"),
    ({"attention": {"heads": 15}}, "Heads must be a multiple of the 16 KV heads, not 15"),
    ({"attention": {"format": "bfloat16", "head_dim": 300}},
     "Head dimension must be an integer from 8 to 256, not 300"),
    ({"tlmm": {"max_k": 0}}, "Maximum K must be an integer of at least 1, not 0"),
    ({"tlmm": {"table_tokens": 0}}, "Table tokens must be an integer of at least 1, not 0"),
])
def test_invalid_configurations(values, message):
    with pytest.raises(ValueError, match=message):
        DesignConfig.from_dict(values)


def test_stream_geometry_follows_the_engine():
    config = EngineConfig(max_tokens=8, table_tokens=2)
    assert config.geometry("tlmm").max_tokens == 8 and config.geometry("tlmm").order == "weight"
    assert config.geometry("tlmm-lutram").max_tokens == 2
    assert config.geometry("tlmm-lutram").order == "table"
    assert config.geometry("adder").weight_format == "ternary"


@pytest.mark.parametrize("kind,shape,message", [
    ("tlmm-lutram", (1, 8, 65), r"N must be at most max_n = 64 \(raise --max-n\), not 65"),
    ("tlmm", (1, 257, 4), r"K must be at most the accumulators' max_k = 256"),
    ("adder", (0, 8, 4), "M must be at least 1, not 0"),
])
def test_jobs_beyond_the_engine_are_refused(kind, shape, message):
    config = EngineConfig(max_k=256, max_n=64)
    with pytest.raises(ValueError, match=message):
        config.check_job(kind, *shape)
    config.check_job("tlmm", 1, 8, 65)  # max_n bounds only the LUT-RAM engine
