"""Chapter 7 (07_prediction) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch07-last-row")
def last_row(q, k):
    s = k @ q[-1] / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max())  # subtract the max: a stable softmax
    return p / p.sum()


@wrong("ch07-last-row", expect="scaled by 1/sqrt(d)")
def last_row_unscaled(q, k):
    s = k @ q[-1]  # forgot the 1/sqrt(d) scale
    p = np.exp(s - s.max())
    return p / p.sum()


@solution("ch07-ic")
def information_coefficient(pred, target):
    return float(np.corrcoef(pred, target)[0, 1])


@wrong("ch07-ic", expect="hit rate is a different metric")
def information_coefficient_as_hit_rate(pred, target):
    return float(np.mean(np.sign(pred) == np.sign(target)))
