"""Model-level objectives of a design sweep and the Pareto front of its points.

An objective is named the way ``ternforge sweep --objective`` takes it:

- ``tokens_per_s@C``: modeled decode tokens per second at context ``C`` (maximised);
- ``ttft@P``: modeled time to the first token of a ``P``-token prompt, seconds (minimised);
- ``LUT``, ``FF``, ``CARRY8``, ``DSP``, ``BRAM36``, ``URAM``: the accelerator's resources, its
  parts synthesised with Yosys (minimised);
- ``power``: the estimated power in watts, the board's static power once plus each part's
  resources at the assumed activity (:func:`~ternforge.gen.power.power_estimate`, as
  :func:`~ternforge.gen.accelerator.accelerator_fit` gives it; minimised).

Each objective owns its sense; a point's values are read from its sweep line
(:func:`objective_value`). The front is the points that fit the board (or whose fit is
unknown, without synthesis) that no other such point dominates: at least as good in every
objective and better in one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..boards import RESOURCE_KEYS

__all__ = ["Objective", "parse_objective", "objective_value", "pareto_front", "plot_pareto"]

_RATES = {"tokens_per_s": ("max", "tokens/s"), "ttft": ("min", "s")}


@dataclass(frozen=True)
class Objective:
    """One objective: its ``name`` as given, ``kind`` (``tokens_per_s``, ``ttft``, a resource
    key or ``power``), the context or prompt length ``at`` (rates only), ``sense`` and
    ``unit``."""

    name: str
    kind: str
    at: int | None
    sense: str
    unit: str

    @property
    def needs_synthesis(self) -> bool:
        """Its value needs the accelerator's parts synthesised."""
        return self.at is None

    def better(self, a: float, b: float) -> bool:
        """``a`` is strictly better than ``b``."""
        return a > b if self.sense == "max" else a < b


def parse_objective(text: str) -> Objective:
    """The :class:`Objective` named ``text``; refuses a name that is none."""
    kind, sep, at = text.partition("@")
    if kind in _RATES:
        if not sep or not at.isdigit() or int(at) < 1:
            raise ValueError(f"Objective {kind} must name a length, as {kind}@1024, "
                             f"not {text!r}")
        sense, unit = _RATES[kind]
        return Objective(text, kind, int(at), sense, unit)
    if not sep and (kind in RESOURCE_KEYS or kind == "power"):
        return Objective(text, kind, None, "min", "W" if kind == "power" else "cells")
    raise ValueError(f"Objective must be tokens_per_s@<context>, ttft@<prompt>, "
                     f"{', '.join(RESOURCE_KEYS)} or power, not {text!r}")


def objective_value(objective: Objective, line: dict) -> float | None:
    """``objective``'s value of a sweep line (None where the line has no synthesis)."""
    if objective.kind == "tokens_per_s":
        return line["decode_tokens_per_s"][str(objective.at)]
    if objective.kind == "ttft":
        return line["ttft_s"][str(objective.at)]
    if line["resources"] is None:
        return None
    return line["power_w"] if objective.kind == "power" else line["resources"][objective.kind]


def _dominates(objectives, a: dict, b: dict) -> bool:
    values = [(o, a[o.name], b[o.name]) for o in objectives]
    return (all(not o.better(y, x) for o, x, y in values)
            and any(o.better(x, y) for o, x, y in values))


def pareto_front(lines: list[dict], objectives: list[Objective]) -> list[int]:
    """The indices of ``lines`` on the Pareto front of ``objectives`` (each line's values in
    its ``objectives`` mapping), among the lines whose ``fits`` is not false, in order."""
    candidates = [i for i, line in enumerate(lines) if line["fits"] is not False]
    values = {i: lines[i]["objectives"] for i in candidates}
    return [i for i in candidates
            if not any(_dominates(objectives, values[j], values[i])
                       for j in candidates if j != i)]


def _label(objective: Objective) -> str:
    arrow = "higher" if objective.sense == "max" else "lower"
    return f"{objective.name} ({objective.unit}, {arrow} is better)"


def plot_pareto(lines: list[dict], objectives: list[Objective], front: list[int], path,
                title: str) -> None:
    """Draw every point and the front as a PNG at ``path``: one panel for each pair of the
    first four objectives (a single objective: each point's value, the best marked). Points
    that do not fit the board are crosses."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    shown = objectives[:4]
    pairs = [(x, y) for i, x in enumerate(shown) for y in shown[i + 1:]] or [(None, shown[0])]
    columns = min(len(pairs), 3)
    rows = -(-len(pairs) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows),
                                   squeeze=False)
    on_front = set(front)
    for panel, (x, y) in zip(axes.flat, pairs):
        def xs(indices):
            return [lines[i]["objectives"][x.name] if x else i for i in indices]

        def ys(indices):
            return [lines[i]["objectives"][y.name] for i in indices]

        fitting = [i for i, line in enumerate(lines) if line["fits"] is not False]
        off = [i for i in fitting if i not in on_front]
        unfit = [i for i, line in enumerate(lines) if line["fits"] is False]
        panel.scatter(xs(off), ys(off), color="0.6", label="swept point")
        if unfit:
            panel.scatter(xs(unfit), ys(unfit), color="0.6", marker="x",
                          label="does not fit the board")
        ordered = sorted(front, key=lambda i: xs([i])[0])
        panel.plot(xs(ordered), ys(ordered), color="tab:red", marker="o",
                   linestyle="-" if x else "none", label="Pareto front")
        panel.set_xlabel(_label(x) if x else "point (sweep.jsonl line)")
        panel.set_ylabel(_label(y))
        panel.grid(alpha=0.3)
    for panel in list(axes.flat)[len(pairs):]:
        panel.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
