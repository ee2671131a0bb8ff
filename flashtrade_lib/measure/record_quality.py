"""The verdict a benchmark record carries about its own numbers, computed when it is written.

A timing is only evidence if the machine was quiet and the repeats agree, and only if
its growth with N is one the algorithm's cost can produce. Three checks, each with a
stated bound (kept in the record next to the verdict):

* **load** — other programs kept more than half the cores busy while it ran (measured
  from ``/proc/stat`` minus this process's own CPU time). Only where that could not be
  measured does the 1-minute load average before the start stand in for it: the average
  also counts this benchmark's own earlier phases and programs that ended before it began;
* **spread** — the repeats of one measurement differ by more than :data:`SPREAD_BOUND`
  of their median (``(max − min) / median``);
* **scaling** — the medians of a series whose cost is ``O(N)`` or ``O(N²)`` cannot be
  written as ``a + bN (+ cN²)`` with ``a, b, c ≥ 0`` to within :data:`FIT_RESIDUAL_BOUND`
  (a cost like that never shrinks as N grows, and grows at most ``(N₂/N₁)ᵏ``-fold).

A number that is not a number — NaN or infinite anywhere in the load report, a repeat
time, or a bound — is a flag too: a comparison with NaN is always false, so it would
otherwise read as "quiet" or "steady". A record with any flag is ``"flagged"`` and can
never say "target met", wherever the target sits in it; one that holds no timings and no
load report is ``"unchecked"``. Pure functions: the measuring lives in
:mod:`flashtrade_lib.measure.bench`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SPREAD_BOUND",
    "FIT_RESIDUAL_BOUND",
    "GROWTH_SLACK",
    "Series",
    "check_load",
    "check_spread",
    "check_scaling",
    "fit_cost",
    "growth_exponent",
    "assess",
    "gate_targets",
    "verdict_sentence",
]

SPREAD_BOUND = 0.5
"""Largest ``(max − min) / median`` of one measurement's repeats that still counts as steady."""

FIT_RESIDUAL_BOUND = 0.3
"""Largest relative misfit of the best non-negative cost ``a + bN + cN²`` to the medians."""

GROWTH_SLACK = 1.5
"""How far above ``(N₂/N₁)ᵏ`` a measured growth may go (noise) before it is called impossible."""


@dataclass(frozen=True)
class Series:
    """Repeated times of one method across sizes, and the order ``k`` of its cost in N (1 or 2)."""

    name: str
    order: int
    sizes: tuple[int, ...]
    times_s: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"series {self.name!r}: order must be 1 (O(N)) or 2 (O(N²)), got {self.order!r}")
        if len(self.sizes) != len(self.times_s):
            raise ValueError(f"series {self.name!r}: {len(self.sizes)} sizes but {len(self.times_s)} time lists")
        if any(len(ts) == 0 for ts in self.times_s):
            raise ValueError(f"series {self.name!r}: every size needs at least one time")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError(f"series {self.name!r}: sizes must be distinct and increasing, got {self.sizes}")

    @property
    def medians(self) -> list[float]:
        return [float(np.median(ts)) for ts in self.times_s]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "order": self.order, "sizes": list(self.sizes),
                "times_s": [list(ts) for ts in self.times_s]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Series:
        return cls(d["name"], int(d["order"]), tuple(int(n) for n in d["sizes"]),
                   tuple(tuple(float(t) for t in ts) for ts in d["times_s"]))


def _not_numbers(value: Any, where: str) -> list[str]:
    """Where ``value`` (a number, or dicts/lists of them) holds NaN or infinity."""
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _not_numbers(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [w for i, v in enumerate(value) for w in _not_numbers(v, f"{where}[{i}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
        return [f"{where} = {value}"]
    return []


def check_load(load: dict[str, Any] | None) -> list[str]:
    """Flags for a load report from :func:`flashtrade_lib.measure.bench.watch_machine` (``None``: not recorded)."""
    if load is None:
        return ["machine load was not recorded: nothing says the machine was quiet"]
    bad = _not_numbers(load, "load")
    if bad:
        return [f"the load report holds non-numbers ({', '.join(bad)}): nothing says the machine was quiet"]
    limit = load["threshold_cores"]
    others = load.get("other_busy_cores")
    if others is not None:
        return ([f"other programs kept {others:.2f} cores busy during the run > {limit:g} (half the cores)"]
                if others > limit else [])
    before = load["load_average_1min"]["before"]
    if before > limit:
        return [f"load average {before:.2f} before the run > {limit:g} (half the cores), "
                "and what other programs used during the run was not measured"]
    return []


def check_spread(series: Series, bound: float = SPREAD_BOUND) -> list[str]:
    """Flags for sizes whose repeats spread more than ``bound`` of their median."""
    if not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0):
        return [f"the spread bound {bound!r} is not a positive number: no spread could be checked"]
    flags = []
    for n, ts in zip(series.sizes, series.times_s, strict=True):
        if not all(math.isfinite(t) and t > 0 for t in ts):
            flags.append(f"{series.name} at N={n}: repeat times {list(ts)} are not all positive numbers")
            continue
        median = float(np.median(ts))
        spread = (max(ts) - min(ts)) / median if median > 0 else math.inf
        if spread > bound:
            flags.append(f"{series.name} at N={n}: repeats {min(ts):.3g}–{max(ts):.3g} s spread "
                         f"{spread:.0%} of the median > {bound:.0%}")
    return flags


def fit_cost(sizes: Sequence[int], times: Sequence[float], order: int) -> tuple[np.ndarray, float]:
    """Best ``a + bN (+ cN²)`` with non-negative coefficients (``scipy.optimize.nnls``) and its worst relative misfit.

    Returns ``(coefficients in seconds per Nᵏ, max |t − fit| / t)``. Sizes are scaled by
    the largest one before fitting so the columns are comparable.
    """
    from scipy.optimize import nnls

    n = np.asarray(sizes, dtype=float)
    t = np.asarray(times, dtype=float)
    x = n / n.max()
    design = np.stack([x**p for p in range(order + 1)], axis=1)
    weights = 1 / t  # relative, not absolute, misfit: the small sizes count as much as the large
    coef, _ = nnls(design * weights[:, None], t * weights)
    misfit = float(np.max(np.abs(design @ coef - t) / t))
    return coef / n.max() ** np.arange(order + 1), misfit


def growth_exponent(sizes: Sequence[int], times: Sequence[float]) -> float:
    """Least-squares slope of log time against log N: 2 means doubling N quadruples the time."""
    slope, _ = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(times, float)), 1)
    return float(slope)


