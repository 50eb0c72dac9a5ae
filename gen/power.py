"""The power estimate of a design: the board's static power once, plus each part's dynamic
power from its resources and its switching activity, and the energy of a decoded token.

An estimate for design-space exploration in the style of the Xilinx Power Estimator (XPE),
never sign-off. For each part (a module of the report)::

    dynamic_w[part] = sum(resources[part][k] * board.dynamic_power_w_per_mhz[k])
                      * board.clock_mhz * activity[part]
    total_w = board.static_power_w + sum(dynamic_w.values())

The coefficients are the board's (:mod:`ternforge.boards.builtin` says where they come from).
The activity of each part is measured (:func:`measured_activity`: the toggles per register
bit per cycle of the same part of the tiny model's accelerator in Verilator, decoding, see
:mod:`ternforge.sim.activity`) or, where nothing was measured, assumed:
:data:`ASSUMED_ACTIVITY` for every part (what a sweep ranks designs with; measuring each of
its points would cost a Verilator build each). A part of the design that the measured
accelerator lacks takes the measured accelerator's mean activity, and is named as such.

The energy of a decoded token at each context is the total power times the time a token takes
(the inverse of the decode rate, :func:`ternforge.gen.perf.performance`): the programmable
logic's power for the whole token, including the time the host spends on the LM head while
the accelerator waits (an upper bound of the logic's share), and nothing of the processor's
own dynamic power or of the DDR's.

The keys of :func:`power_estimate`'s result (``report.json``'s ``power``) are stable:

- ``estimate`` (always true) and ``label``: this is an estimate, not sign-off;
- ``method``: the formula above, in words;
- ``coefficients_w_per_mhz``: the board's, per resource at 100 % activity;
- ``clock_hz``: the clock the dynamic power is for;
- ``static_w``: the board's static power, counted once;
- ``activity``: part -> the activity used (toggles per register bit per cycle);
- ``activity_source``: where it comes from: ``kind`` (``verilator-saif`` or ``assumed``) and,
  measured, the ``phase`` used (``decode``), the ``workload``, the measured ``accelerator``,
  its Verilator ``build``, the bits counted (``nets``), the ``cycles`` of each phase, the
  ``prefill_activity`` of each part, and ``mean_for``: the parts given the mean activity;
- ``dynamic_w``: part -> watts;
- ``total_w``: the static power plus every part's dynamic power;
- ``prefill_w``: the total while prefilling (the prefill's measured activity; with an assumed
  activity, the same as ``total_w``);
- ``tokens_per_s``: context -> the decode rate the energy is for (empty without one);
- ``energy_per_token_j``: context -> joules per decoded token (empty without decode rates).
"""

from __future__ import annotations

from rich.table import Table

from ..boards import RESOURCE_KEYS, Board

__all__ = ["ASSUMED_ACTIVITY", "METHOD", "LABEL", "assumed_activity", "measured_activity",
           "power_estimate", "power_table"]

#: the activity assumed where none was measured (XPE's default toggle rate)
ASSUMED_ACTIVITY = 0.125
#: the model, in words
METHOD = ("board static power once + sum over parts of resources x W/MHz per resource x "
          "clock MHz x the part's activity")
#: what the figures are
LABEL = "estimate for design-space exploration, not sign-off"


def assumed_activity(parts) -> tuple[dict, dict, dict]:
    """:data:`ASSUMED_ACTIVITY` for each of ``parts``: the decode and prefill activity and
    the source, as :func:`measured_activity` gives them."""
    activity = dict.fromkeys(parts, ASSUMED_ACTIVITY)
    return activity, activity, {"kind": "assumed", "rate": ASSUMED_ACTIVITY}


