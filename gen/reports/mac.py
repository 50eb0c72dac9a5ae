"""Side-by-side resources of every MAC-array architecture, baseline and transformed.

Each engine is synthesised with Yosys (``synth_xilinx -family xcup``, DSP48E2 allowed or
``-nodsp``); the report puts LUT, FF, CARRY8, DSP and the logic levels of the longest
register-to-register path of every variant side by side with each transformed variant's gain
(baseline / transformed, at equal throughput: above 1 the transformation pays) next to the
gain in area efficiency the HPCA 2025 paper reports for a 28 nm ASIC.
"""

from __future__ import annotations

from amaranth.back import rtlil
from rich.table import Table

from ...hdl.mac.array import mac_array
from ...hdl.mac.parameters import ARCHITECTURES, VARIANTS, MacArrayParameters
from ..synthesis import SOURCE, synthesize

__all__ = ["PAPER_AREA_GAIN", "MEASURES", "mac_report", "mac_table"]

#: area-efficiency gain of the transformed engine over the baseline, 28 nm ASIC (HPCA 2025)
PAPER_AREA_GAIN = {"systolic": 1.27, "cube3d": 1.28, "addertree": 1.56, "matrix2d": 1.44}
MEASURES = ("LUT", "FF", "CARRY8", "DSP", "levels")


def _gain(baseline, transformed):
    return round(baseline / transformed, 3) if transformed else None


def mac_report(*, size: int = 8, width: int = 8, signed: bool = True, dsp: bool = True,
               max_k: int = 4096, advance=lambda name: None) -> dict:
    """Synthesise every architecture and variant (cached); ``advance(name)`` is called
    before each synthesis."""
    engines = {}
    for arch in ARCHITECTURES:
        entry = {}
        for variant in VARIANTS:
            parameters = MacArrayParameters(arch=arch, variant=variant, size=size, width=width,
                                            signed=signed, max_k=max_k)
            name = parameters.module_name
            advance(name)
            synthesis = synthesize(rtlil.convert(mac_array(parameters), name=name,
                                                 emit_src=False),
                                   top=name, dsp=dsp, levels=True)
            entry[variant] = {**{key: synthesis[key] for key in MEASURES},
                              "dims": list(parameters.dims),
                              "multipliers": parameters.multipliers,
                              "latency": parameters.latency, "acc_width": parameters.acc_width}
        entry["gain"] = {variant: {key: _gain(entry["baseline"][key], entry[variant][key])
                                   for key in ("LUT", "FF", "levels")}
                         for variant in VARIANTS[1:]}
        entry["paper_area_gain"] = PAPER_AREA_GAIN[arch]
        engines[arch] = entry
    return {"size": size, "width": width, "signed": signed, "dsp": dsp, "max_k": max_k,
            "source": SOURCE, "engines": engines}


def mac_table(report: dict) -> Table:
    """A rich table of a :func:`mac_report`: one row per architecture and variant."""
    kind = "int" if report["signed"] else "uint"
    mapping = "DSP48E2 allowed" if report["dsp"] else "LUT only"
    table = Table(title=f"MAC arrays, size {report['size']}, {kind}{report['width']}, "
                        f"{mapping} ({report['source']})")
    for column in ("arch", "variant", *MEASURES, "LUT gain", "paper area gain"):
        table.add_column(column, justify="left" if column in ("arch", "variant") else "right")
    for arch, entry in report["engines"].items():
        for variant in VARIANTS:
            values = entry[variant]
            gains = ("", "") if variant == "baseline" else (
                f"{entry['gain'][variant]['LUT']:.2f}x", f"{entry['paper_area_gain']:.2f}x")
            table.add_row(arch, variant, *(f"{values[key]:,}" for key in MEASURES), *gains)
    return table
