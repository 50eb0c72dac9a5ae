"""The MAC-array engines' parameters: their rules and messages, their facts."""

import pytest

from ternforge.hdl.mac.parameters import ARCHITECTURES, MacArrayParameters, accumulator_width


@pytest.mark.parametrize("kwargs,message", [
    ({"arch": "mesh"}, r"^Architecture must be one of systolic, cube3d, addertree, matrix2d, "
                       r"not 'mesh'$"),
    ({"arch": "systolic", "size": 0}, r"^Array size must be an integer from 1 to 64, not 0$"),
    ({"arch": "cube3d", "size": 3},
     r"^Array size must be an even integer of at least 2 for the 3D-Cube, not 3$"),
    ({"arch": "matrix2d", "width": 1}, r"^Operand width must be an integer from 2 to 32, not 1$"),
    ({"arch": "addertree", "variant": "fast"},
     r"^Variant must be one of baseline, transformed, booth, not 'fast'$"),
    ({"arch": "systolic", "signed": 1}, r"^Signed must be True or False, not 1$"),
    ({"arch": "systolic", "max_k": 0}, r"^Maximum K must be an integer of at least 1, not 0$"),
    ({"arch": "systolic", "width": 8, "max_k": 16, "acc_width": 8},
     r"^Accumulator width must be an integer from 20 to 128, not 8$"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MacArrayParameters(**kwargs)


@pytest.mark.parametrize("width,is_signed,max_k,bits", [
    (8, True, 4096, 28), (8, False, 1, 16), (3, True, 7, 8)])
def test_accumulator_width_defaults_to_the_exact_bound(width, is_signed, max_k, bits):
    parameters = MacArrayParameters(width=width, signed=is_signed, max_k=max_k)
    needed = accumulator_width(width=width, signed_operands=is_signed, max_k=max_k)
    assert parameters.acc_width == needed == bits
    assert parameters == MacArrayParameters(width=width, signed=is_signed, max_k=max_k,
                                            acc_width=needed)


@pytest.mark.parametrize("arch,dims,latency", [
    ("systolic", (4, 4, 1), 7), ("matrix2d", (4, 4, 1), 1), ("cube3d", (2, 2, 4), 1),
    ("addertree", (1, 4, 4), 1),
])
def test_tile_shape_latency_and_cycles(arch, dims, latency):
    parameters = MacArrayParameters(arch=arch, size=4)
    assert parameters.dims == dims and parameters.latency == latency
    assert parameters.multipliers == 16 and ARCHITECTURES.index(arch) >= 0
    rows, cols, depth = dims
    assert parameters.cycles(5, 9, 7) == -(-5 // rows) * -(-9 // cols) * (
        -(-7 // depth) + latency + rows)
    assert parameters.module_name == f"mac_{arch}_baseline"
