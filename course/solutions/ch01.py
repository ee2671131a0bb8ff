"""Chapter 1 (01_attention_bottleneck) — instructor's solutions (not installed with flashtrade_lib)."""

import math

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch01-inplace-peak")
def inplace_peak_bytes(n, d, itemsize=4):
    # alive together while o = s @ v runs: the N×N buffer, the N×d output (and, briefly, one row vector)
    return (n * n + n * d + n) * itemsize


@wrong("ch01-inplace-peak", expect="naive_attention's three")
def inplace_peak_bytes_of_the_naive_version(n, d, itemsize=4):
    return 3 * n * n * itemsize


@wrong("ch01-inplace-peak", expect="That leaves out the output")
def inplace_peak_bytes_of_the_buffer_only(n, d, itemsize=4):
    return n * n * itemsize


@wrong("ch01-inplace-peak", expect="That is a count of elements")
def inplace_peak_elements(n, d, itemsize=4):
    return n * n + n * d


@solution("ch01-inplace-attention")
def inplace_attention(q, k, v):
    s = q @ k.T  # the only N×N allocation
    s *= 1.0 / math.sqrt(q.shape[1])  # a Python float keeps float32 scores float32
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s @ v


@wrong("ch01-inplace-attention", expect="something allocates a second N×N array")
def inplace_attention_with_a_temporary(q, k, v):
    s = q @ k.T
    s *= 1.0 / math.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))  # s - max is a new N×N array, and so is p
    p /= p.sum(axis=1, keepdims=True)
    return p @ v


@wrong("ch01-inplace-attention", expect="multiply the scores by τ = 1/√d")
def inplace_attention_without_the_scale(q, k, v):
    s = q @ k.T
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s @ v


@wrong("ch01-inplace-attention", expect="subtract each row's maximum")
def inplace_attention_without_the_max(q, k, v):
    s = q @ k.T
    s *= 1.0 / math.sqrt(q.shape[1])
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s @ v
