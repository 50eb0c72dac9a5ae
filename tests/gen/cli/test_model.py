"""``ternforge run model`` refuses bad input in one line, exit status 2, before it builds or
writes anything: a model the simulator does not run whole, a prompt longer than the context,
token ids outside the vocabulary, a weights file with a missing or misshapen tensor."""

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import ternforge.sim.machine as machine
from cli_support import invoke
from ternforge.sim.checkpoint import shipped_weights


@pytest.fixture(autouse=True)
def no_simulator(monkeypatch):
    """A refusal must come before the accelerator is built."""
    def build(*args, **kwargs):
        raise AssertionError("reached the Verilator build")
    monkeypatch.setattr(machine, "build", build)


def _weights(tmp_path, change):
    tensors = load_file(shipped_weights("tiny"))
    change(tensors)
    path = tmp_path / "w.safetensors"
    save_file(tensors, path)
    return str(path)


def _drop_down(tensors):
    del tensors["model.layers.1.mlp.down_proj.weight"]


def _misshape_norm(tensors):
    tensors["model.norm.weight"] = np.zeros(255, tensors["model.norm.weight"].dtype)


@pytest.mark.parametrize("argv,message", [
    (["--model", "bitnet-0.7b", "--prompt-ids", "1,2"],
     "Model must be one the simulator runs whole (tiny), not 'bitnet-0.7b'"),
    (["--prompt", "x" * 250, "--new-tokens", "7"],
     "Prompt and new tokens must fit the context of 256 tokens, not 250 + 7"),
    (["--prompt-ids", "1,256"], "Token ids must be from 0 to 255, not 256"),
    (["--prompt-ids", "1,-3"], "Token ids must be from 0 to 255, not -3"),
    (["--prompt-ids", "1,a"], "Prompt ids must be comma-separated integers, not '1,a'"),
    (["--prompt", "Hi", "--prompt-ids", "1"],
     "Prompt must be given as --prompt TEXT or --prompt-ids LIST, once"),
    (["--prompt", ""], "Prompt must hold at least one token, not none"),
])
def test_bad_prompts_are_refused(capsys, tmp_path, argv, message):
    out = tmp_path / "r.json"
    code, _, err = invoke(capsys, "run", "model", *argv, "--out", str(out))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not out.exists()


@pytest.mark.parametrize("change,message", [
    (_drop_down, r"Weights file must hold tensor 'model.layers.1.mlp.down_proj.weight'"),
    (_misshape_norm, r"Tensor 'model.norm.weight' must have shape \(256,\), not \(255,\)"),
])
def test_bad_weights_are_refused(capsys, tmp_path, change, message):
    weights, out = _weights(tmp_path, change), tmp_path / "r.json"
    code, _, err = invoke(capsys, "run", "model", "--weights", weights, "--prompt", "Hi",
                          "--out", str(out))
    assert code == 2 and err.count("\n") == 1, err
    assert __import__("re").match(f"ternforge: {message}", err), err
    assert not out.exists()