def check_scaling(series: Series) -> list[str]:
    """Flags for growth that a cost ``a + bN (+ cN²)``, ``a, b, c ≥ 0``, cannot produce."""
    medians = series.medians
    if len(series.sizes) < 2 or not all(math.isfinite(t) and t > 0 for t in medians):
        return []  # too few sizes; or non-numbers, which check_spread flags
    flags = []
    k = series.order
    points = list(zip(series.sizes, medians, strict=True))
    for (n1, t1), (n2, t2) in zip(points, points[1:], strict=False):
        most = (n2 / n1) ** k
        if t2 / t1 > GROWTH_SLACK * most:
            flags.append(f"{series.name}: N {n1}→{n2} took {t2 / t1:.1f}× longer, but an O(N^{k}) cost "
                         f"grows at most {most:g}×")
        elif t2 < t1 / GROWTH_SLACK:
            flags.append(f"{series.name}: N {n1}→{n2} got faster ({t1:.3g} s → {t2:.3g} s), "
                         f"which a cost growing with N cannot do")
    if len(series.sizes) >= 3:
        _, misfit = fit_cost(series.sizes, medians, k)
        if misfit > FIT_RESIDUAL_BOUND:
            terms = "a + bN + cN²" if k == 2 else "a + bN"
            flags.append(f"{series.name}: no cost {terms} with non-negative a, b{', c' if k == 2 else ''} fits "
                         f"the medians (worst misfit {misfit:.0%} > {FIT_RESIDUAL_BOUND:.0%})")
    return flags


def assess(series: Sequence[Series] | None, load: dict[str, Any] | None, *,
           spread_bound: float = SPREAD_BOUND) -> dict[str, Any]:
    """The verdict stored in a record: ``{"verdict", "flags", "bounds"}``."""
    bounds = {"spread": spread_bound, "fit_residual": FIT_RESIDUAL_BOUND, "growth_slack": GROWTH_SLACK,
              "load": "half the cores"}
    if not series and load is None:
        return {"verdict": "unchecked", "flags": [], "bounds": bounds,
                "why": "the record holds no repeat times and no load report to check"}
    flags = check_load(load)
    for s in series or ():
        flags += check_spread(s, spread_bound) + check_scaling(s)
    checked = (["load"] if load is not None else []) + (["spread", "scaling"] if series else [])
    return {"verdict": "flagged" if flags else "ok", "flags": flags, "bounds": bounds, "checked": checked}


def _targets(value: Any) -> list[dict[str, Any]]:
    """Every target in a record, whatever its shape: each dict with a ``"met"`` key, at any depth."""
    if isinstance(value, dict):
        return ([value] if "met" in value else []) + [t for v in value.values() for t in _targets(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _targets(v)]
    return []


def gate_targets(record: dict[str, Any], quality: dict[str, Any]) -> None:
    """A flagged record never reports a target as met: ``met`` becomes False, the raw result is kept.

    One gate for every shape: ``target``, ``targets: {...}``, a list of targets, or one
    nested under ``results`` — any dict with a ``"met"`` key, anywhere in the record.
    """
    if quality["verdict"] != "flagged":
        return
    for target in _targets(record):
        if target.get("met"):
            target["met"] = False
            target["met_as_measured"] = True
            target["why_not_met"] = "the record is flagged (see quality): its numbers are not evidence"


def verdict_sentence(quality: dict[str, Any] | None) -> str:
    """One plain sentence for a chapter to print next to a recorded number."""
    if quality is None:
        return ("Quality: unchecked — this record predates self-checking records; re-record it "
                "before trusting its timings.")
    if quality["verdict"] == "ok":
        checked = quality.get("checked", ["load", "spread", "scaling"])  # records before "checked": all three
        said = (["the machine was quiet"] if "load" in checked else []) + (
            [f"the repeats agree within {quality['bounds']['spread']:.0%}",
             "every series scales as its cost allows"] if "spread" in checked else [])
        if "spread" not in checked:
            said.append("it holds no repeated timings to compare")
        return "Quality: ok — " + ", ".join(said[:-1]) + (" and " if len(said) > 1 else "") + said[-1] + "."
    if quality["verdict"] == "unchecked":
        return f"Quality: unchecked — {quality.get('why', 'nothing to check')}."
    flags = quality["flags"]
    more = f" (and {len(flags) - 3} more)" if len(flags) > 3 else ""
    return ("Quality: FLAGGED — treat these timings as disturbed, not as evidence: "
            + "; ".join(flags[:3]) + more + ".")
