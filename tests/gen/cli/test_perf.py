"""``ternforge perf``: the figures of the tiny model on the accelerator ``run model``
simulates, built from its cycle model (the JSON's stable keys, each figure from the
programs' predicted cycles), the plot, and bad input refused in one line with exit status 2
and nothing written."""

import json

import pytest

from cli_support import invoke
from ternforge.boards import get_board
from ternforge.gen.perf import UNIT_GROUPS

KEYS = {"model", "board", "clock_hz", "memory", "bandwidth_bytes_per_s", "host_bytes_per_s",
        "decode_tokens_per_s", "ttft_s", "ddr_bytes_per_token", "roofline_tokens_per_s",
        "breakdown", "cycles", "instructions", "accelerator", "fits", "resources",
        "utilization", "lm_head", "roofline_fraction"}


def test_tiny_figures_come_from_the_cycle_model(capsys, tmp_path):
    out, plot = tmp_path / "perf.json", tmp_path / "perf.png"
    code, stdout, err = invoke(capsys, "perf", "--model", "tiny", "--no-synthesis",
                               "--json", str(out), "--plot", str(plot))
    assert (code, err) == (0, "")
    result = json.loads(out.read_text())
    assert set(result) == KEYS
    assert list(result["decode_tokens_per_s"]) == ["128"]  # of 128 ... 2,048, tiny's 256 holds
    assert list(result["ttft_s"]) == ["64", "128"]
    assert result["fits"] is None and result["accelerator"] == "simulation"
    clock = get_board("kv260").clock_hz
    assert result["bandwidth_bytes_per_s"] == min(get_board("kv260").ddr_bytes_per_s, 16 * clock)
    decode = result["breakdown"]["decode"]["128"]
    assert set(decode) == {*UNIT_GROUPS, "controller", "lm_head", "host"}
    # a step's time is its program's cycles at the clock and the host's LM head and embedding
    seconds = result["cycles"]["decode"]["128"] / clock + decode["lm_head"] + decode["host"]
    assert result["decode_tokens_per_s"]["128"] == pytest.approx(1 / seconds, rel=1e-12)
    assert sum(decode.values()) == pytest.approx(seconds, rel=1e-12)
    assert result["ttft_s"]["128"] > result["ttft_s"]["64"] > 1 / result[
        "decode_tokens_per_s"]["128"]
    # the roofline: the accelerator's bytes at its port's bandwidth, the host's at the host's
    host = 2 * 256 * 256 + 2 * 256  # tiny's LM head and a token's embedding, bfloat16
    assert result["roofline_tokens_per_s"]["128"] == pytest.approx(1 / (
        (result["ddr_bytes_per_token"]["128"] - host) / result["bandwidth_bytes_per_s"]
        + host / result["host_bytes_per_s"]))
    assert result["decode_tokens_per_s"]["128"] < result["roofline_tokens_per_s"]["128"]
    assert result["roofline_fraction"]["128"] == pytest.approx(
        result["decode_tokens_per_s"]["128"] / result["roofline_tokens_per_s"]["128"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "decode, context 128" in stdout and "first token, prompt 64" in stdout


def test_an_int8_lm_head_reads_half_the_host_bytes(capsys, tmp_path):
    results = {}
    for head in ("bfloat16", "int8"):
        config, out = tmp_path / f"{head}.toml", tmp_path / f"{head}.json"
        config.write_text(f'[accelerator]\nlm_head = "{head}"\n')
        code, _, err = invoke(capsys, "perf", "--model", "tiny", "--no-synthesis",
                              "--config", str(config), "--json", str(out))
        assert (code, err) == (0, "")
        results[head] = json.loads(out.read_text())
    bf16, int8 = results["bfloat16"], results["int8"]
    assert (bf16["lm_head"], int8["lm_head"]) == ("bfloat16", "int8")
    # tiny's head: 256 x 256 weights, two bytes each or one and a float32 scale a row
    assert bf16["ddr_bytes_per_token"]["128"] - int8["ddr_bytes_per_token"]["128"] == \
        256 * 256 - 4 * 256
    seconds = {h: r["breakdown"]["decode"]["128"]["lm_head"] for h, r in results.items()}
    assert seconds["int8"] / seconds["bfloat16"] == pytest.approx((256 + 4) / 512)
    assert int8["cycles"] == bf16["cycles"]  # the accelerator's programs are the same


@pytest.mark.parametrize("argv,message", [
    (["--model", "gpt2"], "Model must be one of"),
    (["--model", "tiny", "--contexts", "512"],
     "Context of tiny on this design must be an integer from 2 to 256, not 512"),
    (["--model", "tiny", "--contexts", "128,x"],
     "Contexts must be integers separated by commas, not '128,x'"),
    (["--model", "tiny", "--prompts", "300"],
     "Prompt tokens of tiny on this design must be an integer from 1 to 256, not 300"),
    (["--model", "tiny", "--board", "nope"], "Board must be one of"),
    (["--model", "tiny", "--plot", "PLOT.svg"], "Plot must be a .png file, not "),
])
def test_bad_input_is_refused(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / a) if a.isupper() else a for a in argv]
    out = tmp_path / "perf.json"
    code, stdout, err = invoke(capsys, "perf", "--no-synthesis", *argv, "--json", str(out))
    assert code == 2 and err.startswith(f"ternforge: {message}") and err.count("\n") == 1, err
    assert not out.exists() and not list(tmp_path.iterdir())
