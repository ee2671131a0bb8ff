"""Chapter 0 (00_setup) — instructor's solutions (not installed with flashtrade_lib)."""

import math

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch00-cores")
def sweep_seconds(jobs, seconds_each, workers, budget):
    at_once = min(workers, budget.host, budget.affinity)  # the quota does not stop a CPU from starting a job
    waves = math.ceil(jobs / at_once) * seconds_each  # each job runs whole on one CPU
    if budget.quota:  # q CPUs' worth of time per second of wall time
        return max(waves, jobs * seconds_each / budget.quota)
    return waves


@wrong("ch00-cores", expect="os.cpu_count() is the host's")
def sweep_seconds_on_the_host(jobs, seconds_each, workers, budget):
    return math.ceil(jobs / min(workers, budget.host)) * seconds_each


@wrong("ch00-cores", expect="That ignores the quota")
def sweep_seconds_without_the_quota(jobs, seconds_each, workers, budget):
    return math.ceil(jobs / min(workers, budget.host, budget.affinity)) * seconds_each


@wrong("ch00-cores", expect="the jobs go in waves")
def sweep_seconds_as_divisible_work(jobs, seconds_each, workers, budget):
    at_once = min(workers, budget.host, budget.affinity)
    return max(jobs * seconds_each / at_once, jobs * seconds_each / budget.quota if budget.quota else 0.0)
