"""Board definitions: part, resources, clock, DDR bandwidth and power coefficients."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType

__all__ = ["RESOURCE_KEYS", "FAMILIES", "Board", "check_board_part"]

#: Canonical resource keys, in report order.
RESOURCE_KEYS = ("LUT", "FF", "CARRY8", "DSP", "BRAM36", "URAM")

#: FPGA families a board may name (the ``synth_xilinx -family`` spelling).
FAMILIES = ("xcup",)

#: a Vivado board part: vendor, board, component and file version
_BOARD_PART = re.compile(r"[\w.-]+:[\w.-]+:[\w.-]+:\d+(\.\d+)*")


def check_board_part(value: object) -> None:
    """Refuse (``ValueError``) a Vivado board part other than
    ``vendor:board:component:version`` or None."""
    if value is not None and not (isinstance(value, str) and _BOARD_PART.fullmatch(value)):
        raise ValueError(f"Vivado board part must be vendor:board:component:version or None, "
                         f"not {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_keys(what: str, mapping: object) -> None:
    if not isinstance(mapping, Mapping) or sorted(mapping) != sorted(RESOURCE_KEYS):
        raise ValueError(f"{what} must have keys {list(RESOURCE_KEYS)}, not {mapping!r}")


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")


def _check_positive(what: str, value: object, unit: str) -> None:
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{what} must be a positive number of {unit}, not {value!r}")


def _percent(used: float, capacity: int) -> float:
    if capacity == 0:
        return float("inf") if used else 0.0
    return round(100 * used / capacity, 2)


@dataclass(frozen=True, kw_only=True)
class Board:
    """An FPGA board that ternforge can target.

    Power figures are estimates for early design-space exploration, in the style of the
    Xilinx Power Estimator (XPE): never a sign-off number. Dynamic power of a design is
    ``sum(used[k] * dynamic_power_w_per_mhz[k]) * clock_mhz * activity``, where ``activity``
    is the switching activity (1.0 = every used unit toggles every cycle).

    Parameters
    ----------
    name : str
        Short lowercase name used on the command line, e.g. ``"kv260"``.
    part : str
        Full Xilinx part number, e.g. ``"xck26-sfvc784-2LV-c"``.
    family : str
        ``synth_xilinx -family`` name of the device family; only ``"xcup"`` (UltraScale+).
    description : str
        One line for humans.
    resources : Mapping[str, int]
        Programmable-logic capacity with exactly the keys ``LUT``, ``FF``, ``CARRY8``, ``DSP``,
        ``BRAM36``, ``URAM``. On UltraScale+ every slice has eight LUTs and one CARRY8, so
        ``CARRY8 == LUT // 8``.
    clock_hz : float
        Default fabric clock for generated designs, in hertz.
    ddr_bytes_per_s : float
        Peak bandwidth of the external DDR memory, in bytes per second.
    ddr_size_bytes : int
        Bytes of DDR the programmable logic may use for an accelerator's image (weights, KV
        cache, programs, activations): what the board has, less what its operating system
        keeps.
    static_power_w : float
        Estimated static (leakage) power of the device, in watts.
    dynamic_power_w_per_mhz : Mapping[str, float]
        Estimated dynamic power per used unit per MHz at 100 % switching activity, in watts,
        with the same keys as ``resources``; it includes the unit's share of local routing
        and clocking.
    board_part : str or None
        Vivado's board part, ``vendor:board:component:version`` (e.g.
        ``"xilinx.com:kv260_som:part0:1.4"``), whose presets configure the processing system
        of a block design (see :mod:`ternforge.gen.vivado`); None for a board without board
        files.

    Members
    -------
    clock_mhz : float
        ``clock_hz`` in MHz.
    utilization(used) : dict[str, float]
        Percentage of each resource that ``used`` occupies.
    fits(used) : list[str]
        Reasons why ``used`` does not fit; empty when it fits.
    """

    name: str
    part: str
    family: str = "xcup"
    description: str
    resources: Mapping[str, int]
    clock_hz: float
    ddr_bytes_per_s: float
    ddr_size_bytes: int
    static_power_w: float
    dynamic_power_w_per_mhz: Mapping[str, float]
    board_part: str | None = None

    def __post_init__(self) -> None:
        _check_text("Board name", self.name)
        _check_text("Board part", self.part)
        _check_text("Board description", self.description)
        if self.family not in FAMILIES:
            raise ValueError(f"Board family must be one of {', '.join(FAMILIES)}, "
                             f"not {self.family!r}")
        self._check_resources()
        _check_positive("Clock frequency", self.clock_hz, "hertz")
        _check_positive("DDR bandwidth", self.ddr_bytes_per_s, "bytes per second")
        if not isinstance(self.ddr_size_bytes, int) or isinstance(self.ddr_size_bytes, bool) \
                or self.ddr_size_bytes < 1:
            raise ValueError(f"DDR size must be a positive integer of bytes, "
                             f"not {self.ddr_size_bytes!r}")
        if not _is_number(self.static_power_w) or self.static_power_w < 0:
            raise ValueError(f"Static power must be a non-negative number of watts, "
                             f"not {self.static_power_w!r}")
        self._check_power()
        check_board_part(self.board_part)

    def _check_resources(self) -> None:
        _check_keys("Board resources", self.resources)
        for key, count in self.resources.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"Board {key} count must be a non-negative integer, "
                                 f"not {count!r}")
        carry8 = self.resources["LUT"] // 8
        if self.resources["CARRY8"] != carry8:
            raise ValueError(f"Board CARRY8 count must be LUT // 8 = {carry8}, "
                             f"not {self.resources['CARRY8']!r}")
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    def _check_power(self) -> None:
        _check_keys("Board dynamic power coefficients", self.dynamic_power_w_per_mhz)
        for key, watts in self.dynamic_power_w_per_mhz.items():
            if not _is_number(watts) or watts < 0:
                raise ValueError(f"Dynamic power of {key} must be a non-negative number of "
                                 f"watts per MHz, not {watts!r}")
        object.__setattr__(self, "dynamic_power_w_per_mhz",
                           MappingProxyType(dict(self.dynamic_power_w_per_mhz)))

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    def utilization(self, used: Mapping[str, float]) -> dict[str, float]:
        """Percentage of each resource used, rounded to two decimals.

        ``used`` may omit keys (counted as 0) and may hold other keys (ignored), so a
        synthesis report can be passed as is. A resource the board lacks reads ``inf`` if used.
        """
        counts = _used_counts(used)
        return {key: _percent(counts[key], self.resources[key]) for key in RESOURCE_KEYS}

    def fits(self, used: Mapping[str, float]) -> list[str]:
        """Human-readable reasons why ``used`` exceeds this board; empty if it fits."""
        counts = _used_counts(used)
        return [f"{key}: {counts[key]:,} used, only {self.resources[key]:,} on {self.name}"
                for key in RESOURCE_KEYS if counts[key] > self.resources[key]]


def _used_counts(used: Mapping[str, float]) -> dict[str, float]:
    counts = {key: used.get(key, 0) for key in RESOURCE_KEYS}
    for key, count in counts.items():
        if not _is_number(count) or count < 0:
            raise ValueError(f"Used {key} count must be a non-negative number, not {count!r}")
    return counts
