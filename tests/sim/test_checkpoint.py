"""safetensors checkpoints: both forms load to the same model, packing is transformers', and
a missing or misshapen tensor is one clear error."""

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from ternforge.hdl.accelerator.model import preset
from ternforge.sim.checkpoint import (load_checkpoint, pack_ternary, save_checkpoint,
                                      tensor_names, unpack_ternary)
from ternforge.sim.models.bitnet import random_weights

TINY = preset("tiny").replace(layers=1)


def test_packing_is_transformers_pack_weights():
    # the example of transformers' unpack_weights docstring
    packed = np.array([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], np.uint8)
    expected = [[0, -1], [-1, 1], [-1, 1], [-1, 1], [1, 0], [0, -1], [1, -1], [1, -1]]
    assert unpack_ternary(packed).tolist() == expected
    assert np.array_equal(pack_ternary(np.array(expected)), packed)
    codes = np.random.default_rng(1).integers(-1, 2, (64, 9))
    assert np.array_equal(unpack_ternary(pack_ternary(codes)), codes)


def _same(a, b):
    for x, y in zip(a.layers, b.layers):
        for name, projection in x.projections.items():
            assert np.array_equal(projection.codes, y.projections[name].codes), name


def test_both_forms_load_the_same_codes(tmp_path):
    weights = random_weights(TINY, seed=3)
    save_checkpoint(tmp_path / "packed.safetensors", weights)
    save_checkpoint(tmp_path / "full.safetensors", weights, packed=False)
    packed = load_checkpoint(tmp_path / "packed.safetensors", TINY)
    full = load_checkpoint(tmp_path / "full.safetensors", TINY)
    _same(packed, weights)
    _same(full, weights)
    bf16 = lambda x: np.asarray(x).astype(ml_dtypes.bfloat16).astype(np.float32)  # noqa: E731
    q = weights.layers[0].projections["q_proj"]
    assert packed.layers[0].projections["q_proj"].scale == bf16(q.scale)
    assert full.layers[0].projections["q_proj"].scale == pytest.approx(
        q.scale * np.abs(q.codes).mean(), rel=1e-6)
    assert np.array_equal(packed.embedding, bf16(weights.embedding))
    assert np.array_equal(full.norm, weights.norm)


def test_full_precision_weights_are_quantised_as_the_reference_does(tmp_path):
    rng = np.random.default_rng(4)
    weights = random_weights(TINY, seed=4)
    tensors = {}
    save_checkpoint(tmp_path / "full.safetensors", weights, packed=False)
    from safetensors.numpy import load_file
    tensors = load_file(tmp_path / "full.safetensors")
    latent = rng.standard_normal((256, 256)).astype(np.float32) * 0.02
    tensors["model.layers.0.self_attn.q_proj.weight"] = latent
    # the 1bitLLM names of the sub-norms
    tensors["model.layers.0.self_attn.inner_attn_ln.weight"] = tensors.pop(
        "model.layers.0.self_attn.attn_sub_norm.weight")
    tensors["model.layers.0.mlp.ffn_layernorm.weight"] = tensors.pop(
        "model.layers.0.mlp.ffn_sub_norm.weight")
    save_file(tensors, tmp_path / "latent.safetensors")
    q = load_checkpoint(tmp_path / "latent.safetensors", TINY).layers[0].projections["q_proj"]
    scale = np.abs(latent.astype(np.float64)).mean()
    assert q.scale == pytest.approx(scale)
    assert np.array_equal(q.codes, np.clip(np.round(latent / scale), -1, 1))


@pytest.fixture
def checkpoint(tmp_path):
    save_checkpoint(tmp_path / "w.safetensors", random_weights(TINY, seed=5))
    from safetensors.numpy import load_file
    return tmp_path / "w.safetensors", load_file(tmp_path / "w.safetensors")


@pytest.mark.parametrize("damage,message", [
    (lambda t: t.pop("model.layers.0.mlp.down_proj.weight"),
     "Weights file must hold tensor 'model.layers.0.mlp.down_proj.weight'; {path!r} does not"),
    (lambda t: t.pop("model.layers.0.mlp.down_proj.weight_scale"),
     "Weights file must hold tensor 'model.layers.0.mlp.down_proj.weight_scale'; {path!r} "
     "does not"),
    (lambda t: t.pop("model.norm.weight"),
     "Weights file must hold tensor 'model.norm.weight'; {path!r} does not"),
    (lambda t: t.__setitem__("model.layers.0.self_attn.k_proj.weight", np.zeros((32, 255), np.uint8)),
     "Tensor 'model.layers.0.self_attn.k_proj.weight' must have shape (128, 256) (or packed "
     "(32, 256)), not (32, 255)"),
    (lambda t: t.__setitem__("model.layers.0.self_attn.k_proj.weight", np.zeros((128, 255), np.float32)),
     "Tensor 'model.layers.0.self_attn.k_proj.weight' must have shape (128, 256), not (128, 255)"),
    (lambda t: t.__setitem__("model.embed_tokens.weight", np.zeros((255, 256), np.float32)),
     "Tensor 'model.embed_tokens.weight' must have shape (256, 256), not (255, 256)"),
    (lambda t: t.__setitem__("model.layers.0.mlp.ffn_sub_norm.weight", np.zeros(256, np.float32)),
     "Tensor 'model.layers.0.mlp.ffn_sub_norm.weight' must have shape (768,), not (256,)"),
    (lambda t: t.__setitem__("model.layers.0.mlp.up_proj.weight", np.full((192, 256), 255, np.uint8)),
     "Tensor 'model.layers.0.mlp.up_proj.weight' must hold packed codes 0 to 2, not 3"),
])
def test_a_missing_or_misshapen_tensor_is_named(tmp_path, checkpoint, damage, message):
    path, tensors = checkpoint
    damage(tensors)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad)
    with pytest.raises(ValueError) as error:
        load_checkpoint(bad, TINY)
    assert str(error.value) == message.format(path=str(bad))


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "x.safetensors").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="^Weights file must be a readable safetensors file, "
                                         "not '.*x.safetensors' \\("):
        load_checkpoint(tmp_path / "x.safetensors", TINY)
    with pytest.raises(ValueError, match="^Weights file must be an existing file, not "):
        load_checkpoint(tmp_path / "none.safetensors", TINY)
    with pytest.raises(ValueError, match="^Weights file must be an existing file, not "):
        load_checkpoint(tmp_path, TINY)


def test_tensor_names_are_hugging_faces():
    names = tensor_names(preset("bitnet-2b4t"))
    assert len(names) == 2 + 30 * 11
    assert "model.layers.29.self_attn.attn_sub_norm.weight" in names
    assert "model.layers.0.mlp.ffn_sub_norm.weight" in names
    assert "lm_head.weight" not in names
