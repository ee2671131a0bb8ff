"""Exercise check for the setup chapter (00_setup): predict how long a parallel sweep takes on the CPUs
a process may use — the host's count, the affinity and the cgroup quota each limit it differently."""

from __future__ import annotations

import math
from numbers import Real

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import naming_the_case
from flashtrade_lib.measure.env import CpuBudget, cpu_budget


def sweep_seconds_model(jobs: int, seconds_each: float, workers: int, budget: CpuBudget) -> float:
    """Ideal wall time of ``jobs`` single-threaded jobs on a pool of ``workers`` processes.

    At most ``min(workers, host, affinity)`` jobs run at once, each whole on one CPU, so they run in
    waves; a cgroup quota of ``q`` CPUs also caps the CPU time per second of wall time at ``q``.
    """
    at_once = min(workers, budget.host, budget.affinity)
    waves = math.ceil(jobs / at_once) * seconds_each
    return max(waves, jobs * seconds_each / budget.quota) if budget.quota else waves


# (jobs, seconds each, workers, budget): each case makes a different limit the binding one
_SWEEP_CASES = [
    (10, 3.0, 4, CpuBudget(host=8, affinity=8, quota=None)),  # the workers, in waves
    (5, 1.0, 2, CpuBudget(host=8, affinity=8, quota=None)),  # fewer workers than CPUs
    (8, 1.0, 8, CpuBudget(host=64, affinity=2, quota=None)),  # taskset: 2 of the host's 64
    (6, 2.0, 4, CpuBudget(host=16, affinity=16, quota=1.5)),  # a container's quota of 1.5 CPUs
    (3, 4.0, 8, CpuBudget(host=4, affinity=4, quota=8.0)),  # a quota above the CPUs: no limit here
]


def _sweep_diagnosis(jobs: int, seconds_each: float, workers: int, budget: CpuBudget, got: float) -> str:
    def same(x: float) -> bool:
        return math.isclose(got, x, rel_tol=1e-9)

    if budget.affinity < budget.host and same(math.ceil(jobs / min(workers, budget.host)) * seconds_each):
        return (f" That runs {min(workers, budget.host)} jobs at once, but this process may be scheduled on only "
                f"{budget.affinity} CPUs (its affinity): os.cpu_count() is the host's.")
    if budget.quota and same(math.ceil(jobs / min(workers, budget.affinity)) * seconds_each):
        return (f" That ignores the quota: {budget.quota:g} CPUs' worth of time per second, so {jobs} jobs of "
                f"{seconds_each:g} s of CPU take at least {jobs * seconds_each / budget.quota:g} s of wall time.")
    if budget.quota and same(math.ceil(jobs / min(workers, budget.usable)) * seconds_each):
        return (f" budget.usable rounds the quota up ({budget.quota:g} → {budget.usable}) to count the CPUs that may "
                "be busy at once; the time they get is still the quota.")
    if same(jobs * seconds_each / min(workers, budget.host, budget.affinity)):
        return " A job runs whole on one CPU: the jobs go in waves, and the last wave takes a whole job's time."
    if workers < budget.affinity and same(math.ceil(jobs / min(budget.host, budget.affinity)) * seconds_each):
        return f" Only {workers} workers exist: at most {workers} jobs run at once, however many CPUs are free."
    return ""


@register(
    "ch00-cores",
    title="Predict how long a sweep takes on the CPUs this process may use",
    hints=(
        "Three numbers limit how many jobs run at once: the workers, the host's CPUs and the affinity. "
        "The smallest wins.",
        "Jobs are single-threaded and indivisible: with p running at once they go in ⌈jobs/p⌉ waves, each "
        "one job long.",
        "A quota of q CPUs gives q seconds of CPU time per second of wall time, however many CPUs are busy: "
        "the whole sweep needs jobs × seconds_each of CPU time.",
    ),
)
def _grade_sweep(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function sweep_seconds(jobs, seconds_each, workers, budget) -> seconds.")
    for jobs, seconds_each, workers, budget in _SWEEP_CASES:
        where = f"sweep_seconds({jobs}, {seconds_each:g}, {workers}, {budget})"
        with naming_the_case(where):
            got = answer(jobs, seconds_each, workers, budget)
        want = sweep_seconds_model(jobs, seconds_each, workers, budget)
        if isinstance(got, bool) or not isinstance(got, Real):
            return Feedback(False, f"{where} returned {got!r}: expected a number of seconds.")
        if not math.isclose(got, want, rel_tol=1e-9):
            return Feedback(False, f"{where} returned {got!r}, expected {want:g} s."
                                   f"{_sweep_diagnosis(jobs, seconds_each, workers, budget, got)}")
    here = cpu_budget()
    return Feedback(True, f"on this machine ({here.usable} usable CPUs) 12 one-second jobs on 4 workers take "
                          f"{sweep_seconds_model(12, 1.0, 4, here):g} s.")