def measured_activity(parts, measured: dict) -> tuple[dict, dict, dict]:
    """The decode and prefill activity of each of ``parts`` from ``measured``
    (:func:`ternforge.sim.activity.measure`'s), and its source: a part that the measured
    accelerator lacks takes its mean activity of the phase (named in ``mean_for``)."""
    phases = {phase: {part: measured["activity"][phase].get(part, measured["mean"][phase])
                      for part in parts} for phase in ("decode", "prefill")}
    source = {"kind": measured["source"], "phase": "decode",
              "workload": measured["workload"], "accelerator": measured["accelerator"],
              "build": measured["build"], "nets": measured["nets"],
              "cycles": measured["cycles"], "prefill_activity": phases["prefill"],
              "mean_for": [part for part in parts if part not in measured["activity"]["decode"]]}
    return phases["decode"], phases["prefill"], source


def _dynamic(modules: dict, board: Board, activity: dict) -> dict:
    return {name: sum(used[key] * board.dynamic_power_w_per_mhz[key] for key in RESOURCE_KEYS)
            * board.clock_mhz * activity[name] for name, used in modules.items()}


def power_estimate(modules: dict, board: Board, *, measured: dict | None = None,
                   tokens_per_s: dict | None = None) -> dict:
    """The power estimate of a design of ``modules`` (part -> resources) on ``board``: see the
    module's documentation for the model and the keys. The activity is ``measured``'s
    (:func:`ternforge.sim.activity.measure`'s), or :data:`ASSUMED_ACTIVITY` without it;
    ``tokens_per_s`` (context -> decoded tokens per second) gives the energy per token."""
    activity, prefill, source = (assumed_activity(modules) if measured is None
                                 else measured_activity(modules, measured))
    dynamic = _dynamic(modules, board, activity)
    total = board.static_power_w + sum(dynamic.values())
    prefill_w = board.static_power_w + sum(_dynamic(modules, board, prefill).values())
    return {
        "estimate": True,
        "label": LABEL,
        "method": METHOD,
        "coefficients_w_per_mhz": dict(board.dynamic_power_w_per_mhz),
        "clock_hz": board.clock_hz,
        "static_w": board.static_power_w,
        "activity": {name: round(value, 6) for name, value in activity.items()},
        "activity_source": source,
        "dynamic_w": {name: round(watts, 4) for name, watts in dynamic.items()},
        "total_w": round(total, 4),
        "prefill_w": round(prefill_w, 4),
        "tokens_per_s": {context: round(rate, 3) for context, rate in (tokens_per_s or {}).items()},
        "energy_per_token_j": {context: round(total / rate, 5)
                               for context, rate in (tokens_per_s or {}).items()},
    }


def power_table(power: dict, modules: dict) -> Table:
    """A rich table of a :func:`power_estimate`: a row per part (its resources, activity and
    watts), the static power, the total, and the energy per token at each context."""
    source = power["activity_source"]
    what = ("measured on Verilator, decoding" if source["kind"] != "assumed"
            else f"assumed {source['rate']:.1%}")
    table = Table(title=f"power estimate at {power['clock_hz'] / 1e6:g} MHz (activity "
                        f"{what}; {power['label']})")
    table.add_column("part")
    for key in RESOURCE_KEYS:
        table.add_column(key, justify="right")
    table.add_column("activity %", justify="right")
    table.add_column("W", justify="right")
    mean = set(source.get("mean_for", ()))
    for name, resources in modules.items():
        table.add_row(name + (" (mean)" if name in mean else ""),
                      *(f"{resources[k]:,}" for k in RESOURCE_KEYS),
                      f"{100 * power['activity'][name]:.2f}", f"{power['dynamic_w'][name]:.3f}")
    blank = [""] * len(RESOURCE_KEYS)
    table.add_row("static (board)", *blank, "", f"{power['static_w']:.3f}", style="dim")
    table.add_row("total", *blank, "", f"{power['total_w']:.3f}", style="bold")
    for context, joules in power["energy_per_token_j"].items():
        table.add_row(f"J per token, context {context}", *blank, "", f"{joules:.4f}",
                      style="dim")
    return table
