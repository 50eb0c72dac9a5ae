"""The vector unit runs a layer's element-wise path from a program: dequantise, add the
residual, RMSNorm, quantise and the gated activation, each from DDR to DDR, bit-exact to the
golden model, under random stalls."""

import numpy as np
import pytest

import ternforge.tb.controller_tb as machine
from ternforge.tb.controller_tb import DATA_BITS, WORD, program
from ternforge.hdl.accelerator.parameters import VECTOR_INSTRUCTION, VectorOp, VectorUnitParameters
from ternforge.sim.memory import write_image
from ternforge.sim.models import eltwise as golden
from ternforge.sim.models import fp as fm

WORDS = 8192
TOKENS, N = 3, 40
#: a unit whose limits the last test checks
SHORT = VectorUnitParameters(data_bits=DATA_BITS, max_length=64, activation="relu2")


def vector(wait=False, **fields):
    return ("vector", VECTOR_INSTRUCTION, fields, wait)


def bits32(x):
    return fm.to_bits(np.asarray(x, dtype=np.float64), "float32").astype("<u4")


def _job(tmp_path, parameters):
    rng = np.random.default_rng(21)
    image = bytearray(WORDS * WORD)
    region = {name: 0x1000 * (i + 1) for i, name in enumerate(
        ["acc", "scale", "residual", "gain", "dequantised", "hidden", "normed", "codes",
         "scales", "gate", "up", "gated"])}
    acc = rng.integers(-(1 << 16), 1 << 16, (TOKENS, N)).astype("<i4")
    act_scale = bits32(rng.uniform(1e-3, 1e-2, TOKENS))
    residual = bits32(rng.standard_normal((TOKENS, N)))
    gain = bits32(1 + 0.1 * rng.standard_normal(N))
    gate, up = bits32(rng.standard_normal((TOKENS, N))), bits32(rng.standard_normal((TOKENS, N)))
    weight_scale, eps = bits32(0.8), bits32(1e-5)
    inv_length = bits32(1 / N)
    for name, array in (("acc", acc), ("scale", act_scale), ("residual", residual),
                        ("gain", gain), ("gate", gate), ("up", up)):
        image[region[name]:region[name] + array.nbytes] = array.tobytes()
    shape = {"tokens": TOKENS, "length": N}
    instructions = program(
        vector(op=VectorOp.DEQUANTISE, a=region["acc"], b=region["scale"],
               y=region["dequantised"], scalar=weight_scale, **shape),
        vector(wait=True, op=VectorOp.RESIDUAL, a=region["dequantised"], b=region["residual"],
               y=region["hidden"], **shape),
        vector(wait=True, op=VectorOp.RMSNORM, a=region["hidden"], b=region["gain"],
               y=region["normed"], scalar=eps, inv_length=inv_length, **shape),
        vector(wait=True, op=VectorOp.QUANTISE, a=region["normed"], y=region["codes"],
               z=region["scales"], **shape),
        vector(op=VectorOp.GATED, a=region["gate"], b=region["up"], y=region["gated"], **shape),
        word_bytes=parameters.data_bits // 8)
    image[0:len(instructions)] = instructions
    write_image(tmp_path / "image.hex", bytes(image), data_bits=DATA_BITS)
    # the golden model, step by step
    lanes = parameters.vector.stages[VectorOp.RMSNORM].partial_sums
    dequantised = golden.dequantise(acc, act_scale, weight_scale)
    hidden = golden.residual(dequantised, residual)
    normed = golden.rmsnorm(hidden, np.asarray(gain), eps=1e-5, lanes=lanes)
    codes, scales = golden.quantise(normed)
    results = {"dequantised": dequantised, "hidden": hidden, "normed": normed,
               "codes": codes.astype(np.int8), "scales": scales,
               "gated": golden.gated("relu2", gate, up)}
    for name, array in results.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        image[region[name]:region[name] + len(raw)] = raw
    (tmp_path / "expected.bin").write_bytes(bytes(image))
    return {"program": 0, "length": 5, "runs": 1, "expected": str(tmp_path / "expected.bin")}


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", [machine.ACCELERATOR, machine.WIDE],
                         ids=["one-lane", "four-lanes"])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_a_layers_element_wise_path_runs_from_a_program(tmp_path, parameters, stall):
    assert parameters.port_bits == DATA_BITS  # (the image's words)
    machine.run(machine.build(parameters), tmp_path, _job(tmp_path, parameters), stall=stall,
                seed=5)


def test_vector_unit_parameters_are_checked():
    with pytest.raises(ValueError, match="^Vector unit format must be float32, not "
                                         "'bfloat16'$"):
        VectorUnitParameters(format="bfloat16")
    with pytest.raises(ValueError, match="^Activation must be one of silu, relu2, not "
                                         "'gelu'$"):
        VectorUnitParameters(activation="gelu")
    with pytest.raises(ValueError, match="^Length must be an integer from 1 to 64, not 65$"):
        SHORT.check_job(VectorOp.RMSNORM, 1, 65)
    with pytest.raises(ValueError, match=r"^Vector lanes must be a power of two from 1 to 1 "
                                         r"\(a quarter of the float32 elements of a 128-bit "
                                         r"word\), not 2$"):
        VectorUnitParameters(data_bits=128, lanes=2)
    with pytest.raises(ValueError, match="^Maximum length must be a multiple of the 4 vector "
                                         "lanes, not 66$"):
        VectorUnitParameters(max_length=66, lanes=4)
    with pytest.raises(ValueError, match="^Length must be a multiple of the 4 vector lanes, "
                                         "not 42$"):
        VectorUnitParameters(lanes=4).check_job(VectorOp.RESIDUAL, 1, 42)
