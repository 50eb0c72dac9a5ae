"""Design configurations: round trips and validation messages."""

import json
import re
import tomllib

import pytest

from ternforge.gen.config import (ENGINES, AcceleratorConfig, DesignConfig, EltwiseConfig,
                                  EngineConfig, load_config)
from ternforge.hdl.matmul.parameters import TlmmParameters


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
                                         r"tlmm, eltwise, attention, accelerator, not 'rows'"):
        config.replace("rows", 4)


@pytest.mark.parametrize("values,message", [
    ({"tlmm": {"speed": 1}}, r"tlmm keys must be among .*, not \['speed'\]"),
    ({"eltwise": {"format": "float8"}},
     r"Float format must be one of float16, bfloat16, float32, not 'float8'"),
    ({"eltwise": {"hidden": 1}}, r"Maximum length must be an integer from 2 to 65536, not 1"),
    ({"engine": {}}, r"Configuration keys must be board, tlmm, eltwise, attention, accelerator, not "
                   r"\['engine'\]"),
    ({"attention": {"decode_lanes": 6}}, r"Lanes must be a power of two dividing the head "
                                  r"dimension \(96\), not 6"),
    ({"attention": {"heads": 15}}, "Heads must be a multiple of the 16 KV heads, not 15"),
    ({"attention": {"format": "bfloat16", "head_dim": 300}},
     "Head dimension must be an integer from 8 to 256, not 300"),
    ({"tlmm": {"max_k": 0}}, "Maximum K must be an integer from 1 to 1048576, not 0"),
    ({"tlmm": {"table_tokens": 0}}, "Table tokens must be an integer from 1 to 64, not 0"),
])
def test_invalid_configurations(values, message):
    with pytest.raises(ValueError, match=message):
        DesignConfig.from_dict(values)


def test_engine_section_yields_each_engines_parameters():
    config = EngineConfig(max_tokens=8, table_tokens=2, max_n=64, rows=4)
    assert config.parameters("tlmm") == TlmmParameters(kind="tlmm", rows=4, max_tokens=8)
    assert config.parameters("adder") == TlmmParameters(kind="adder", rows=4, max_tokens=8)
    assert config.parameters("tlmm-lutram") == TlmmParameters(
        kind="tlmm-lutram", rows=4, max_tokens=2, max_n=64)
    assert config.parameters("tlmm").max_n is None  # max_n bounds only the LUT-RAM engine
    assert set(ENGINES) == {"tlmm", "tlmm-lutram", "adder"}
    with pytest.raises(ValueError, match=r"^Engine must be one of tlmm, tlmm-lutram, adder, "
                                         r"not 'fast'$"):
        config.parameters("fast")


@pytest.mark.parametrize("values, message", [
    ({"attention_cols": 0}, "Attention cols must be an integer from 1 to 128, not 0"),
    ({"attention_rows": 0}, "Attention rows must be an integer from 1 to 64, not 0"),
    ({"context": 1}, "Context must be an integer from 2 to 1048576, not 1"),
    ({"hp_ports": 3}, "HP ports must be 1, 2 or 4, not 3"),
    ({"lm_head": "fp8"}, "LM head format must be one of float32, bfloat16, int8, not 'fp8'"),
    ({"vector_lanes": 0}, "Vector lanes must be an integer from 1 to 16, not 0"),
])
def test_the_accelerator_section_checks_its_parameters(values, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AcceleratorConfig(**values)
    for config in (DesignConfig(), DesignConfig(accelerator=AcceleratorConfig(
            attention_rows=2, context=1024))):
        assert DesignConfig.from_dict(tomllib.loads(config.to_toml())) == config
